"""Render an evaluation folder (``facemetric eval --out DIR``) as an HTML and a Markdown report.

``eval.json`` is read back through its typed document (:mod:`facemetric.report.load`), so a metric renamed
or retyped by the writer fails here with the field's path instead of silently dropping a row. The
report is built once as a list of sections made of a few block types (paragraph, table, figure,
image grid), one module per evaluation task (:mod:`.verification`, :mod:`.identification`,
:mod:`.retrieval`, put together by :mod:`.faces`; a patch evaluation's by :mod:`.patches`), and then
written twice by the templates of :mod:`facemetric.report.document`:
``report.html`` is self-contained (inline CSS, images as data URIs, no scripts, no external URLs) so
it can be mailed or archived as one file; ``report.md`` mirrors it with its images in
``report_files/``. Everything read from the folder is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facemetric.core.atomic import write_atomic
from facemetric.eval.patches.folder import is_patch_eval_dir
from facemetric.report.document import FILES_DIR, Figure, ImageGrid, Section, to_html, to_markdown
from facemetric.report.faces import face_report
from facemetric.report.patches import patch_report

DEFAULT_TITLE = "facemetric evaluation report"


@dataclass
class ReportPaths:
    """What :func:`render_report` wrote."""

    html: Path
    markdown: Path
    figures: list[Path]


def _figures(sections: list[Section]) -> list[Figure]:
    out: list[Figure] = []
    for block in (b for s in sections for b in s.blocks):
        if isinstance(block, Figure):
            out.append(block)
        elif isinstance(block, ImageGrid):
            out += block.figures
    return out


def render_report(eval_dir: str | Path, title: str | None = None) -> ReportPaths:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ ``report_files/*.png``) into ``eval_dir``.

    Raises :class:`~facemetric.report.load.ReportError` when ``eval_dir`` is not a facemetric-eval/1 (or, from
    ``eval --patches``, facemetric-patches/1) folder or one of its files is malformed. Sections whose inputs
    are absent say so instead of failing. PNGs left in ``report_files/`` by an earlier render that this one
    does not produce are removed.
    """
    eval_dir = Path(eval_dir)
    # facemetric eval --patches: its own results and sections
    meta, sections = patch_report(eval_dir) if is_patch_eval_dir(eval_dir) else face_report(eval_dir)
    title = title or DEFAULT_TITLE

    files_dir = eval_dir / FILES_DIR
    files_dir.mkdir(exist_ok=True)
    figure_paths = []
    for fig in _figures(sections):
        write_atomic(files_dir / fig.name, fig.png)
        figure_paths.append(files_dir / fig.name)
    for stale in set(files_dir.glob("*.png")) - set(figure_paths):
        stale.unlink()
    paths = ReportPaths(eval_dir / "report.html", eval_dir / "report.md", figure_paths)
    write_atomic(paths.html, to_html(title, meta, sections).encode("utf-8"))
    write_atomic(paths.markdown, to_markdown(title, meta, sections).encode("utf-8"))
    return paths
