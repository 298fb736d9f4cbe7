"""The typed document of a face evaluation: ``eval.json`` (format ``facemetric-eval/1``), checked when written
and when read back by the report.

Each task's section is its own typed result (``facemetric.eval.<task>.result``); this module puts them
together with what was evaluated and on what, and records the photos in which the model found no face
(:class:`NoFaceReport`, ``facemetric eval --no-face``). A new face task adds its result as one more
optional field of :class:`EvalSummary`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from facemetric.core.faces import Detection
from facemetric.core.results import Result
from facemetric.eval.identification.result import IdentificationResult
from facemetric.eval.pose.result import PoseBreakdown
from facemetric.eval.retrieval.result import RetrievalResult
from facemetric.eval.verification.result import (
    ErrorCounts,
    FarCalibration,
    OperatingThreshold,
    VerificationMetrics,
    VerificationResult,
)

EVAL_FORMAT = "facemetric-eval/1"

DataDescription = dict[str, str | int]  # what an evaluation ran on, label -> value (eval.json's ``data``)

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


# ------------------------------------------------------------------ the evaluation document


class EvalSummary(Result):
    """The protocols that were run (the others are None), and the photos without a face found."""

    verification: VerificationResult | None = None
    identification: IdentificationResult | None = None
    retrieval: RetrievalResult | None = None
    no_face: NoFaceReport | None = None  # evaluations of photo files (``facemetric eval``) only
    pose: PoseBreakdown | None = None  # verification by head pose, where the photos' yaws are known


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


# ------------------------------------------------------------------ a pairs file's verification summary


class NoFaceCounts(Result):
    """The no-face policy of an evaluation and how many photos and pairs it affected."""

    policy: NoFacePolicy
    photos: int
    pairs: int


class PairsFileReport(VerificationMetrics):
    """What :func:`~facemetric.eval.suite.files.evaluate_pairs_file` returns: the verification section of the
    evaluation of a pairs file without its curve points, with the pairs file, pair and image counts and the
    photos without a face (what the demo writes to ``demo_report.json``)."""

    source: str | None = None
    threshold: OperatingThreshold | None = None
    far_calibration: dict[str, FarCalibration] = Field(default_factory=dict)
    errors: ErrorCounts | None = None
    pairs_file: str
    num_pairs: int
    num_images: int
    flip: bool
    no_face: NoFaceCounts
