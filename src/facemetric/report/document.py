"""The report as a document: blocks (paragraph, table, figure, gallery) in sections, written as
self-contained HTML or as Markdown with its images beside it. Every text is escaped here."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Any

FILES_DIR = "report_files"
NOT_AVAILABLE = "Not available: "


@dataclass(frozen=True)
class Para:
    text: str
    style: str = "plain"  # plain | how (the "How to read this" paragraph) | note (section not available)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]


@dataclass(frozen=True)
class Figure:
    name: str  # file name under report_files/
    alt: str
    png: bytes
    caption: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gallery:
    heading: str
    labels: tuple[str, ...]  # one per caption entry of each figure
    figures: list[Figure]


@dataclass
class Section:
    title: str
    blocks: list[Any] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def how_to_read(text: str) -> Para:
    return Para(text, "how")


def not_available(text: str) -> Para:
    return Para(NOT_AVAILABLE + text, "note")


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; color: #555; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; word-break: break-all; }
nav a { margin-right: 0.8em; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
p.how { background: #f6f8fa; border-left: 4px solid #8aa; padding: 0.5em 0.8em; }
p.note { color: #8a5a00; font-style: italic; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { margin: 0; max-width: 300px; font-size: 0.8em; word-break: break-all; }
.gallery img { image-rendering: pixelated; }
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in table.header)
    body = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>\n" for row in table.rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _html_figure(fig: Figure, labels: tuple[str, ...] = ()) -> str:
    lines = [f"{_h(label)}: {_h(text)}" for label, text in zip(labels, fig.caption)] if labels else map(_h, fig.caption)
    caption = "<br>".join(lines)
    return (f'<figure><img src="{_data_uri(fig.png)}" alt="{_h(fig.alt)}">'
            + (f"<figcaption>{caption}</figcaption>" if caption else "") + "</figure>")


def _html_block(block: Any) -> str:
    if isinstance(block, Para):
        prefix = "<strong>How to read this.</strong> " if block.style == "how" else ""
        return f'<p class="{block.style}">{prefix}{_h(block.text)}</p>'
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Figure):
        return _html_figure(block)
    figures = "\n".join(_html_figure(f, block.labels) for f in block.figures)
    return f'<h3>{_h(block.heading)}</h3>\n<div class="gallery">\n{figures}\n</div>'


def to_html(title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    dl = "\n".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in meta)
    nav = " ".join(f'<a href="#{s.anchor}">{_h(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{s.anchor}">\n<h2>{_h(s.title)}</h2>\n' + "\n".join(map(_html_block, s.blocks)) + "\n</section>"
        for s in sections
    )
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_h(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{_h(title)}</h1>\n<dl class=\"meta\">\n{dl}\n</dl>\n"
            f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")


# ---------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """``text`` safe in Markdown: markup characters backslash-escaped, ``& < >`` as entities (no raw HTML)."""
    text = re.sub(r"([\\`*_\[\]|#])", r"\\\1", text.replace("\n", " "))
    return html.escape(text, quote=False)


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_image(fig: Figure) -> str:
    return f"![{_md(fig.alt)}]({FILES_DIR}/{fig.name})"


def _md_block(block: Any) -> str:
    if isinstance(block, Para):
        text = _md(block.text)
        return {"how": f"**How to read this.** {text}", "note": f"*{text}*"}.get(block.style, text)
    if isinstance(block, Table):
        lines = [_md_row(tuple(map(_md, block.header))), _md_row(tuple("---" for _ in block.header))]
        return "\n".join(lines + [_md_row(tuple(map(_md, row))) for row in block.rows])
    if isinstance(block, Figure):
        return _md_image(block)
    header = ("Pair",) + tuple(map(_md, block.labels))
    rows = [_md_row((_md_image(f),) + tuple(map(_md, f.caption))) for f in block.figures]
    return f"### {_md(block.heading)}\n\n" + "\n".join([_md_row(header), _md_row(("---",) * len(header))] + rows)


def to_markdown(title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    parts = [f"# {_md(title)}", "\n".join(f"- **{_md(k)}:** {_md(v)}" for k, v in meta)]
    for s in sections:
        parts.append(f"## {_md(s.title)}")
        parts += [_md_block(b) for b in s.blocks]
    return "\n\n".join(parts) + "\n"


