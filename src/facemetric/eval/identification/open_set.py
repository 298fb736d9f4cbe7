"""Open-set (watch-list) identification: DIR at a false-alarm rate, with the threshold calibrated on validation.

Verification compares one pair; identification searches one probe against an enrolled gallery of
identities (:mod:`facemetric.eval.identification.search`). In the open set (the watch-list setting of
NIST FRVT 1:N, Grother & Ngan) some probes are of people who are not enrolled ("unknown" probes). A
system returns its top identity only when the top score reaches a threshold, and "no correspondence"
otherwise. With the rule *accept when score >= threshold*:

- FAR (false-alarm rate; FRVT's FPIR) = fraction of unknown probes whose top score >= threshold;
- DIR (detection-and-identification rate; 1 - FNIR at rank 1) = fraction of known probes whose top-1
  identity is correct AND whose top score >= threshold.

Why a separate calibration step: a threshold chosen on the test probes makes the test FAR hit its
target by construction and says nothing about deployment. So the threshold
(:func:`~facemetric.eval.primitives.calibrate_threshold`) is calibrated on the unknown probes of a
*validation* split: :func:`open_set_report` calibrates on validation and measures on test; its DIR@FAR
curve, whose thresholds are re-chosen on the test unknowns, is labelled as such. The closed set (every
probe enrolled, the CMC curve) is :mod:`facemetric.eval.identification.closed_set`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from facemetric.core.matching import UNKNOWN
from facemetric.core.results import CalibratedThreshold
from facemetric.eval.identification.result import DirAtFar, OpenSetResult, OpenSetTest, OpenSetValidation
from facemetric.eval.identification.search import Templates, check_probes, search_gallery
from facemetric.eval.primitives import (
    calibrate_threshold,
    check_far,
    check_positive_int,
    check_scores,
    threshold_at_far,
)


def dir_at_far(
    known_top_scores: ArrayLike,
    known_top_correct: ArrayLike,
    unknown_top_scores: ArrayLike,
    fars: Sequence[float],
    unknown_rejected: int = 0,
) -> dict[str, Any]:
    """DIR at each false-alarm rate, thresholds chosen on ``unknown_top_scores``.

    For FAR f with n unknown probes, the threshold t is the k-th highest unknown
    top score, k = floor(f * n) (moved up past ties, see below), so that exactly
    k unknown probes score >= t; DIR(f) is the fraction of known probes with a
    correct top-1 identity and a top score >= t.

    Ties: when the k-th highest unknown score is shared with the (k+1)-th, t
    moves to the next higher distinct unknown score, so ``achieved_far`` (the
    fraction of unknown scores >= t) is then below f. Resolution: a FAR below
    1/n cannot be measured with n unknown probes; t is then the strictest
    threshold, the next float above the highest unknown score, ``achieved_far``
    is 0 and ``below_resolution`` is True. ``achieved_far <= far`` always.

    ``unknown_rejected`` unknown probes were turned away before any search (no
    face found): they are among the n unknown probes but never raise an alarm (a
    known probe turned away is passed in ``known_top_correct`` as not correct).

    Returns lists aligned with ``fars``: ``far``, ``threshold``, ``dir``,
    ``achieved_far``, ``below_resolution``, plus ``far_resolution`` (1/n),
    ``n_known`` and ``n_unknown``.
    """
    known = check_scores(known_top_scores, "known_top_scores")
    correct = np.asarray(known_top_correct)
    if correct.ndim != 1 or len(correct) != len(known):
        raise ValueError(
            f"known_top_correct must give one flag per known probe: got shape "
            f"{correct.shape} for {len(known)} known_top_scores"
        )
    if correct.dtype != np.bool_:
        if not np.all(np.isin(correct, (0, 1))):
            raise ValueError("known_top_correct must be booleans (or 0/1): is the top-1 identity right?")
        correct = correct.astype(bool)
    unknown_rejected = int(unknown_rejected)
    if unknown_rejected < 0:
        raise ValueError(f"unknown_rejected must be >= 0, got {unknown_rejected}")
    if unknown_rejected and not len(np.asarray(unknown_top_scores)):
        unknown = np.zeros(0)  # every unknown probe was turned away: none alarms at any threshold
    else:
        unknown = np.sort(check_scores(unknown_top_scores, "unknown_top_scores"))
    fars = list(fars)
    if not fars:
        raise ValueError("fars is empty; give at least one false-alarm rate")
    n = len(unknown) + unknown_rejected
    out: dict[str, Any] = {
        "far": [],
        "threshold": [],
        "dir": [],
        "achieved_far": [],
        "below_resolution": [],
    }
    for i, f in enumerate(fars):
        f = check_far(f, f"fars[{i}]")
        t, alarms = threshold_at_far(unknown, f, unknown_rejected)
        out["far"].append(f)
        out["threshold"].append(t)
        out["dir"].append(float(np.mean(correct & (known >= t))))
        out["achieved_far"].append(alarms / n)
        out["below_resolution"].append(f < 1.0 / n)
    out.update(far_resolution=1.0 / n, n_known=len(known), n_unknown=n)
    return out


def decide(
    probe_top_labels: ArrayLike,
    probe_top_scores: ArrayLike,
    threshold: CalibratedThreshold | float,
    unknown: Any = UNKNOWN,
) -> list[Any]:
    """Open-set decision per probe: its top identity if score >= threshold, else ``unknown``."""
    labels = np.asarray(probe_top_labels)
    scores = check_scores(probe_top_scores, "probe_top_scores")
    if labels.ndim != 1 or len(labels) != len(scores):
        raise ValueError(
            f"probe_top_labels must give one label per probe: got shape {labels.shape} for "
            f"{len(scores)} probe_top_scores"
        )
    t = threshold.value if isinstance(threshold, CalibratedThreshold) else threshold
    if (
        isinstance(t, (bool, np.bool_))
        or not isinstance(t, (int, float, np.integer, np.floating))
        or not math.isfinite(t)
    ):
        raise ValueError(f"threshold must be a CalibratedThreshold or a finite number, got {threshold!r}")
    names = labels.tolist()
    if unknown in names:
        raise ValueError(
            f"the unknown label {unknown!r} is also a gallery identity, so decisions would be "
            "ambiguous; pass a different unknown= label"
        )
    return [name if s >= t else unknown for name, s in zip(names, scores.tolist())]


def open_set_report(
    gallery_emb: ArrayLike,
    gallery_labels: ArrayLike,
    val_emb: ArrayLike,
    val_labels: ArrayLike,
    test_emb: ArrayLike,
    test_labels: ArrayLike,
    target_far: float = 0.01,
    fars: Sequence[float] = (1e-3, 1e-2, 1e-1),
    template: str = "max",
    chunk: int = 4096,
    test_rejected: ArrayLike | None = None,
) -> OpenSetResult:
    """Open-set identification: calibrate on validation, report on test.

    A probe is *known* when its label is a gallery label and *unknown*
    otherwise (unknown probes may share any label not in the gallery, e.g. -1).
    The threshold is calibrated at ``target_far`` on the validation unknowns only
    (:func:`calibrate_threshold`); the test split is then measured at it:

    * ``test.dir``: DIR of the known test probes at the calibrated threshold;
    * ``test.false_alarm_rate``: measured FAR of the test unknowns (close to,
      not exactly, the target: it is an honest held-out estimate);
    * ``test.rank1``: closed-set rank-1 rate of the known test probes;
    * ``test.dir_at_far``: :func:`dir_at_far` on the test probes, with
      thresholds re-chosen on the test unknowns (``computed_on: "test"``):
      a curve for comparing models, not a deployable operating point.

    A known probe counts as correctly identified when its true identity has
    rank 1 (ties counted against it, as in :func:`~facemetric.eval.identification.closed_set.cmc`).

    ``test_rejected`` flags test probes turned away before any search (no face
    found in the photo; their rows of ``test_emb`` are not read), as a deployed
    system that refuses such photos does: a known one is not identified (a miss
    for DIR and rank-1), an unknown one raises no false alarm; both count in
    ``n_known`` / ``n_unknown`` and in the rates' denominators.
    """
    chunk = check_positive_int(chunk, "chunk")
    target_far = check_far(target_far, "target_far")
    gallery = Templates(gallery_emb, gallery_labels, template)

    def search(
        emb: ArrayLike, labels: ArrayLike, name: str, rejected: ArrayLike | None = None
    ) -> tuple[np.ndarray, ...]:
        e, y, rej = check_probes(emb, labels, rejected, name)
        true_idx = gallery.lookup(y)
        top_score = np.full(len(y), -1.0)  # a turned-away probe: never correct, never an alarm (masked below)
        rank = np.zeros(len(y), dtype=np.int64)
        if e is not None:
            _, top_score[~rej], rank[~rej] = search_gallery(gallery, e, true_idx[~rej], chunk)
        return true_idx >= 0, top_score, rank, rej

    val_known, val_score, val_rank, _ = search(val_emb, val_labels, "val")
    if val_known.all():
        raise ValueError(
            "every validation probe is enrolled in the gallery; calibration needs unknown "
            "probes (labels not in gallery_labels) in the validation split"
        )
    test_known, test_score, test_rank, test_rej = search(test_emb, test_labels, "test", test_rejected)
    if test_known.all() or not test_known.any():
        raise ValueError(
            f"the test split needs both known and unknown probes, got {int(test_known.sum())} "
            f"known and {int((~test_known).sum())} unknown (a probe is known when its label "
            "is in gallery_labels: check the label types match)"
        )

    n_val_unknown = int((~val_known).sum())
    threshold = calibrate_threshold(
        val_score[~val_known],
        target_far,
        source=f"validation split: top scores of {n_val_unknown} unknown probes",
    )
    t = threshold.value
    correct = test_rank[test_known] == 1  # rank 0 for a probe turned away: never correct
    known_scores = test_score[test_known]
    unknown_scores = test_score[~test_known & ~test_rej]  # the turned-away unknowns never alarm
    n_test_unknown = int((~test_known).sum())
    val_correct = val_rank[val_known] == 1
    curve = dir_at_far(
        known_scores, correct, unknown_scores, fars, unknown_rejected=int((~test_known & test_rej).sum())
    )
    return OpenSetResult(
        threshold=threshold,
        test=OpenSetTest(
            n_known=int(test_known.sum()),
            n_unknown=n_test_unknown,
            dir=float(np.mean(correct & (known_scores >= t))),
            false_alarm_rate=float(np.sum(unknown_scores >= t) / n_test_unknown),
            rank1=float(np.mean(correct)),
            dir_at_far=DirAtFar(
                **curve,
                computed_on="test",
                note="thresholds re-chosen on the test unknowns; compare models with it, do not deploy its thresholds",
            ),
        ),
        validation=OpenSetValidation(
            n_known=int(val_known.sum()),
            n_unknown=n_val_unknown,
            dir=float(np.mean(val_correct & (val_score[val_known] >= t))) if val_correct.size else None,
        ),
        template=template,
        n_gallery_identities=len(gallery),
        n_gallery_images=gallery.n_images,
    )
