"""Typed evaluation results: what ``eval.json`` holds, checked when written and when read.

The metric functions (``facemetric.eval.verification``, ``identification``, ``retrieval``) are
pure functions returning plain dicts; the evaluation suite validates them into these models, the
evaluation folder is written from them, and the report reads them back through them. A metric
renamed on one side without the other fails validation (unknown keys are refused) instead of
silently dropping a row from a report.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from facemetric.core.faces import Detection
from facemetric.core.matching import Template

EVAL_FORMAT = "facemetric-eval/1"


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ verification


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


class VerificationResult(Result):
    """k-fold accuracy (each fold's threshold chosen on the other folds), ROC figures and calibration."""

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
    source: str | None = None
    threshold: OperatingThreshold | None = None
    curves: Curves | None = None
    far_calibration: dict[str, FarCalibration] = Field(default_factory=dict)
    errors: ErrorCounts | None = None


# ------------------------------------------------------------------ identification


class ClosedSetResult(Result):
    """CMC: ``ranks[k - 1]`` is the rank-k identification rate."""

    ranks: list[float]
    rank1: float
    rank5: float
    n_identities: int
    n_probes: int
    template: str


class CalibratedThreshold(Result):
    """A decision threshold set at a stated false-accept rate: facemetric's one threshold record.

    Written by :func:`facemetric.eval.identification.calibrate_threshold` for an evaluation's open-set
    split (``eval.json``) and by a gallery's calibration (stored with the gallery, answered by the API).
    The gallery fills ``template``, ``gallery_identities`` and ``calibrated``; an evaluation leaves them
    null (its result says the template and gallery size once, beside the threshold).
    """

    # the API's schema lists fields with a default as required: the JSON always has them (maybe null)
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    value: float = Field(description="the threshold: accept when score >= value")
    target_far: float = Field(description="the false-accept rate asked for")
    achieved_far: float = Field(description="the false-accept rate on the impostor scores it was set on (<= target)")
    n_impostors: int = Field(
        ge=0,
        description="impostor scores it was set on: for identification, searches by someone not enrolled; for "
        "verification, comparisons with another person",
    )
    source: str = Field(description="where the impostor scores came from")
    below_resolution: bool = Field(
        description="true when target_far < 1 / n_impostors: too few impostors to measure that rate (the "
        "threshold is then the strictest the data allows)"
    )
    template: Template | None = Field(
        None, description="the template the scores used (`max` or `mean`); a gallery's answers warn under another"
    )
    gallery_identities: int | None = Field(
        None,
        ge=0,
        description="people enrolled when calibrated; a gallery's identify answers warn once it has 1.5 times as many",
    )
    calibrated: str | None = Field(None, description="when a gallery was calibrated, as local time YYYY-MM-DDTHH:MM:SS")


class DirAtFar(Result):
    """DIR at several FARs, thresholds re-chosen on the test unknowns (to compare models, not to deploy)."""

    far: list[float]
    threshold: list[float]
    dir: list[float]
    achieved_far: list[float]
    below_resolution: list[bool]
    far_resolution: float
    n_known: int
    n_unknown: int
    computed_on: str
    note: str


class OpenSetTest(Result):
    n_known: int
    n_unknown: int
    dir: float
    false_alarm_rate: float
    rank1: float
    dir_at_far: DirAtFar


class OpenSetValidation(Result):
    n_known: int
    n_unknown: int
    dir: float | None


class OpenSetResult(Result):
    threshold: CalibratedThreshold
    test: OpenSetTest
    validation: OpenSetValidation
    template: str
    n_gallery_identities: int
    n_gallery_images: int


class IdentificationResult(Result):
    closed_set: ClosedSetResult
    open_set: OpenSetResult
    decisions_csv: str


# ------------------------------------------------------------------ retrieval


class RetrievalResult(Result):
    precision_at_1: float
    r_precision: float
    map_at_r: float
    recall_at_k: dict[str, float]  # key: K
    num_queries: int
    num_evaluated: int
    queries_without_positives: int
    queries_r_capped: int
    max_r: int | None
    k_searched: int
    leave_one_out: bool
    index: str
    exact: bool


# ------------------------------------------------------------------ photos without a face


NoFacePolicy = Literal["fallback", "reject", "fail"]


FaceDetection = Detection  # what a detector found in a photo, as written to ``eval.json``


class NoFacePhoto(Result):
    """A readable photo in which the model's detector found no face, and what was done with it."""

    path: str
    reason: str  # the detector's message
    detection: FaceDetection  # found False; backend "<detector>/fallback" when the central crop was used
    subset: str | None = None  # its open-set subset (gallery, val_known, ...), when the split lists it


class NoFacePair(Result):
    """A verification pair with at least one photo without a face."""

    index: int  # 0-based position among the protocol's pairs (the rows of scores.npz)
    line: int | None  # line of the pairs file
    path1: str
    path2: str
    same: bool
    score: float  # the score the pair was given (-1 under the reject policy)


class NoFaceRetrieval(Result):
    """Photos of the retrieval dataset without a face: central crop (fallback) or left out (reject)."""

    n_photos: int
    left_out: int  # images not in the retrieval metrics for want of a face
    photos: list[NoFacePhoto]


class NoFaceReport(Result):
    """Photos without a detectable face and the pairs, probes and gallery photos they affected.

    ``policy`` is ``facemetric eval --no-face``: ``fallback`` (the spec's central crop is embedded),
    ``reject`` (as a deployed system that turns such photos away: non-matches, rejected probes,
    not enrolled) or ``fail`` (the evaluation stops: only written when no photo lacked a face).
    ``rule`` says in words what was done.
    """

    policy: NoFacePolicy
    rule: str
    n_photos: int  # photos of the pairs file / open-set split without a face
    n_pairs: int  # pairs with at least one of them
    photos: list[NoFacePhoto] = Field(default_factory=list)
    pairs: list[NoFacePair] = Field(default_factory=list)
    open_set: dict[str, int] = Field(default_factory=dict)  # open-set subset -> photos without a face
    not_enrolled: list[str] = Field(default_factory=list)  # identities left without a gallery photo (reject)
    retrieval: NoFaceRetrieval | None = None

    def affected(self) -> bool:
        """True when any photo (of the protocol files or the retrieval dataset) had no detectable face."""
        return bool(self.n_photos or (self.retrieval is not None and self.retrieval.n_photos))

    def summary(self) -> str:
        """One line: "2 photos had no detectable face; 3 pairs affected (policy: fallback)"."""
        parts = []
        r = self.retrieval
        if self.n_photos or r is None or not r.n_photos:
            parts.append(f"{_count(self.n_photos, 'photo')} had no detectable face")
            if self.n_pairs:
                parts.append(f"{_count(self.n_pairs, 'pair')} affected")
            if self.open_set:
                parts.append("open set: " + ", ".join(f"{n} {name}" for name, n in self.open_set.items()))
            if self.not_enrolled:
                parts.append(f"{_count(len(self.not_enrolled), 'identity', 'identities')} not enrolled")
        if r is not None and r.n_photos:
            left_out = f" ({r.left_out} left out)" if r.left_out else ""
            parts.append(f"{_count(r.n_photos, 'photo')} of the retrieval dataset had no detectable face{left_out}")
        return "; ".join(parts) + f" (policy: {self.policy})"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


# ------------------------------------------------------------------ the evaluation


class EvalSummary(Result):
    """The protocols that were run (the others are None), and the photos without a face found."""

    verification: VerificationResult | None = None
    identification: IdentificationResult | None = None
    retrieval: RetrievalResult | None = None
    no_face: NoFaceReport | None = None  # evaluations of photo files (``facemetric eval``) only


class EvalDocument(EvalSummary):
    """``eval.json`` of an evaluation folder: what was evaluated, on what, and the results."""

    format: Literal["facemetric-eval/1"] = "facemetric-eval/1"
    created: str
    checkpoint: str  # the model evaluated: a file, or a pretrained model's name
    run_dir: str | None = None  # the training run the checkpoint came from, if any
    flip: bool = False
    embedding_dim: int
    data: dict[str, Any] = Field(default_factory=dict)  # a description of the images and protocol files
    notes: list[str] = Field(default_factory=list)
