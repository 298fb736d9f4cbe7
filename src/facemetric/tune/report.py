"""The study's page, ``<study>/report.html``: Optuna's own plots of the search, laid out like the run reports.

Optimisation history, parameter importances (fANOVA), one slice plot per parameter, contours of
each pair of parameters, the validation curves the pruner judged, and a table of every trial (its
values, result, time and CPU, why it failed or when it was pruned). Self-contained HTML, rewritten
after every trial.
"""

from __future__ import annotations

import functools
import io
import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna

from facemetric.core.atomic import write_atomic
from facemetric.report.document import Figure, Para, Section, Table, how_to_read, not_available, to_html

if TYPE_CHECKING:
    from facemetric.tune.study import TuneSettings

log = logging.getLogger("facemetric")


def _png(draw: Callable[[], Any]) -> bytes:
    """Run one of ``optuna.visualization.matplotlib``'s plots and return it as PNG."""
    import matplotlib.pyplot as plt

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "too few trials for a contour" is the page's to say
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            axes = draw()
    finally:
        optuna.logging.set_verbosity(verbosity)
    first = axes.flat[0] if hasattr(axes, "flat") else axes
    fig = first.figure
    fig.set_size_inches(max(fig.get_size_inches()[0], 6.4), max(fig.get_size_inches()[1], 4.2))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figure(name: str, alt: str, draw: Callable[[], Any], why_not: str) -> Figure | Para:
    try:
        return Figure(name, alt, _png(draw))
    except Exception as exc:  # a plot Optuna cannot draw yet (too few trials) is explained, not fatal
        return not_available(f"{why_not} ({type(exc).__name__}: {exc})")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(study: optuna.Study, settings: TuneSettings, rows: list[dict[str, Any]]) -> None:
    """Write ``<study_dir>/report.html``."""
    vis = optuna.visualization.matplotlib
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    keys = [p.key for p in settings.params]
    search = Section("Search")
    search.blocks.append(
        how_to_read(
            f"Each point is a trial; the line is the best {settings.metric} found so far. A search that is still "
            "climbing at its last trial would gain from more trials."
        )
    )
    search.blocks.append(
        _figure(
            "history.png", "optimisation history", lambda: vis.plot_optimization_history(study), "no trial has finished"
        )
    )
    importance = Section("Which parameters matter")
    importance.blocks.append(
        how_to_read(
            "fANOVA importance: the share of the metric's variance over the finished trials that each parameter "
            "explains. With few trials it is a rough guide."
        )
    )
    importance.blocks.append(
        _figure(
            "importance.png",
            "parameter importances",
            lambda: vis.plot_param_importances(study),
            "needs at least two finished trials with different values",
        )
    )
    for key in keys:
        importance.blocks.append(
            _figure(f"slice-{key}.png", f"slice of {key}", functools.partial(vis.plot_slice, study, params=[key]), key)
        )
    if len(keys) >= 2:
        importance.blocks.append(
            _figure(
                "contour.png",
                "contours of parameter pairs",
                lambda: vis.plot_contour(study, params=keys[:4]),
                "needs finished trials over two parameters",
            )
        )
    pruning = Section("Validation curves (what the pruner saw)")
    pruning.blocks.append(
        how_to_read(
            f"Each line is one trial's held-out {settings.metric} at each validation. A pruned trial stops where the "
            f"{settings.pruner_name} pruner judged it below the others at that epoch."
        )
    )
    pruning.blocks.append(
        _figure(
            "curves.png",
            "intermediate values",
            lambda: vis.plot_intermediate_values(study),
            "no trial has reported a validation yet",
        )
    )
    table = Section("Trials")
    header = ("trial", "state", *keys, settings.metric, "seconds", "CPU s", "note")
    body = []
    for r in rows:
        note = r["failed_reason"] or (f"pruned after epoch {r['pruned_at_epoch']}" if r["pruned_at_epoch"] else "")
        if r["retry_of"] is not None:
            note = f"retry of trial {r['retry_of']}; {note}".rstrip("; ")
        body.append(
            (
                str(r["number"]),
                r["state"].lower(),
                *(_fmt(r["params"].get(k)) for k in keys),
                _fmt(r["value"]),
                _fmt(r["seconds"]),
                _fmt(r["cpu_seconds"]),
                note,
            )
        )
    table.blocks.append(Table(header, body))
    meta = [
        ("study", str(settings.study_dir)),
        ("objective", f"{study.direction.name.lower()} held-out {settings.metric}"),
        ("sampler / pruner", f"{settings.sampler} / {settings.pruner_name}"),
        ("space", "; ".join(p.text for p in settings.params)),
        ("trials", f"{len(rows)} ({len(complete)} complete)"),
    ]
    if complete:
        best = study.best_trial
        meta.append(("best", f"trial {best.number}: {settings.metric} {best.value:.4f} ({best.params})"))
    html = to_html("facemetric tuning report", meta, [search, importance, pruning, table])
    write_atomic(settings.study_dir / "report.html", html)
