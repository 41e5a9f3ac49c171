"""A report as a list of blocks, rendered twice: self-contained HTML (figures embedded as base64 PNG) and a
Markdown twin whose figures are PNG files next to it."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1280px; margin: 2em auto; padding: 0 1em; color: #222; }
p, figcaption { max-width: 75em; }
h1, h2, h3, p, figcaption { overflow-wrap: anywhere; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; } tr:nth-child(even) { background: #fafafa; }
td.name { white-space: nowrap; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.wrap { min-width: 22em; max-width: 40em; overflow-wrap: break-word; }
td.pin { background: #fff; } tr:nth-child(even) > td.pin { background: #fafafa; }
@media (min-width: 700px) { .pin { position: sticky; left: 0; z-index: 1; box-shadow: 1px 0 0 #ccc; } }
td.supported { background: #d4f4d4; } td.falsified { background: #f8d0d0; } td.inconclusive { background: #f4ecc8; }
td.decided { background: #ffd966; font-weight: 600; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; } code { background: #f2f2f2; padding: 0 3px; }
"""
#: columns that stay in view while a wide table scrolls (on screens wider than a phone), columns whose cells keep
#: one line (names a reader scans) and columns whose text wraps
PINNED_COLUMNS = frozenset({"hypothesis"})
NAME_COLUMNS = frozenset(
    {
        "hypothesis",
        "test",
        "subject",
        "role",
        "environment",
        "spec",
        "phenomenon",
        "run_id",
        "file",
        "key",
        "in verdict",
    }
)
WRAP_COLUMNS = frozenset({"reason", "description", "axes", "value"})


def fmt(value: object) -> str:
    """How every number appears in the report's tables: 4 significant digits (``.4g``); NaN/None as ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    """A table; every cell is formatted with :func:`fmt`. ``css`` names a column whose value becomes the cell class."""

    frame: pd.DataFrame
    css: str | None = None


@dataclass(frozen=True)
class Figure:
    """A PNG file written by :mod:`bridge.report._figures` and its caption."""

    path: Path
    caption: str


@dataclass
class Document:
    """An ordered list of blocks."""

    title: str
    blocks: list[Heading | Paragraph | Table | Figure] = field(default_factory=list)

    def add(self, *blocks: Heading | Paragraph | Table | Figure) -> None:
        self.blocks.extend(blocks)

    def to_markdown(self, relative_to: Path) -> str:
        """Markdown with figures linked relative to ``relative_to`` (the folder of the .md file)."""
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += ["#" * b.level + " " + b.text, ""]
            elif isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, Table):
                out += [_markdown_table(b.frame), ""]
            else:
                out += [f"![{b.caption}]({b.path.relative_to(relative_to).as_posix()})", "", f"*{b.caption}*", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        """One self-contained page: inline CSS, figures as ``data:image/png;base64`` URIs."""
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for b in self.blocks:
            if isinstance(b, Heading):
                body.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
            elif isinstance(b, Paragraph):
                body.append(f"<p>{_inline_code(html.escape(b.text))}</p>")
            elif isinstance(b, Table):
                body.append(_html_table(b.frame, b.css))
            else:
                data = base64.b64encode(b.path.read_bytes()).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
                )
        head = "<meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
        head += f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"
        return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n" + "\n".join(body) + "\n</body></html>\n"


def _inline_code(text: str) -> str:
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _cell_class(column: str, value: object, numeric: bool, css: str | None) -> str:
    classes = [str(value)] if column == css else []
    classes += (
        ["num"] if numeric else ["name"] if column in NAME_COLUMNS else ["wrap"] if column in WRAP_COLUMNS else []
    )
    classes += ["pin"] if column in PINNED_COLUMNS else []
    return f' class="{html.escape(" ".join(classes))}"' if classes else ""


def _html_table(frame: pd.DataFrame, css: str | None) -> str:
    """A table in a horizontally scrollable container (a wide table scrolls instead of widening the page), names on
    one line, long text wrapped, numbers right-aligned."""
    pin = ' class="pin"'
    head = "".join(f"<th{pin if c in PINNED_COLUMNS else ''}>{html.escape(str(c))}</th>" for c in frame.columns)
    numeric = {c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns}  # fmt: skip
    rows = []
    for row in frame.itertuples(index=False):
        cells = [
            f"<td{_cell_class(column, value, numeric[column], css)}>{html.escape(fmt(value))}</td>"
            for column, value in zip(frame.columns, row, strict=True)
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'
