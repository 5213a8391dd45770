"""The report's content as renderer-neutral blocks: sections of text, tables and images.

`eval.report.content` builds the sections once; `html_page` and `markdown_page` each turn the same list
into their format, so the HTML and the Markdown report never say different things.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Text:
    """A paragraph of plain text (renderers escape it)."""

    text: str
    muted: bool = False  # a secondary remark, e.g. "no training log"


@dataclass
class Table:
    """A table of already formatted cells; the first column is a row header."""

    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


def is_numeric(cell: str) -> bool:
    """A number-like cell ("45.0%", "-12.5", "70.0*", "n/a", "-") is right-aligned; prose is left-aligned."""
    return cell in ("n/a", "-", "") or cell.rstrip("%*").lstrip("+-").replace(".", "", 1).isdigit()


def numeric_columns(table: Table) -> list[bool]:
    """Per column: True when every cell in it is number-like (the first column, the row header, never is)."""
    columns = range(len(table.headers))
    return [j > 0 and all(is_numeric(row[j]) for row in table.rows if j < len(row)) for j in columns]


@dataclass
class Image:
    """A PNG written next to the report, referenced by its file name."""

    file: str  # a bare file name in the report folder
    alt: str
    width: int  # pixels
    height: int


@dataclass
class Section:
    """A heading (level 2 or 3) and its blocks."""

    heading: str
    blocks: list[Text | Table | Image] = field(default_factory=list)
    level: int = 2
