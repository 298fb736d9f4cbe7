"""Evaluation reports: ``render_report(eval_dir)`` turns a ``facemetric eval --out DIR`` folder into HTML + Markdown."""

from facemetric.report.render import ReportError, ReportPaths, render_report

__all__ = ["ReportError", "ReportPaths", "render_report"]
