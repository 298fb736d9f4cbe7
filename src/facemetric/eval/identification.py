"""Face-identification metrics: closed-set CMC and open-set (watch-list) DIR@FAR.

Verification compares one pair; identification searches one probe against an
enrolled gallery of identities, each with one or more images.

* Closed set: every probe's identity is enrolled. The metric is the CMC curve,
  the fraction of probes whose true identity is among the ``k`` best-scoring
  gallery identities (:func:`cmc`).
* Open set (the watch-list setting of NIST FRVT 1:N, Grother & Ngan): some
  probes are of people who are not enrolled ("unknown" probes). A system
  returns its top identity only when the top score reaches a threshold, and
  "no correspondence" otherwise. With the rule *accept when score >= threshold*:

  - FAR (false-alarm rate; FRVT's FPIR) = fraction of unknown probes whose top
    score >= threshold;
  - DIR (detection-and-identification rate; 1 - FNIR at rank 1) = fraction of
    known probes whose top-1 identity is correct AND whose top score >= threshold.

Why a separate calibration step: a threshold chosen on the test probes makes the
test FAR hit its target by construction and says nothing about deployment. So
:func:`calibrate_threshold` is meant for the unknown probes of a *validation*
split, and :func:`open_set_report` calibrates on validation and measures on test;
its DIR@FAR curve, whose thresholds are re-chosen on the test unknowns, is
labelled as such.

Embeddings are L2-normalised ``(N, D)`` float arrays, so a score is the cosine
similarity (a dot product; higher = more similar). Scores are computed in
chunks of probes, so memory is O(chunk x gallery images), never O(probes x gallery).
Results are plain Python numbers / lists (``to_dict`` for the dataclasses) so
they can be written straight to JSON.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from facemetric.core.atomic import write_atomic
from facemetric.core.matching import TEMPLATES, UNKNOWN
from facemetric.core.results import CalibratedThreshold
from facemetric.eval.checks import check_labels, check_positive_int

_NORM_TOL = 1e-2  # |norm - 1| allowed for "L2-normalised" (float16/bfloat16 storage included)


# --------------------------------------------------------------------------- input checks


def _check_embeddings(emb: ArrayLike, name: str) -> np.ndarray:
    """Return ``emb`` as a float32 (N, D) array of unit rows, or raise ValueError."""
    e = np.asarray(emb)
    if e.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {e.shape}")
    if e.shape[0] == 0 or e.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {e.shape})")
    if not np.issubdtype(e.dtype, np.floating):
        raise ValueError(f"{name} must be a float array of embeddings, got dtype {e.dtype}")
    e = np.asarray(e, dtype=np.float32)
    finite = np.isfinite(e).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name} has {int(np.sum(~finite))} rows with NaN/inf values")
    norms = np.sqrt(np.einsum("nd,nd->n", e, e, dtype=np.float64))
    bad = np.abs(norms - 1.0) > _NORM_TOL
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} rows of {name} are not unit length (norms "
            f"{norms[bad].min():.4g}..{norms[bad].max():.4g}); L2-normalise the "
            "embeddings first: x / np.linalg.norm(x, axis=1, keepdims=True)"
        )
    return e


def _check_scores(scores: ArrayLike, name: str) -> np.ndarray:
    """Return ``scores`` as a non-empty, finite 1-D float64 array."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {s.shape}")
    if len(s) == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(s)))} NaN/inf values")
    return s


