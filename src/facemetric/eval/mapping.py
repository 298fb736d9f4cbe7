"""Map unknown photos to a known person or to nobody: the "known or nobody" task of CMU 11-785 HW2P2.

The course's ``verification/`` folder holds:

* ``known/<identity>/*``: the enrolled people, one or several photos each;
* ``unknown_dev/*`` (flat) with ``verification_dev.csv`` (header ``image,label``): the right answer
  for each dev photo, an identity folder name of ``known/`` or the no-match label ``n000000``;
* ``unknown_test/*`` (flat): the photos to answer for, in a CSV of the dev CSV's format.

Accuracy is the fraction of unknown photos mapped correctly: to the right known identity, or to the
no-match label when the person is not enrolled. Each probe is searched against one template per
known identity (:func:`~facemetric.eval.identification.top_matches`); its answer is the top identity
when the top score reaches a threshold, the no-match label otherwise. The threshold is chosen on dev
(:func:`best_accuracy_threshold`, or :func:`fmr_threshold` for a stated false-match rate), so dev
accuracy at it is optimistic: :func:`cross_validated_accuracy` says what to expect on unseen photos.

Some course years listed dev images by position (integer ids ``0..N-1`` of the sorted file names)
instead of by name: when every id of the CSV's image column is an integer and none is a file name,
rows are matched by sorted order and the submission is written with the same convention.

A probe photo that cannot be decoded (or holds no face) still gets a row: it is answered with the
no-match label and *flagged* (``problems``, and the side file :func:`problems_path`). A known photo
that fails is skipped with a note. :func:`map_unknowns` runs it all; the pure functions it uses are
exported so that they can be checked on hand-made scores.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from facemetric.core.atomic import write_csv
from facemetric.core.embedder import Embedder
from facemetric.core.errors import FacemetricError
from facemetric.data.sources import DatasetError, flat_images, scan_folders
from facemetric.eval.identification import calibrate_threshold, top_matches

NO_MATCH = "n000000"
RULES = ("accuracy", "fmr")
TEMPLATES = ("mean", "max")
IMAGE_COLUMNS = ("image", "id")  # the dev CSV's image column (by name, or by position in some years)
LABEL_COLUMN = "label"
COSINE_MIN = -1.0  # the lowest score a pair of unit embeddings can have
COSINE_MAX = 1.0
_SHOW = 5  # names listed in a message


class MappingError(FacemetricError, ValueError):
    """An input of the known-or-nobody task is unusable; the message names the file and says what to do."""


def _first(names: Sequence[Any], n: int = _SHOW) -> str:
    """``'a', 'b', 'c' ...`` for a message: the first ``n`` names."""
    shown = ", ".join(repr(str(x)) for x in names[:n])
    return shown + (f" ... ({len(names)} in all)" if len(names) > n else "")


# --------------------------------------------------------------------------- pure functions on scores


def _as_scores(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike) -> tuple[np.ndarray, ...]:
    """Check and convert: scores float64 (-inf = a probe not scored), flags boolean, equal lengths."""
    s = np.asarray(top_scores, dtype=np.float64)
    c = np.asarray(top_correct, dtype=bool)
    k = np.asarray(is_known, dtype=bool)
    if s.ndim != 1 or c.shape != s.shape or k.shape != s.shape:
        raise ValueError(
            f"top_scores, top_correct and is_known must be 1-D of one length, got {s.shape}, {c.shape}, {k.shape}"
        )
    if np.isnan(s).any() or (s == np.inf).any():
        raise ValueError("top_scores holds NaN or +inf; use -inf only for a probe that could not be scored")
    return s, c, k


def mapping_correct(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike, threshold: float) -> np.ndarray:
    """Whether each probe is mapped correctly at ``threshold``.

    A probe is accepted (mapped to its top identity) when its top score >= ``threshold``; it is then
    right when it is a known person whose top identity is theirs (``top_correct``). A rejected probe
    (mapped to nobody) is right when it is not a known person. A score of -inf marks a probe that
    could not be embedded: always rejected.
    """
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    return np.where(s >= threshold, k & c, ~k)


def mapping_accuracy(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike, threshold: float) -> float:
    """Fraction of probes mapped correctly at ``threshold`` (see :func:`mapping_correct`)."""
    right = mapping_correct(top_scores, top_correct, is_known, threshold)
    if not len(right):
        raise ValueError("no probe to measure accuracy on")
    return float(right.mean())


def _between(low: float, high: float) -> float:
    """A threshold ``t`` with ``low < t <= high`` (-inf/+inf for an open end): the midpoint of a finite
    interval, halfway to the cosine bound (-1 / 1) below the lowest or above the highest score."""
    if math.isinf(low) and math.isinf(high):
        return 0.0
    if math.isinf(low):
        return (min(COSINE_MIN, high) + high) / 2  # <= high: accepts every score >= high
    if math.isinf(high):
        t = (low + max(COSINE_MAX, low)) / 2
        return t if t > low else float(np.nextafter(low, np.inf))
    t = (low + high) / 2
    return t if t > low else high  # two adjacent floats: the midpoint rounds onto ``low``


def best_accuracy_threshold(top_scores: ArrayLike, top_correct: ArrayLike, is_known: ArrayLike) -> tuple[float, float]:
    """The threshold maximising mapping accuracy, and that accuracy: ``(threshold, accuracy)``.

    Every distinct decision is tried: accept nobody, everybody, or everybody scoring at least
    each distinct top score, i.e. the thresholds between consecutive distinct scores (and below
    the lowest, above the highest). The scores are sorted once and the accuracy of every cut
    comes from running sums, so the search is O(n log n).

    Ties: cuts that reach the best accuracy form runs of neighbouring cuts; the lowest run wins
    (fewer people turned away), and the threshold is the midpoint of that run's whole score
    interval, the value farthest from a score that would change a decision. Below the lowest
    score the midpoint is taken with -1 (the lowest cosine), above the highest with 1. Probes
    scored -inf (not embedded) are rejected at any threshold; with no scored probe at all every
    threshold is equivalent and 0.0 is returned.
    """
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    if not len(s):
        raise ValueError("no probe to calibrate a threshold on")
    scored = np.isfinite(s)
    always_right = int(np.sum(~k & ~scored))  # not embedded: rejected, right for a person nobody knows
    values, group = np.unique(s[scored], return_inverse=True)  # ascending distinct scores
    accept_right = np.bincount(group, weights=(k & c)[scored], minlength=len(values))
    reject_right = np.bincount(group, weights=(~k)[scored], minlength=len(values))
    # cut j (0..m) accepts the groups j..m-1 and rejects 0..j-1
    rejected_right = np.concatenate([[0.0], np.cumsum(reject_right)])
    accepted_right = np.concatenate([np.cumsum(accept_right[::-1])[::-1], [0.0]])
    right = rejected_right + accepted_right + always_right
    best = right.max()
    j1 = int(np.argmax(right >= best - 0.5))  # counts are whole numbers
    j2 = j1
    while j2 + 1 < len(right) and right[j2 + 1] >= best - 0.5:
        j2 += 1
    low = float(values[j1 - 1]) if j1 > 0 else -math.inf  # cut j's thresholds: (values[j-1], values[j]]
    high = float(values[j2]) if j2 < len(values) else math.inf
    return _between(low, high), float(best / len(s))


def fmr_threshold(no_match_scores: ArrayLike, target_fmr: float) -> float:
    """The lowest threshold (among the scores) accepting at most ``target_fmr`` of the no-match probes.

    With n no-match probes at most k = floor(target_fmr * n) may score >= the threshold; it is the
    k-th highest score, moved up past ties, or the next float above the highest with k = 0
    (:func:`~facemetric.eval.identification.calibrate_threshold`'s rule). Scores of -inf (probes
    not embedded) count in n and are never accepted; with none scored the threshold is -1.
    """
    s = np.asarray(no_match_scores, dtype=np.float64)
    if s.ndim != 1 or not len(s):
        raise ValueError(
            "the fmr rule needs the top scores of no-match probes (people not enrolled), got none: "
            "use rule='accuracy' or a dev set with no-match photos"
        )
    if not 0.0 <= float(target_fmr) <= 1.0:
        raise ValueError(f"target_fmr must be a rate in [0, 1], got {target_fmr!r}")
    scored = s[np.isfinite(s)]
    if not len(scored):
        return COSINE_MIN
    allowed = math.floor(float(target_fmr) * len(s) + 1e-9)
    far = min(1.0, allowed / len(scored))  # the same count k, as a rate of the scored probes
    return calibrate_threshold(scored, far, source="dev no-match probes").value


def calibrate(
    top_scores: ArrayLike,
    top_correct: ArrayLike,
    is_known: ArrayLike,
    rule: str = "accuracy",
    target_fmr: float = 0.01,
) -> float:
    """The threshold ``rule`` picks on these probes: ``"accuracy"`` (:func:`best_accuracy_threshold`)
    or ``"fmr"`` (:func:`fmr_threshold` on the no-match probes)."""
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    if rule == "accuracy":
        return best_accuracy_threshold(s, c, k)[0]
    if rule == "fmr":
        return fmr_threshold(s[~k], target_fmr)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def fold_assignment(is_known: ArrayLike, folds: int, seed: int = 0) -> np.ndarray:
    """Fold number (0..folds-1) of each probe, stratified by known vs no-match.

    The known probes in a seeded random order, then the no-match probes in theirs, are dealt to
    the folds in turn, so each fold gets its share of both; with ``folds`` = the number of probes
    it is leave-one-out, whatever the seed.
    """
    k = np.asarray(is_known, dtype=bool)
    if folds < 2 or folds > len(k):
        raise ValueError(f"folds must be between 2 and the number of probes ({len(k)}), got {folds}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(k)), rng.permutation(np.flatnonzero(~k))])
    fold = np.empty(len(k), dtype=np.int64)
    fold[order] = np.arange(len(k)) % folds
    return fold


def cross_validated_accuracy(
    top_scores: ArrayLike,
    top_correct: ArrayLike,
    is_known: ArrayLike,
    folds: int = 5,
    seed: int = 0,
    rule: str = "accuracy",
    target_fmr: float = 0.01,
) -> float:
    """Mapping accuracy with the threshold chosen on other probes: k-fold, pooled.

    Each fold's probes are mapped at the threshold :func:`calibrate` picks on the other folds;
    the result is the fraction of all probes mapped correctly that way. It estimates the accuracy
    on unseen photos, which the accuracy at a threshold chosen on the same probes overstates.
    Folds come from :func:`fold_assignment` (stratified, seeded).
    """
    s, c, k = _as_scores(top_scores, top_correct, is_known)
    fold = fold_assignment(k, folds, seed)
    right = np.zeros(len(s), dtype=bool)
    for f in range(folds):
        held = fold == f
        t = calibrate(s[~held], c[~held], k[~held], rule, target_fmr)
        right[held] = mapping_correct(s[held], c[held], k[held], t)
    return float(right.mean())


def decide_labels(top_labels: Sequence[str], top_scores: ArrayLike, threshold: float, no_match_label: str) -> list[str]:
    """Each probe's answer: its top identity when its score >= ``threshold``, else ``no_match_label``
    (always for a score of -inf: a probe not embedded)."""
    scores = np.asarray(top_scores, dtype=np.float64)
    return [str(label) if s >= threshold else no_match_label for label, s in zip(top_labels, scores.tolist())]


# --------------------------------------------------------------------------- inputs


def scan_known(known: str | Path) -> tuple[list[Path], list[str], list[str], list[str]]:
    """``(paths, identities, identity folder names, notes)`` of the enrolled people in ``known/<identity>/*``.

    An identity folder with no image file is skipped with a note (its name still counts as a
    known identity of the dev CSV); no identity with an image at all is an error.
    """
    root = Path(known)
    if not root.is_dir():
        raise MappingError(
            f"{root}: no such folder (known people); give the folder holding one sub-folder per "
            "enrolled identity (known/<identity>/<image>)"
        )
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    try:
        manifest = scan_folders(root)
    except DatasetError:
        raise MappingError(
            f"{root}: empty known folder: no identity sub-folder holds an image "
            f"({len(folders)} sub-folder(s)); put each enrolled person's photos in known/<identity>/"
        ) from None
    notes = []
    no_images = "identity folder contains no images"  # scan_folders' reason
    empty = [p.name for p, reason in manifest.skipped if reason == no_images]
    other = [f"{p.relative_to(root)} ({reason})" for p, reason in manifest.skipped if reason != no_images]
    if empty:
        notes.append(f"{root}: {len(empty)} identity folder(s) without images skipped: {_first(empty)}")
    if other:
        notes.append(f"{root}: {len(other)} file(s) skipped: {_first(other)}")
    return list(manifest.paths), list(manifest.identities), folders, notes


@dataclass
class DevTruth:
    """The dev CSV read against its folder: the right label of each dev image, in sorted file order."""

    labels: list[str]  # aligned with the sorted image names of the dev folder
    header: list[str]  # [image column, label column] as the CSV spells them
    positional: bool  # True: the image column holds integer positions in sorted file order
    notes: list[str] = field(default_factory=list)


def _header(csv_path: Path, row: list[str] | None) -> tuple[int, int]:
    """Positions of the image and label columns in the header ``row``, or a MappingError."""
    cells = [c.strip().lower() for c in row or []]
    image = next((cells.index(name) for name in IMAGE_COLUMNS if name in cells), None)
    if image is None or LABEL_COLUMN not in cells:
        found = f"line 1 is {row!r}" if row else "the file is empty"
        raise MappingError(
            f"{csv_path}: no header with an image and a label column ({found}); the first line must be "
            f"'image,label' (or 'id,label' for ids by position); add it or fix it"
        )
    return image, cells.index(LABEL_COLUMN)


def read_dev_csv(
    csv_path: str | Path,
    images: Sequence[str],
    identities: Collection[str],
    no_match_label: str = NO_MATCH,
    folder: str | Path | None = None,
) -> DevTruth:
    """Read the dev CSV and check it against the dev folder's sorted image names ``images``.

    Every label must be a known identity (a folder name of known/) or ``no_match_label``; every
    image exactly one row, no row for an image that is not there. The image column holds file
    names; or, when every value is an integer and none is a file name, positions in sorted file
    order (some course years), which :attr:`DevTruth.positional` records. ``folder`` names the
    dev folder in messages.
    """
    csv_path = Path(csv_path)
    where = Path(folder) if folder is not None else csv_path.parent / "unknown_dev"
    if not csv_path.is_file():
        raise MappingError(f"{csv_path}: no such file (the dev CSV with 'image,label' rows); give its path")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header_row = next(reader, None)
        image_col, label_col = _header(csv_path, header_row)
        assert header_row is not None
        header = [header_row[image_col].strip(), header_row[label_col].strip()]
        rows: list[tuple[int, str, str]] = []  # (line, image, label)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            line = reader.line_num
            if len(row) <= max(image_col, label_col):
                raise MappingError(f"{csv_path}: line {line} has {len(row)} field(s), the header {len(header_row)}")
            image, label = row[image_col].strip(), row[label_col].strip()
            if not image or not label:
                raise MappingError(f"{csv_path}: line {line}: empty image or label field; fill it or remove the row")
            rows.append((line, image, label))

    known = set(identities)
    bad = [(line, label) for line, _, label in rows if label not in known and label != no_match_label]
    if bad:
        line, label = bad[0]
        more = f" ({len(bad)} rows have such labels: {_first(sorted({b for _, b in bad}))})" if len(bad) > 1 else ""
        raise MappingError(
            f"{csv_path}: line {line}: label {label!r} is neither a known identity (a folder of known/) nor "
            f"the no-match label {no_match_label!r}{more}; known identities are e.g. {_first(sorted(known))}. "
            "Check that the CSV goes with this known folder, or pass its no-match label"
        )

    names = set(images)
    values = [image for _, image, _ in rows]
    positional = bool(values) and all(v.isascii() and v.isdigit() for v in values) and not names.intersection(values)
    if positional:
        keys = [str(int(v)) for v in values]
        expected = [str(i) for i in range(len(images))]
    else:
        keys, expected = values, list(images)
    counts, wanted = Counter(keys), set(expected)
    extra = [v for v, k in zip(values, keys) if k not in wanted]
    missing = [name for name, key in zip(images, expected) if key not in counts]
    duplicate = sorted(v for v, n in counts.items() if n > 1)
    if extra or missing or duplicate:
        parts = []
        if extra:
            what = f"ids outside 0..{len(images) - 1}" if positional else f"images not in {where}"
            parts.append(f"{len(extra)} row(s) name {what}: {_first(extra)}")
        if missing:
            parts.append(f"{len(missing)} image(s) of the folder have no row: {_first(missing)}")
        if duplicate:
            parts.append(f"{len(duplicate)} image(s) have more than one row: {_first(duplicate)}")
        raise MappingError(
            f"{csv_path} does not match the folder {where}: " + "; ".join(parts) + ". "
            "Give the dev folder that goes with this CSV (or fix the CSV): one row per image of the folder"
        )
    label_of = {k: label for k, (_, _, label) in zip(keys, rows)}
    notes = []
    if positional:
        notes.append(
            f"{csv_path.name}: the {header[0]!r} column holds integer ids, none a file name of {where}: "
            f"id k is the k-th of the {len(images)} image files in sorted name order (the submission uses "
            "the same convention)"
        )
        stems = [Path(n).stem for n in images]
        if all(s.isdigit() for s in stems) and any(int(s) != i for i, s in enumerate(stems)):
            notes.append(
                f"{where}: the file names are numbers too, but not in the order of the ids "
                f"(sorted by name, {images[min(2, len(images) - 1)]!r} is id {min(2, len(images) - 1)}): "
                "check the dev accuracy before trusting the id convention"
            )
    return DevTruth([label_of[k] for k in expected], header, positional, notes)


# --------------------------------------------------------------------------- output


def write_submission(
    path: str | Path, image_ids: Sequence[str | int], labels: Sequence[str], header: Sequence[str]
) -> Path:
    """Write the submission CSV atomically: ``header``, then one ``image_id,label`` row per image."""
    ids, names = [str(i) for i in image_ids], [str(x) for x in labels]
    if len(header) != 2:
        raise ValueError(f"header must name 2 columns (image, label), got {list(header)!r}")
    if len(ids) != len(names):
        raise ValueError(f"{len(ids)} image ids but {len(names)} labels; give one label per image")
    duplicate = [i for i, n in Counter(ids).items() if n > 1]
    if duplicate:
        raise ValueError(f"image ids are not unique ({_first(duplicate)}); one row per image")
    return write_csv(path, list(header), zip(ids, names))


def problems_path(submission: str | Path) -> Path:
    """The side file listing the flagged test images of ``submission``: ``sub.csv`` -> ``sub.problems.csv``."""
    path = Path(submission)
    return path.with_name(f"{path.stem if path.suffix else path.name}.problems.csv")


# --------------------------------------------------------------------------- the task


@dataclass
class MappingResult:
    """The answers for the test photos, the chosen threshold and the report (see :func:`map_unknowns`)."""

    threshold: float
    report: dict[str, Any]
    test_images: list[str]  # file names of the test folder, sorted
    test_labels: list[str]  # the answer for each (an identity or the no-match label)
    problems: list[dict[str, str]]  # {"split", "image", "reason"} of every probe photo not embedded

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the threshold, the report, and each test image's answer."""
        return {
            "threshold": self.threshold,
            "report": self.report,
            "predictions": [{"image": i, "label": x} for i, x in zip(self.test_images, self.test_labels)],
            "problems": self.problems,
        }


@dataclass
class _Probes:
    """Top identity and score of each probe photo; -inf for a photo not embedded (in ``failures``)."""

    labels: list[str]
    scores: np.ndarray
    failures: dict[int, str]


def _search(
    embedder: Embedder,
    paths: list[Path],
    gallery: tuple[np.ndarray, np.ndarray],
    template: str,
    batch_size: int,
    flip: bool,
    progress: bool,
) -> _Probes:
    """Embed the probe files and find each one's best known identity."""
    batch = embedder.embed_files(paths, batch_size=batch_size, flip=flip, progress=progress)
    labels = [""] * len(paths)
    scores = np.full(len(paths), -np.inf)
    if len(batch):
        top_labels, top_scores = top_matches(batch.embeddings, gallery[0], gallery[1], template)
        for k, label, score in zip(batch.index.tolist(), top_labels.tolist(), top_scores.tolist()):
            labels[k], scores[k] = str(label), score
    return _Probes(labels, scores, {int(k): str(reason) for k, reason in batch.failures})


def _enrol(
    embedder: Embedder,
    paths: list[Path],
    identities: list[str],
    batch_size: int,
    flip: bool,
    progress: bool,
    root: Path,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Embed the known photos: ``(embeddings, identity of each row, notes)``; failures skipped with a note."""
    batch = embedder.embed_files(paths, batch_size=batch_size, flip=flip, progress=progress)
    notes = []
    if batch.failures:
        failed = [f"{paths[k].relative_to(root)} ({reason})" for k, reason in batch.failures]
        notes.append(f"{root}: {len(failed)} known photo(s) skipped, not embedded: {_first(failed)}")
    labels = np.array([identities[k] for k in batch.index.tolist()], dtype=str)
    lost = sorted(set(identities) - set(labels.tolist()))
    if not len(labels):
        raise MappingError(
            f"{root}: no known photo could be embedded ({len(paths)} tried; e.g. {_first(notes)}); "
            "check the photos (or the model's face detector)"
        )
    if lost:
        notes.append(f"{root}: {len(lost)} identity(ies) have no usable photo and are never predicted: {_first(lost)}")
    return np.asarray(batch.embeddings), labels, notes


def _check_options(rule: str, template: str, target_fmr: float, threshold: float | None, folds: int) -> None:
    if rule not in RULES:
        raise MappingError(f"rule must be one of {RULES}, got {rule!r}")
    if template not in TEMPLATES:
        raise MappingError(f"template must be one of {TEMPLATES}, got {template!r}")
    if not 0.0 <= target_fmr <= 1.0:
        raise MappingError(f"target_fmr must be a rate in [0, 1] (e.g. 0.01), got {target_fmr!r}")
    if threshold is not None and not math.isfinite(threshold):
        raise MappingError(f"threshold must be a finite number, got {threshold!r}")
    if folds < 2:
        raise MappingError(f"folds must be at least 2 for cross-validation, got {folds!r}")


def _dev_report(
    dev: _Probes,
    truth: DevTruth,
    threshold: float,
    calibrated: bool,
    rule: str,
    target_fmr: float,
    no_match_label: str,
    folds: int,
    seed: int,
) -> tuple[dict[str, Any], list[str]]:
    """The dev part of the report (accuracy, cross-validated accuracy, breakdown, rank-1) and its notes."""
    notes: list[str] = []
    is_known = np.array([t != no_match_label for t in truth.labels], dtype=bool)
    top_correct = np.array([p == t for p, t in zip(dev.labels, truth.labels)], dtype=bool)
    accepted = dev.scores >= threshold
    flagged = np.zeros(len(is_known), dtype=bool)
    flagged[list(dev.failures)] = True
    n_known, n_none = int(is_known.sum()), int((~is_known).sum())
    cv: float | None = None
    k = min(folds, len(is_known))
    if not calibrated:
        notes.append("the threshold was given, not chosen on dev: dev_accuracy is an honest estimate (no cv_accuracy)")
    elif k < 2:
        notes.append(f"only {len(is_known)} dev photo(s): no cross-validated accuracy")
    elif rule == "fmr" and n_none < 2:
        notes.append("fewer than 2 no-match dev photos: no cross-validated accuracy for the fmr rule")
    else:
        cv = cross_validated_accuracy(dev.scores, top_correct, is_known, k, seed, rule, target_fmr)
        if rule == "accuracy":
            notes.append(
                "dev_accuracy is measured at the threshold chosen on dev itself, so it is optimistic; "
                f"cv_accuracy ({k}-fold: threshold chosen on the other folds) estimates the accuracy on new photos"
            )
    report = {
        "dev_images": len(is_known),
        "dev_accuracy": mapping_accuracy(dev.scores, top_correct, is_known, threshold),
        "cv_accuracy": cv,
        "cv_folds": k if cv is not None else None,
        "known_probes": {
            "n": n_known,
            "correct": int(np.sum(is_known & accepted & top_correct)),
            "wrong_identity": int(np.sum(is_known & accepted & ~top_correct)),
            "wrongly_rejected": int(np.sum(is_known & ~accepted)),
            "flagged": int(np.sum(is_known & flagged)),
        },
        "no_match_probes": {
            "n": n_none,
            "correctly_rejected": int(np.sum(~is_known & ~accepted)),
            "falsely_accepted": int(np.sum(~is_known & accepted)),
            "flagged": int(np.sum(~is_known & flagged)),
            "false_match_rate": float(np.mean(accepted[~is_known])) if n_none else None,
        },
        "rank1": float(np.mean(top_correct[is_known])) if n_known else None,
    }
    return report, notes


def map_unknowns(
    embedder: Embedder,
    known: str | Path,
    dev: str | Path | None,
    dev_csv: str | Path | None,
    test: str | Path | None,
    submission: str | Path | None = None,
    rule: str = "accuracy",
    target_fmr: float = 0.01,
    threshold: float | None = None,
    template: str = "mean",
    no_match_label: str = NO_MATCH,
    flip: bool = False,
    batch_size: int = 64,
    folds: int = 5,
    seed: int = 0,
    progress: bool = True,
) -> MappingResult:
    """Map each photo of ``test`` to a known identity or to nobody, with a threshold chosen on dev.

    ``known``: ``known/<identity>/*``. ``dev_csv`` with its folder ``dev`` (None: the CSV's
    sibling folder ``unknown_dev``) calibrates the threshold by ``rule`` (``"accuracy"``:
    :func:`best_accuracy_threshold`; ``"fmr"``: :func:`fmr_threshold` at ``target_fmr``) and is
    reported with a ``folds``-fold cross-validated accuracy (seeded by ``seed``); or ``threshold``
    fixes it (dev, if given, is then only measured). ``test`` (a flat folder, optional) is
    answered; ``submission`` (optional) receives the answers in the dev CSV's header and id
    convention, one row per test image in sorted file order, and the flagged test images go to
    :func:`problems_path`. Identities are scored by the ``"mean"`` (or ``"max"``) template of their
    photos. Every input is checked before anything is embedded.

    ``report`` keys: ``rule`` (``"fixed"`` for a given threshold), ``threshold``, ``target_fmr``,
    ``template``, ``no_match_label``, ``known`` (identities, images, identities_without_image),
    ``image_ids`` (``"names"`` or ``"positions"``), ``dev_images``, ``dev_accuracy``, ``cv_accuracy``,
    ``cv_folds``, ``known_probes`` (n, correct, wrong_identity, wrongly_rejected, flagged: the flagged
    are among the wrongly rejected), ``no_match_probes`` (n, correctly_rejected, falsely_accepted,
    flagged, false_match_rate), ``rank1`` (closed-set, threshold ignored; a flagged known probe is a
    miss), ``test_predictions`` (n, mapped, no_match, flagged), ``submission``, ``problems_file``,
    ``problems`` and ``notes``; the dev and test entries are None when that split is not given.
    """
    _check_options(rule, template, target_fmr, threshold, folds)
    if dev_csv is None and dev is not None:
        raise MappingError(f"{dev}: a dev folder without its CSV (dev_csv) cannot be scored; give the dev CSV too")
    if dev_csv is None and threshold is None:
        raise MappingError(
            "no dev CSV to calibrate the threshold on and no fixed threshold: give the dev CSV "
            "(verification_dev.csv, with its unknown_dev folder) or a threshold"
        )
    if submission is not None and test is None:
        raise MappingError(f"{submission}: a submission needs the test folder (unknown_test) to answer for")

    root = Path(known)
    known_paths, identities, folders, notes = scan_known(root)
    if no_match_label in folders:
        raise MappingError(
            f"{root / no_match_label}: an identity folder has the no-match label's name, so answers would be "
            "ambiguous; rename the folder or pass another no-match label"
        )
    truth: DevTruth | None = None
    dev_names: list[str] = []
    dev_dir = Path(".")
    if dev_csv is not None:
        dev_csv = Path(dev_csv)
        dev_dir = Path(dev) if dev is not None else dev_csv.parent / "unknown_dev"
        dev_files, more = flat_images(dev_dir, "dev")
        dev_names = [p.name for p in dev_files]
        truth = read_dev_csv(dev_csv, dev_names, folders, no_match_label, dev_dir)
        notes += more + truth.notes
        if rule == "fmr" and threshold is None and no_match_label not in truth.labels:
            raise MappingError(
                f"{dev_csv}: no row has the no-match label {no_match_label!r}, but the fmr rule calibrates on "
                "the no-match photos; use rule='accuracy' or pass the CSV's no-match label"
            )
    test_names: list[str] = []
    test_dir = Path(".")
    if test is not None:
        test_dir = Path(test)
        test_files, more = flat_images(test_dir, "test")
        test_names = [p.name for p in test_files]
        notes += more

    gallery_emb, gallery_labels, more = _enrol(embedder, known_paths, identities, batch_size, flip, progress, root)
    notes += more
    enrolled = set(gallery_labels.tolist())
    gallery = (gallery_emb, gallery_labels)
    problems: list[dict[str, str]] = []
    report: dict[str, Any] = {
        "rule": "fixed" if threshold is not None else rule,
        "target_fmr": target_fmr if threshold is None and rule == "fmr" else None,
        "template": template,
        "no_match_label": no_match_label,
        "known": {
            "identities": len(enrolled),
            "images": len(gallery_labels),
            "identities_without_image": sorted(set(folders) - enrolled),
        },
        "image_ids": "positions" if truth is not None and truth.positional else "names",
    }

    t = threshold
    if truth is not None:
        probes = _search(embedder, [dev_dir / n for n in dev_names], gallery, template, batch_size, flip, progress)
        problems += [{"split": "dev", "image": dev_names[k], "reason": r} for k, r in sorted(probes.failures.items())]
        unreachable = sorted({x for x in truth.labels if x != no_match_label and x not in enrolled})
        if unreachable:
            notes.append(
                f"{dev_csv}: dev photos of {len(unreachable)} identity(ies) without a usable known photo can never "
                f"be mapped right: {_first(unreachable)}"
            )
        if t is None:
            if not np.isfinite(probes.scores).any():
                raise MappingError(
                    f"{dev_dir}: no dev photo could be embedded ({len(dev_names)} tried), so no threshold can be "
                    "chosen; check the photos (problems lists the reasons) or give a threshold"
                )
            is_known = np.array([x != no_match_label for x in truth.labels])
            top_correct = np.array([p == x for p, x in zip(probes.labels, truth.labels)])
            t = calibrate(probes.scores, top_correct, is_known, rule, target_fmr)
        dev_part, more = _dev_report(probes, truth, t, threshold is None, rule, target_fmr, no_match_label, folds, seed)
        report.update(dev_part)
        notes += more
    else:
        report.update(dev_images=0, dev_accuracy=None, cv_accuracy=None, cv_folds=None, rank1=None)
        report.update(known_probes=None, no_match_probes=None)
    assert t is not None
    report["threshold"] = t

    test_labels: list[str] = []
    report.update(test_predictions=None, submission=None, problems_file=None)
    if test is not None:
        probes = _search(embedder, [test_dir / n for n in test_names], gallery, template, batch_size, flip, progress)
        flagged = sorted(probes.failures.items())
        problems += [{"split": "test", "image": test_names[k], "reason": r} for k, r in flagged]
        test_labels = decide_labels(probes.labels, probes.scores, t, no_match_label)
        mapped = int(np.sum(probes.scores >= t))
        report["test_predictions"] = {
            "n": len(test_names),
            "mapped": mapped,
            "no_match": len(test_names) - mapped - len(flagged),
            "flagged": len(flagged),
        }
        if submission is not None:
            positional = truth is not None and truth.positional
            ids: list[str | int] = list(range(len(test_names))) if positional else list(test_names)
            header = truth.header if truth is not None else ["image", LABEL_COLUMN]
            report["submission"] = str(write_submission(submission, ids, test_labels, header))
            side = write_csv(problems_path(submission), ["image", "reason"], [(test_names[k], r) for k, r in flagged])
            report["problems_file"] = str(side)
            if positional:
                notes.append(
                    f"{submission}: test images written as integer ids, their positions in the sorted file "
                    f"names of {test_dir}"
                )
        if flagged:
            notes.append(
                f"{test_dir}: {len(flagged)} test photo(s) could not be embedded; answered {no_match_label!r} and "
                f"flagged: {_first([test_names[k] for k, _ in flagged])}"
            )
    report["problems"] = problems
    report["notes"] = notes
    return MappingResult(float(t), report, list(test_names), test_labels, problems)
