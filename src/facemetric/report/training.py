"""The report's training curves: a run's ``metrics.jsonl`` (untyped JSON lines, not part of ``eval.json``) read
back and drawn, for an evaluation of a run's checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facemetric.eval.suite.document import EvalDocument
from facemetric.report.document import Figure, Para, Section, how_to_read, not_available
from facemetric.report.formatting import num
from facemetric.report.plots import training_curves


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train_rows, val_rows)`` of a run's ``metrics.jsonl``, sorted by step.

    The training log is untyped JSON lines (not part of eval.json): unparsable lines and other
    kinds are skipped; a resumed run repeats steps, so the last record of each step wins.
    """
    by_kind: dict[str, dict[float, dict[str, Any]]] = {"train": {}, "val": {}}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") in by_kind and _is_num(record.get("step")):
            by_kind[record["kind"]][record["step"]] = record
    train, val = (sorted(by_kind[k].values(), key=lambda r: r["step"]) for k in ("train", "val"))
    return train, val


def _metrics_candidates(run_dir: str, eval_dir: Path) -> list[Path]:
    """Where ``<run_dir>/metrics.jsonl`` may be: relative to the working directory, then to the eval folder."""
    run = Path(run_dir)
    dirs = [run] if run.is_absolute() else [Path.cwd() / run, eval_dir / run]
    return [d / "metrics.jsonl" for d in dirs]


def _last_val_text(val: list[dict[str, Any]]) -> str:
    last = val[-1]
    parts = [
        f"{name} {num(last[key])}"
        for key, name in (("accuracy", "accuracy"), ("auc", "AUC"), ("eer", "EER"))
        if _is_num(last.get(key))
    ]
    return f"Last validation (step {last['step']}): {', '.join(parts) or 'no accuracy/AUC/EER recorded'}."


def training_section(doc: EvalDocument, eval_dir: Path) -> Section:
    section = Section(
        "Training curves",
        [
            how_to_read(
                "Training loss per optimisation step, and the validation accuracy and EER measured during training. "
                "A validation curve that flattens or turns while the loss keeps falling suggests over-fitting."
            )
        ],
    )
    if not doc.run_dir:
        section.blocks.append(not_available("eval.json gives no training run folder (run_dir is null)."))
        return section
    candidates = _metrics_candidates(doc.run_dir, eval_dir)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        section.blocks.append(not_available(f"no metrics.jsonl at {' or '.join(map(str, candidates))}."))
        return section
    train, val = read_metrics(path)
    if not train and not val:
        section.blocks.append(not_available(f"{path} holds no train or val records."))
        return section
    text = f"From {path}: {len(train)} training and {len(val)} validation records."
    section.blocks.append(Para(text + (" " + _last_val_text(val) if val else "")))
    section.blocks.append(Figure("training.png", "Training curves", training_curves(train, val)))
    return section
