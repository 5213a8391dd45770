"""The report as one HTML page: inline CSS, no scripts, no network URLs; the PNGs by relative file name.

Use, with the sections of eval.report.content.build_sections:

    page = render(title, notes, sections)
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from eval.report.blocks import Image, Section, Table, Text, numeric_columns

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1b1b1b; background: #ffffff; line-height: 1.4; }
h1 { margin-bottom: 0.3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
h3 { margin-top: 1.6rem; }
ul.notes { margin: 0 0 1rem; padding-left: 1.2rem; color: #57606a; }
p.muted { color: #6e7781; font-style: italic; }
.table-wrap { overflow-x: auto; margin: 0.8rem 0 1.2rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
p.caption { color: #57606a; font-size: 0.9rem; margin: 0.3rem 0 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; }
thead th { background: #f3f4f6; }
tbody th { text-align: left; font-weight: 600; background: #fafafa; }
td { text-align: right; }
td.text { text-align: left; }
figure { margin: 0.8rem 0; }
img { display: block; max-width: 100%; height: auto; border: 1px solid #eaeef2; }
""".strip()


def render(title: str, notes: list[str], sections: list[Section]) -> str:
    """The whole page as a string (UTF-8)."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)} - run report</title>",
        f"<style>\n{CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if notes:
        head += ['<ul class="notes">', *[f"<li>{escape(note)}</li>" for note in notes], "</ul>"]
    body = [line for section in sections for line in _section(section)]
    return "\n".join([*head, *body, "</body>", "</html>", ""])


def _section(section: Section) -> list[str]:
    level = min(max(section.level, 2), 6)
    return [f"<h{level}>{escape(section.heading)}</h{level}>", *[_block(block) for block in section.blocks]]


def _block(block: Text | Table | Image) -> str:
    if isinstance(block, Image):
        return _image(block)
    if isinstance(block, Table):
        return _table(block)
    return f"<p{_class('muted' if block.muted else '')}>{escape(block.text)}</p>"


def _image(image: Image) -> str:
    return (
        f'<figure><img src="{escape(quote(image.file))}" alt="{escape(image.alt)}" '
        f'width="{image.width}" height="{image.height}"></figure>'
    )


def _table(table: Table) -> str:
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in table.headers)
    numeric = numeric_columns(table)
    rows = [_row(row, numeric) for row in table.rows]
    caption = [f'<p class="caption">{escape(table.caption)}</p>'] if table.caption else []
    head = ['<div class="table-wrap"><table>', f"<thead><tr>{header}</tr></thead>", "<tbody>"]
    return "\n".join([*head, *rows, "</tbody></table>", *caption, "</div>"])


def _row(row: list[str], numeric: list[bool]) -> str:
    if not row:
        return "<tr></tr>"
    cells = [f"<td{_class('' if right else 'text')}>{escape(cell)}</td>" for cell, right in zip(row[1:], numeric[1:])]
    return f'<tr><th scope="row">{escape(row[0])}</th>{"".join(cells)}</tr>'


def _class(name: str) -> str:
    return f' class="{name}"' if name else ""
