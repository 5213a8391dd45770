"""The report as GitHub-flavoured Markdown, the same sections as the HTML page; PNGs by relative file name.

Use, with the sections of eval.report.content.build_sections:

    text = render(title, notes, sections)
"""

from __future__ import annotations

import re
from urllib.parse import quote

from eval.report.blocks import Image, Section, Table, Text, numeric_columns

# Characters that would turn plain text into markup; "_" only at a word's edge (GFM ignores it inside words,
# so task names such as date_format stay readable in the source).
_SPECIAL = re.compile(r"([\\`*\[\]<>|#])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def escape(text: str) -> str:
    """Plain text safe in a Markdown paragraph, heading or table cell (on one line)."""
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))


def render(title: str, notes: list[str], sections: list[Section]) -> str:
    lines = [f"# {escape(title)}", ""]
    if notes:
        lines += [*[f"- {escape(note)}" for note in notes], ""]
    for section in sections:
        lines += [f"{'#' * min(max(section.level, 2), 6)} {escape(section.heading)}", ""]
        for block in section.blocks:
            lines += [*_block(block), ""]
    return "\n".join(lines)


def _block(block: Text | Table | Image) -> list[str]:
    if isinstance(block, Image):
        return [f"![{escape(block.alt)}]({quote(block.file)})"]
    if isinstance(block, Table):
        return _table(block)
    return [f"*{escape(block.text)}*" if block.muted else escape(block.text)]


def _table(table: Table) -> list[str]:
    width = len(table.headers)
    align = "|".join("--:" if right else "---" for right in numeric_columns(table))
    lines = [_row(table.headers), f"|{align}|"]
    lines += [_row((row + [""] * width)[:width]) for row in table.rows]
    if table.caption:
        lines += ["", f"*{escape(table.caption)}*"]
    return lines


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(escape(cell) for cell in cells) + " |"
