"""LFW-protocol verification of an embedder on a pairs file (the demo's and benchmarks' entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facemetric.eval.embed import EmbedderBase


class EvaluationError(RuntimeError):
    """The protocol cannot be evaluated as asked (e.g. an image it needs is unreadable)."""


def evaluate_pairs_file(
    embedder: EmbedderBase, pairs_path: str | Path, images_root: str | Path, flip: bool = False,
    batch_size: int = 256, progress: bool = True,
) -> dict[str, Any]:
    """Accuracy (k-fold, thresholds chosen on the other folds), AUC, EER and TAR@FAR for a pairs file.

    The verification summary of ``facemetric eval --pairs`` (:func:`facemetric.eval.runner.evaluate_files`),
    without its curve points, plus the pairs file, pair and image counts.
    """
    from facemetric.eval.runner import evaluate_files

    result, data = evaluate_files(embedder, pairs=pairs_path, images=images_root, flip=flip,
                                  batch_size=batch_size, progress=progress)
    report = dict(result.summary["verification"])
    report.pop("curves")
    report.update(pairs_file=str(pairs_path), num_pairs=report["num_positive"] + report["num_negative"],
                  num_images=data["images"], flip=flip)
    return report
