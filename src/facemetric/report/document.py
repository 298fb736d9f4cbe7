"""The report as a document: blocks (paragraph, table, figure, image grid) in sections, written by the
jinja2 templates in ``templates/`` as self-contained HTML or as Markdown with its images beside it.

The HTML template is autoescaped; the Markdown template passes every text through the ``md``
filter. Either way, nothing read from an evaluation folder reaches the page as markup.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from jinja2 import (
    BaseLoader,
    Environment,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

FILES_DIR = "report_files"
NOT_AVAILABLE = "Not available: "


@dataclass(frozen=True)
class Para:
    kind: ClassVar[str] = "para"  # how the templates tell the blocks apart
    text: str
    style: str = "plain"  # plain | how (the "How to read this" paragraph) | note (section not available)


@dataclass(frozen=True)
class Table:
    kind: ClassVar[str] = "table"
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


@dataclass(frozen=True)
class Figure:
    kind: ClassVar[str] = "figure"
    name: str  # file name under report_files/
    alt: str
    png: bytes
    caption: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageGrid:
    """Figures side by side under a heading, each captioned ``label: text`` (the error pairs)."""

    kind: ClassVar[str] = "grid"
    heading: str
    labels: tuple[str, ...]  # one per caption entry of each figure
    figures: list[Figure]


Block = Para | Table | Figure | ImageGrid


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def how_to_read(text: str) -> Para:
    return Para(text, "how")


def not_available(text: str) -> Para:
    return Para(NOT_AVAILABLE + text, "note")


# ---------------------------------------------------------------- templates


def md_escape(text: object) -> str:
    """``text`` safe in Markdown: markup characters backslash-escaped, ``& < >`` as entities (no raw HTML)."""
    text = re.sub(r"([\\`*_\[\]|#])", r"\\\1", str(text).replace("\n", " "))
    return html.escape(text, quote=False)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def make_environment(loader: BaseLoader) -> Environment:
    """A jinja2 environment for the report templates of ``loader``: ``*.html.j2`` (and any but ``*.md.j2``)
    autoescaped, filters ``md`` and ``data_uri``, undefined names an error (a misspelt field fails instead
    of rendering empty)."""
    env = Environment(
        loader=loader,
        autoescape=select_autoescape(["html.j2"], ["md.j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["data_uri"] = data_uri
    env.globals["zip"] = zip
    return env


@functools.cache
def _environment() -> Environment:
    return make_environment(PackageLoader("facemetric.report", "templates"))


def _render(template: str, title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    return _environment().get_template(template).render(title=title, meta=meta, sections=sections, files_dir=FILES_DIR)


def to_html(title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    """The self-contained page: inline CSS, images as data URIs, no scripts, no external URLs."""
    return _render("report.html.j2", title, meta, sections)


def to_markdown(title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    """The Markdown twin of :func:`to_html`, its images referenced under ``report_files/``."""
    return _render("report.md.j2", title, meta, sections)