def _check_far(far: Any, name: str) -> float:
    """Return ``far`` as a float in [0, 1], or raise ValueError."""
    if isinstance(far, (bool, np.bool_)) or not isinstance(far, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number in [0, 1], got {far!r}")
    f = float(far)
    if not 0.0 <= f <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a false-alarm rate in [0, 1], got {far!r}")
    return f


def _check_probes(
    emb: ArrayLike, labels: ArrayLike, rejected: ArrayLike | None, name: str
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(embeddings of the probes searched, labels of all, rejected mask of all)``.

    ``rejected`` flags probes turned away before any search (no face found): their rows of ``emb``
    are not read (None when every probe was turned away); None means no probe was.
    """
    if rejected is None:
        e = _check_embeddings(emb, f"{name}_emb")
        return e, check_labels(labels, len(e), f"{name}_labels", f"{name}_emb"), np.zeros(len(e), dtype=bool)
    raw = np.asarray(emb)
    if raw.ndim != 2 or not len(raw):
        _check_embeddings(raw, f"{name}_emb")  # raises its message
    y = check_labels(labels, len(raw), f"{name}_labels", f"{name}_emb")
    r = np.asarray(rejected)
    if r.ndim != 1 or len(r) != len(raw):
        raise ValueError(f"{name}_rejected must give one flag per row of {name}_emb ({len(raw)}), got shape {r.shape}")
    if r.dtype != np.bool_:
        if not np.all(np.isin(r, (0, 1))):
            raise ValueError(f"{name}_rejected must be booleans (or 0/1): was the probe turned away?")
        r = r.astype(bool)
    kept = _check_embeddings(raw[~r], f"{name}_emb") if (~r).any() else None
    return kept, y, r


# --------------------------------------------------------------------------- gallery search


class _Templates:
    """A gallery prepared for search: identities sorted, images grouped per identity."""

    def __init__(self, emb: ArrayLike, labels: ArrayLike, template: str) -> None:
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        e = _check_embeddings(emb, "gallery_emb")
        y = check_labels(labels, len(e), "gallery_labels", "gallery_emb")
        self.template = template
        self.identities, inverse = np.unique(y, return_inverse=True)
        self.index = {label: k for k, label in enumerate(self.identities.tolist())}
        self.n_images = len(e)
        order = np.argsort(inverse, kind="stable")
        grouped = e[order]
        # first row of each identity in ``grouped``; every identity has >= 1 image
        self.starts = np.searchsorted(inverse[order], np.arange(len(self.identities)))
        if template == "max":
            self.matrix = grouped
        else:
            sums = np.add.reduceat(grouped.astype(np.float64), self.starts, axis=0)
            norms = np.linalg.norm(sums, axis=1)
            zero = norms < 1e-6 * np.diff(np.append(self.starts, len(e)))
            if zero.any():
                raise ValueError(
                    "the mean template of gallery identities "
                    f"{self.identities[zero][:5].tolist()} has (near) zero length: their "
                    "images cancel out; use template='max' or check those images"
                )
            self.matrix = (sums / norms[:, None]).astype(np.float32)
        self.dim = e.shape[1]

    def __len__(self) -> int:
        return len(self.identities)

    def lookup(self, labels: np.ndarray) -> np.ndarray:
        """Identity index of each label, -1 for labels not in the gallery."""
        return np.array([self.index.get(v, -1) for v in labels.tolist()], dtype=np.int64)

    def scores(self, probes: np.ndarray) -> np.ndarray:
        """(len(probes), n_identities) identity scores of a chunk of probes."""
        s = probes @ self.matrix.T
        if self.template == "max":
            s = np.maximum.reduceat(s, self.starts, axis=1)
        return s


def _search(
    gallery: _Templates, probes: np.ndarray, true_idx: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top identity index, top score and rank of the true identity for each probe.

    The rank is ``1 +`` the number of *other* identities scoring >= the true
    identity (ties count against the probe); it is 0 where ``true_idx`` is -1.
    """
    if probes.shape[1] != gallery.dim:
        raise ValueError(
            f"probe embeddings have dimension {probes.shape[1]} but the gallery has "
            f"{gallery.dim}; embed both with the same model"
        )
    n = len(probes)
    top_idx = np.empty(n, dtype=np.int64)
    top_score = np.empty(n, dtype=np.float64)
    rank = np.zeros(n, dtype=np.int64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        s = gallery.scores(probes[start:stop])
        rows = np.arange(stop - start)
        best = np.argmax(s, axis=1)
        top_idx[start:stop] = best
        top_score[start:stop] = s[rows, best]
        t = true_idx[start:stop]
        known = t >= 0
        true_s = s[rows, np.where(known, t, 0)]
        rank[start:stop] = np.where(known, np.sum(s >= true_s[:, None], axis=1), 0)
    return top_idx, top_score, rank


def top_matches(
    probe_emb: ArrayLike,
    gallery_emb: ArrayLike,
    gallery_labels: ArrayLike,
    template: str = "max",
    chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """Best gallery identity and its score for each probe (the inputs of the open-set metrics).

    Ties for the top go to the identity that sorts first. Returns
    ``(top_labels, top_scores)``: labels in the gallery's label dtype, scores float64.
    """
    chunk = check_positive_int(chunk, "chunk")
    gallery = _Templates(gallery_emb, gallery_labels, template)
    p = _check_embeddings(probe_emb, "probe_emb")
    top_idx, top_score, _ = _search(gallery, p, np.full(len(p), -1), chunk)
    return gallery.identities[top_idx], top_score


# --------------------------------------------------------------------------- closed set


@dataclass(frozen=True, eq=False)
class CMCResult:
    """Closed-set identification result.

    ``ranks[k - 1]`` is the rank-k identification rate for k = 1 .. min(max_rank,
    n_identities) (beyond the number of identities every rate is trivially 1).
    ``rank5`` is the rate at rank min(5, n_identities). ``per_probe_rank`` is
    the 1-based rank of each probe's true identity, ties counted against the probe.
    """

    ranks: np.ndarray
    rank1: float
    rank5: float
    per_probe_rank: np.ndarray
    n_identities: int
    n_probes: int
    template: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the per-probe ranks are left out)."""
        return {
            "ranks": self.ranks.tolist(),
            "rank1": self.rank1,
            "rank5": self.rank5,
            "n_identities": self.n_identities,
            "n_probes": self.n_probes,
            "template": self.template,
        }


def _missing_error(missing: np.ndarray, probe_labels: np.ndarray, gallery: _Templates) -> ValueError:
    names = list(dict.fromkeys(probe_labels[missing].tolist()))
    return ValueError(
        f"{int(missing.sum())} probes ({len(names)} identities, e.g. {names[:5]}) are not in "
        "the gallery, but closed-set identification needs every probe identity enrolled "
        f"(probe_labels dtype {probe_labels.dtype}, gallery_labels dtype "
        f"{gallery.identities.dtype}); remove those probes, or evaluate them as unknown "
        "probes with open_set_report"
    )


def cmc(
    probe_emb: ArrayLike,
    probe_labels: ArrayLike,
    gallery_emb: ArrayLike,
    gallery_labels: ArrayLike,
    max_rank: int = 20,
    template: str = "max",
    chunk: int = 4096,
    rejected: ArrayLike | None = None,
) -> CMCResult:
    """Closed-set CMC curve of probes searched against a gallery.

    A gallery identity may have several images: ``template="max"`` scores it by
    its best-matching image, ``"mean"`` by the cosine to the re-normalised mean
    of its images. The rank of a probe is 1 + the number of other identities
    scoring >= its true identity, so a tie never flatters the model. Every probe
    identity must be in the gallery (ValueError listing some that are not).

    ``rejected`` flags probes turned away before any search (no face found in the photo):
    they are never identified, at any rank (their rank is ``n_identities + 1``), and their
    rows of ``probe_emb`` are not read.
    """
    max_rank = check_positive_int(max_rank, "max_rank")
    chunk = check_positive_int(chunk, "chunk")
    gallery = _Templates(gallery_emb, gallery_labels, template)
    p, y, rej = _check_probes(probe_emb, probe_labels, rejected, "probe")
    true_idx = gallery.lookup(y)
    missing = true_idx < 0
    if missing.any():
        raise _missing_error(missing, y, gallery)
    rank = np.full(len(y), len(gallery) + 1, dtype=np.int64)
    if p is not None:
        rank[~rej] = _search(gallery, p, true_idx[~rej], chunk)[2]
    k = np.arange(1, min(max_rank, len(gallery)) + 1)
    rates = np.mean(rank[:, None] <= k[None, :], axis=0)
    return CMCResult(
        ranks=rates,
        rank1=float(np.mean(rank <= 1)),
        rank5=float(np.mean(rank <= 5)),
        per_probe_rank=rank,
        n_identities=len(gallery),
        n_probes=len(y),
        template=template,
    )


# --------------------------------------------------------------------------- open set


def _threshold_at_far(unknown_sorted: np.ndarray, far: float, rejected: int = 0) -> tuple[float, int]:
    """Loosest threshold, among the unknown scores and "above them all", with FAR <= ``far``.

    ``unknown_sorted`` is ascending. With n unknown probes at most
    k = floor(far * n) may score >= the threshold. The threshold is the k-th
    highest unknown score; if that score is tied with the (k+1)-th, every copy
    of it would alarm, so the threshold moves up to the next higher distinct
    score. With k = 0 it is the next float above the highest unknown score.
    ``rejected`` more unknown probes were turned away before any search: they
    count in n but never alarm (when k reaches the scored ones, the threshold is
    the lowest unknown score; with none scored, -1, the lowest cosine).
    Returns ``(threshold, number of unknown scores >= threshold)``.
    """
    n = len(unknown_sorted)
    k = int(math.floor(far * (n + rejected) + 1e-9))
    if n == 0:
        return -1.0, 0
    above_all = (float(np.nextafter(unknown_sorted[-1], np.inf)), 0)
    if k == 0:
        return above_all
    if k >= n:
        return float(unknown_sorted[0]), n
    value = unknown_sorted[n - k]
    if np.searchsorted(unknown_sorted, value, side="left") == n - k:
        return float(value), k
    right = int(np.searchsorted(unknown_sorted, value, side="right"))
    if right == n:
        return above_all
    return float(unknown_sorted[right]), n - right


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
    known = _check_scores(known_top_scores, "known_top_scores")
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
        unknown = np.sort(_check_scores(unknown_top_scores, "unknown_top_scores"))
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
        f = _check_far(f, f"fars[{i}]")
        t, alarms = _threshold_at_far(unknown, f, unknown_rejected)
        out["far"].append(f)
        out["threshold"].append(t)
        out["dir"].append(float(np.mean(correct & (known >= t))))
        out["achieved_far"].append(alarms / n)
        out["below_resolution"].append(f < 1.0 / n)
    out.update(far_resolution=1.0 / n, n_known=len(known), n_unknown=n)
    return out


def calibrate_threshold(
    unknown_top_scores: ArrayLike, target_far: float, source: str = "validation unknown probes"
) -> CalibratedThreshold:
    """Threshold at which a fraction ``target_far`` of unknown probes would raise a false alarm.

    Pass the top scores of unknown probes from a *validation* split (people not
    in the gallery, and not the people of the test unknowns): calibrating on the
    test probes makes the test FAR meet its target by construction. The rule is
    the one of :func:`dir_at_far` (k-th highest score, ties and resolution alike),
    which errs on the strict side: on held-out impostors from the same
    distribution the expected FAR is k / (n + 1) <= target.
    """
    f = _check_far(target_far, "target_far")
    unknown = np.sort(_check_scores(unknown_top_scores, "unknown_top_scores"))
    t, alarms = _threshold_at_far(unknown, f)
    n = len(unknown)
    return CalibratedThreshold(
        value=t,
        target_far=f,
        achieved_far=alarms / n,
        n_impostors=n,
        source=str(source),
        below_resolution=f < 1.0 / n,
    )


def decide(
    probe_top_labels: ArrayLike,
    probe_top_scores: ArrayLike,
    threshold: CalibratedThreshold | float,
    unknown: Any = UNKNOWN,
) -> list[Any]:
    """Open-set decision per probe: its top identity if score >= threshold, else ``unknown``."""
    labels = np.asarray(probe_top_labels)
    scores = _check_scores(probe_top_scores, "probe_top_scores")
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
) -> dict[str, Any]:
    """Open-set identification: calibrate on validation, report on test, JSON-serialisable.

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
    rank 1 (ties counted against it, as in :func:`cmc`).

    ``test_rejected`` flags test probes turned away before any search (no face
    found in the photo; their rows of ``test_emb`` are not read), as a deployed
    system that refuses such photos does: a known one is not identified (a miss
    for DIR and rank-1), an unknown one raises no false alarm; both count in
    ``n_known`` / ``n_unknown`` and in the rates' denominators.
    """
    chunk = check_positive_int(chunk, "chunk")
    target_far = _check_far(target_far, "target_far")
    gallery = _Templates(gallery_emb, gallery_labels, template)

    def search(
        emb: ArrayLike, labels: ArrayLike, name: str, rejected: ArrayLike | None = None
    ) -> tuple[np.ndarray, ...]:
        e, y, rej = _check_probes(emb, labels, rejected, name)
        true_idx = gallery.lookup(y)
        top_score = np.full(len(y), -1.0)  # a turned-away probe: never correct, never an alarm (masked below)
        rank = np.zeros(len(y), dtype=np.int64)
        if e is not None:
            _, top_score[~rej], rank[~rej] = _search(gallery, e, true_idx[~rej], chunk)
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
    curve.update(
        computed_on="test",
        note="thresholds re-chosen on the test unknowns; compare models with it, do not deploy its thresholds",
    )
    return {
        "threshold": threshold.model_dump(),
        "test": {
            "n_known": int(test_known.sum()),
            "n_unknown": n_test_unknown,
            "dir": float(np.mean(correct & (known_scores >= t))),
            "false_alarm_rate": float(np.sum(unknown_scores >= t) / n_test_unknown),
            "rank1": float(np.mean(correct)),
            "dir_at_far": curve,
        },
        "validation": {
            "n_known": int(val_known.sum()),
            "n_unknown": n_val_unknown,
            "dir": float(np.mean(val_correct & (val_score[val_known] >= t))) if val_correct.size else None,
        },
        "template": template,
        "n_gallery_identities": len(gallery),
        "n_gallery_images": gallery.n_images,
    }


# --------------------------------------------------------------------------- output


def write_decisions_csv(path: str | Path, probe_ids: Sequence[Any], decisions: Sequence[Any]) -> Path:
    """Write ``id,label`` rows (the course competition format), atomically.

    One row per probe, ids and labels written as ``str()`` of what is given, in
    order. Ids must be non-empty and unique; ids and labels must not contain a
    comma or a line break (the format has no quoting). The file is written to a
    temporary name beside ``path`` and renamed, so a reader never sees half a file.
    """
    ids = [str(i) for i in probe_ids]
    labels = [str(d) for d in decisions]
    if len(ids) != len(labels):
        raise ValueError(
            f"probe_ids has {len(ids)} entries but decisions has {len(labels)}; give one decision per probe"
        )
    for what, values in (("probe id", ids), ("label", labels)):
        bad = [v for v in values if any(c in v for c in ",\n\r")]
        if bad:
            raise ValueError(
                f"{len(bad)} {what}s contain a comma or line break, which the id,label CSV "
                f"cannot hold: {bad[:3]!r}; rename them"
            )
    if any(not i for i in ids):
        raise ValueError("probe_ids contains an empty id; every row needs an id")
    if len(set(ids)) != len(ids):
        dup = [i for i, count in Counter(ids).items() if count > 1]
        raise ValueError(f"probe_ids are not unique (e.g. {dup[:3]!r}); one row per probe")
    text = "id,label\n" + "".join(f"{i},{label}\n" for i, label in zip(ids, labels))
    return write_atomic(path, text, fsync=True)
