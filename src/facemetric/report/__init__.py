"""Evaluation reports: ``render_report(eval_dir)`` turns a ``facemetric eval --out DIR`` folder into HTML +
Markdown; ``make_report(path)`` also takes a training run folder."""

from facemetric.report.load import ReportError
from facemetric.report.make import make_report
from facemetric.report.render import ReportPaths, render_report

__all__ = ["ReportError", "ReportPaths", "make_report", "render_report"]
