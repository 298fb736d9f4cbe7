"""``facemetric report PATH``: render an evaluation folder, or evaluate a run's held-out people first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facemetric.core.matching import DEFAULT_FAR
from facemetric.eval.errors import EvaluationError
from facemetric.eval.patches.folder import is_patch_eval_dir
from facemetric.eval.suite.folder import is_eval_dir
from facemetric.eval.suite.held_out import evaluate_run_to_folder
from facemetric.report.render import render_report
from facemetric.train.callbacks.tracking import attach_files


@dataclass
class ReportFiles:
    """What :func:`make_report` wrote: the HTML and Markdown reports, and the screenshot when asked."""

    html: Path
    markdown: Path
    screenshot: Path | None = None


def make_report(
    path: str | Path,
    checkpoint: str | Path | None = None,
    far: float | None = None,
    refresh: bool = False,
    title: str | None = None,
    screenshot: str | Path | None = None,
    progress: bool = True,
) -> ReportFiles:
    """The report of ``path``: an evaluation folder (``facemetric eval [--patches] --out``) as it is, or a training run
    folder, whose checkpoint is evaluated on the run's held-out identities into ``path/eval`` first
    (again when ``refresh``, ``checkpoint`` or ``far`` is given; at :data:`DEFAULT_FAR` unless ``far`` says
    otherwise), and whose tracked runs (MLflow, W&B)
    get ``report.html`` as an artifact. Returns the files written."""
    folder = Path(path)
    run_dir = None
    if not (is_eval_dir(folder) or is_patch_eval_dir(folder)):
        if not (folder / "config.yaml").is_file():
            raise EvaluationError(
                f"{folder} is neither an evaluation folder (no eval.json: make one with facemetric "
                "eval --out DIR) nor a training run folder (no config.yaml)"
            )
        target = folder / "eval"
        if refresh or checkpoint or far is not None or not is_eval_dir(target):
            evaluate_run_to_folder(folder, checkpoint, DEFAULT_FAR if far is None else far, progress)
        run_dir, folder = folder, target
    paths = render_report(folder, title)
    out = ReportFiles(paths.html, paths.markdown)
    if run_dir is not None:  # a run sent to MLflow / W&B (train.loggers) gets its report there too
        attach_files(run_dir, [paths.html])
    if screenshot:
        from facemetric.report.screenshot import screenshot as take

        out.screenshot = take(paths.html, screenshot)
    return out
