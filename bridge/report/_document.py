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
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; } tr:nth-child(even) { background: #fafafa; }
td.supported { background: #d4f4d4; } td.falsified { background: #f8d0d0; } td.inconclusive { background: #f4ecc8; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; } code { background: #f2f2f2; padding: 0 3px; }
"""


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
        head = f"<meta charset='utf-8'><title>{html.escape(self.title)}</title><style>{_CSS}</style>"
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


def _html_table(frame: pd.DataFrame, css: str | None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            cls = f' class="{html.escape(str(value))}"' if column == css else ""
            cells.append(f"<td{cls}>{html.escape(fmt(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
