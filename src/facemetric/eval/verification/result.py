"""Typed results of verification: what :mod:`~facemetric.eval.verification.metrics` returns, the
``verification`` section of ``eval.json``, and what ``facemetric protocol pairs`` wrote."""

from __future__ import annotations

from pydantic import Field

from facemetric.core.results import Result


class OptimisticAccuracy(Result):
    """Accuracy at the best threshold chosen on the scored pairs themselves: an upper bound, not a test figure."""

    accuracy: float
    threshold: float
    note: str


class OperatingThreshold(Result):
    """The threshold a report's histograms and error gallery use, and the rule that chose it."""

    value: float
    rule: str


class Curves(Result):
    roc_fpr: list[float]
    roc_tpr: list[float]
    roc_threshold: list[float]
    det_fpr: list[float]
    det_fnr: list[float]


class FarCalibration(Result):
    """The threshold for one stated false-accept rate, and what it delivered on folds it was not chosen on."""

    target_far: float
    threshold: float
    achieved_far: float
    tar: float
    held_out_far: float | None
    held_out_tar: float | None
    n_impostors: int
    below_resolution: bool


class ErrorCounts(Result):
    false_accepts: int
    false_rejects: int


class VerificationMetrics(Result):
    """What :func:`~facemetric.eval.verification.metrics.verification_report` measures on scored pairs: k-fold
    accuracy (each fold's threshold chosen on the other folds), the ROC figures and the optimistic accuracy."""

    accuracy: float
    accuracy_std: float
    n_folds: int
    folds_from_file: bool
    per_fold: list[float]
    fold_thresholds: list[float]
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far: dict[str, float]  # key: the FAR as "1e-03"
    num_positive: int
    num_negative: int
    optimistic: OptimisticAccuracy


class VerificationResult(VerificationMetrics):
    """An evaluation's verification section (``eval.json``): the metrics, with the pairs' source, the
    operating threshold, the curve points, the threshold per stated FAR and the errors at the threshold."""

    source: str | None = None
    threshold: OperatingThreshold | None = None
    curves: Curves | None = None
    far_calibration: dict[str, FarCalibration] = Field(default_factory=dict)
    errors: ErrorCounts | None = None


class PairProtocolSummary(Result):
    """What :func:`~facemetric.eval.verification.files.make_pair_protocol` wrote, and how to evaluate on it."""

    output: str
    folds: int
    pairs_per_class_per_fold: int
    pairs: int
    notes: list[str]
    usage: str  # the command that evaluates a model on it
