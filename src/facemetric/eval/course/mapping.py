"""Map unknown photos to a known person or to nobody: the "known or nobody" task of CMU 11-785 HW2P2.

Accuracy is the fraction of unknown photos mapped correctly: to the right known identity, or to the
no-match label when the person is not enrolled. Each probe is searched against one template per
known identity (:func:`~facemetric.eval.identification.search.top_matches`); its answer is the top
identity when the top score reaches a threshold, the no-match label otherwise. The threshold is chosen
on dev by a rule (:mod:`facemetric.eval.course.mapping_scores`), or given; the folders and CSVs are
read and written by :mod:`facemetric.eval.course.mapping_files`.

A probe photo that cannot be decoded (or holds no face) still gets a row: it is answered with the
no-match label and *flagged* (``problems``, and the side file
:func:`~facemetric.eval.course.mapping_files.problems_path`). A known photo that fails is skipped with a
note. :func:`map_unknowns` runs it all with a :class:`MappingOptions` and returns a typed
:class:`~facemetric.eval.course.result.MappingResult`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemetric.core.atomic import write_csv
from facemetric.core.embedder import Embedder
from facemetric.core.matching import TEMPLATES
from facemetric.data.sources import flat_images
from facemetric.eval.course import NO_MATCH_LABEL
from facemetric.eval.course.mapping_files import (
    LABEL_COLUMN,
    DevTruth,
    MappingError,
    first_names,
    problems_path,
    read_dev_csv,
    scan_known,
    write_submission,
)
from facemetric.eval.course.mapping_scores import (
    RULES,
    calibrate,
    cross_validated_accuracy,
    decide_labels,
    mapping_accuracy,
)
from facemetric.eval.course.result import (
    AnswerCounts,
    KnownPeople,
    KnownProbes,
    MappingProblem,
    MappingReport,
    MappingResult,
    NoMatchProbes,
    Prediction,
)
from facemetric.eval.identification.search import top_matches


@dataclass(frozen=True)
class MappingOptions:
    """How :func:`map_unknowns` chooses its threshold and searches (checked when made).

    ``rule``: ``"accuracy"`` (the best dev accuracy) or ``"fmr"`` (the lowest threshold at which at most
    ``target_fmr`` of the dev's no-match photos are taken for someone); ``threshold`` fixes it instead (dev,
    if given, is then only measured). Identities are scored by the ``"mean"`` (or ``"max"``) ``template`` of
    their photos; ``folds``-fold cross-validated dev accuracy, seeded by ``seed``.
    """

    rule: str = "accuracy"
    target_fmr: float = 0.01
    threshold: float | None = None
    template: str = "mean"
    no_match_label: str = NO_MATCH_LABEL
    flip: bool = False
    batch_size: int = 64
    folds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise MappingError(f"rule must be one of {RULES}, got {self.rule!r}")
        if self.template not in TEMPLATES:
            raise MappingError(f"template must be one of {TEMPLATES}, got {self.template!r}")
        if not 0.0 <= self.target_fmr <= 1.0:
            raise MappingError(f"target_fmr must be a rate in [0, 1] (e.g. 0.01), got {self.target_fmr!r}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise MappingError(f"threshold must be a finite number, got {self.threshold!r}")
        if self.folds < 2:
            raise MappingError(f"folds must be at least 2 for cross-validation, got {self.folds!r}")


@dataclass
class _Probes:
    """Top identity and score of each probe photo; -inf for a photo not embedded (in ``failures``)."""

    labels: list[str]
    scores: np.ndarray
    failures: dict[int, str]


@dataclass
class _Dev:
    """The dev split read against its CSV: its folder, sorted image names and right answers."""

    csv: Path
    folder: Path
    names: list[str]
    truth: DevTruth


@dataclass
class _DevFigures:
    """The dev part of the report (all empty without a dev split)."""

    dev_images: int = 0
    dev_accuracy: float | None = None
    cv_accuracy: float | None = None
    cv_folds: int | None = None
    known_probes: KnownProbes | None = None
    no_match_probes: NoMatchProbes | None = None
    rank1: float | None = None


def _search(
    embedder: Embedder, paths: list[Path], gallery: tuple[np.ndarray, np.ndarray], opts: MappingOptions, progress: bool
) -> _Probes:
    """Embed the probe files and find each one's best known identity."""
    batch = embedder.embed_files(paths, batch_size=opts.batch_size, flip=opts.flip, progress=progress)
    labels = [""] * len(paths)
    scores = np.full(len(paths), -np.inf)
    if len(batch):
        top_labels, top_scores = top_matches(batch.embeddings, gallery[0], gallery[1], opts.template)
        for k, label, score in zip(batch.index.tolist(), top_labels.tolist(), top_scores.tolist()):
            labels[k], scores[k] = str(label), score
    return _Probes(labels, scores, {int(k): str(reason) for k, reason in batch.failures})


def _enrol(
    embedder: Embedder, paths: list[Path], identities: list[str], opts: MappingOptions, progress: bool, root: Path
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Embed the known photos: ``(embeddings, identity of each row, notes)``; failures skipped with a note."""
    batch = embedder.embed_files(paths, batch_size=opts.batch_size, flip=opts.flip, progress=progress)
    notes = []
    if batch.failures:
        failed = [f"{paths[k].relative_to(root)} ({reason})" for k, reason in batch.failures]
        notes.append(f"{root}: {len(failed)} known photo(s) skipped, not embedded: {first_names(failed)}")
    labels = np.array([identities[k] for k in batch.index.tolist()], dtype=str)
    lost = sorted(set(identities) - set(labels.tolist()))
    if not len(labels):
        raise MappingError(
            f"{root}: no known photo could be embedded ({len(paths)} tried; e.g. {first_names(notes)}); "
            "check the photos (or the model's face detector)"
        )
    if lost:
        notes.append(
            f"{root}: {len(lost)} identity(ies) have no usable photo and are never predicted: {first_names(lost)}"
        )
    return np.asarray(batch.embeddings), labels, notes


def _check_inputs(
    dev: str | Path | None,
    dev_csv: str | Path | None,
    test: str | Path | None,
    submission: str | Path | None,
    opts: MappingOptions,
) -> None:
    if dev_csv is None and dev is not None:
        raise MappingError(f"{dev}: a dev folder without its CSV (dev_csv) cannot be scored; give the dev CSV too")
    if dev_csv is None and opts.threshold is None:
        raise MappingError(
            "no dev CSV to calibrate the threshold on and no fixed threshold: give the dev CSV "
            "(verification_dev.csv, with its unknown_dev folder) or a threshold"
        )
    if submission is not None and test is None:
        raise MappingError(f"{submission}: a submission needs the test folder (unknown_test) to answer for")


def _read_dev(
    dev: str | Path | None, dev_csv: str | Path, folders: list[str], opts: MappingOptions, notes: list[str]
) -> _Dev:
    """The dev folder's images and the CSV's answers for them, checked against each other and the options."""
    csv_path = Path(dev_csv)
    folder = Path(dev) if dev is not None else csv_path.parent / "unknown_dev"
    files, more = flat_images(folder, "dev")
    names = [p.name for p in files]
    truth = read_dev_csv(csv_path, names, folders, opts.no_match_label, folder)
    notes += more + truth.notes
    if opts.rule == "fmr" and opts.threshold is None and opts.no_match_label not in truth.labels:
        raise MappingError(
            f"{csv_path}: no row has the no-match label {opts.no_match_label!r}, but the fmr rule calibrates on "
            "the no-match photos; use rule='accuracy' or pass the CSV's no-match label"
        )
    return _Dev(csv_path, folder, names, truth)


def _dev_figures(
    dev: _Probes, truth: DevTruth, threshold: float, opts: MappingOptions
) -> tuple[_DevFigures, list[str]]:
    """The dev part of the report (accuracy, cross-validated accuracy, breakdown, rank-1) and its notes."""
    notes: list[str] = []
    label = opts.no_match_label
    is_known = np.array([t != label for t in truth.labels], dtype=bool)
    top_correct = np.array([p == t for p, t in zip(dev.labels, truth.labels)], dtype=bool)
    accepted = dev.scores >= threshold
    flagged = np.zeros(len(is_known), dtype=bool)
    flagged[list(dev.failures)] = True
    n_known, n_none = int(is_known.sum()), int((~is_known).sum())
    cv: float | None = None
    k = min(opts.folds, len(is_known))
    if opts.threshold is not None:
        notes.append("the threshold was given, not chosen on dev: dev_accuracy is an honest estimate (no cv_accuracy)")
    elif k < 2:
        notes.append(f"only {len(is_known)} dev photo(s): no cross-validated accuracy")
    elif opts.rule == "fmr" and n_none < 2:
        notes.append("fewer than 2 no-match dev photos: no cross-validated accuracy for the fmr rule")
    else:
        cv = cross_validated_accuracy(dev.scores, top_correct, is_known, k, opts.seed, opts.rule, opts.target_fmr)
        if opts.rule == "accuracy":
            notes.append(
                "dev_accuracy is measured at the threshold chosen on dev itself, so it is optimistic; "
                f"cv_accuracy ({k}-fold: threshold chosen on the other folds) estimates the accuracy on new photos"
            )
    figures = _DevFigures(
        dev_images=len(is_known),
        dev_accuracy=mapping_accuracy(dev.scores, top_correct, is_known, threshold),
        cv_accuracy=cv,
        cv_folds=k if cv is not None else None,
        known_probes=KnownProbes(
            n=n_known,
            correct=int(np.sum(is_known & accepted & top_correct)),
            wrong_identity=int(np.sum(is_known & accepted & ~top_correct)),
            wrongly_rejected=int(np.sum(is_known & ~accepted)),
            flagged=int(np.sum(is_known & flagged)),
        ),
        no_match_probes=NoMatchProbes(
            n=n_none,
            correctly_rejected=int(np.sum(~is_known & ~accepted)),
            falsely_accepted=int(np.sum(~is_known & accepted)),
            flagged=int(np.sum(~is_known & flagged)),
            false_match_rate=float(np.mean(accepted[~is_known])) if n_none else None,
        ),
        rank1=float(np.mean(top_correct[is_known])) if n_known else None,
    )
    return figures, notes


def _calibrate_on_dev(probes: _Probes, dev: _Dev, opts: MappingOptions) -> float:
    """The threshold ``opts.rule`` picks on the dev probes (or the fixed one)."""
    if opts.threshold is not None:
        return opts.threshold
    if not np.isfinite(probes.scores).any():
        raise MappingError(
            f"{dev.folder}: no dev photo could be embedded ({len(dev.names)} tried), so no threshold can be "
            "chosen; check the photos (problems lists the reasons) or give a threshold"
        )
    is_known = np.array([x != opts.no_match_label for x in dev.truth.labels])
    top_correct = np.array([p == x for p, x in zip(probes.labels, dev.truth.labels)])
    return calibrate(probes.scores, top_correct, is_known, opts.rule, opts.target_fmr)


def map_unknowns(
    embedder: Embedder,
    known: str | Path,
    dev: str | Path | None,
    dev_csv: str | Path | None,
    test: str | Path | None,
    submission: str | Path | None = None,
    options: MappingOptions | None = None,
    progress: bool = True,
) -> MappingResult:
    """Map each photo of ``test`` to a known identity or to nobody, with a threshold chosen on dev.

    ``known``: ``known/<identity>/*``. ``dev_csv`` with its folder ``dev`` (None: the CSV's sibling folder
    ``unknown_dev``) calibrates the threshold by ``options.rule`` and is reported with a cross-validated
    accuracy; or ``options.threshold`` fixes it (dev, if given, is then only measured). ``test`` (a flat
    folder, optional) is answered; ``submission`` (optional) receives the answers in the dev CSV's header
    and id convention, one row per test image in sorted file order, and the flagged test images go to
    :func:`~facemetric.eval.course.mapping_files.problems_path`. Every input is checked before anything is
    embedded. The report (:class:`~facemetric.eval.course.result.MappingReport`) says what was measured.
    """
    opts = options if options is not None else MappingOptions()
    _check_inputs(dev, dev_csv, test, submission, opts)
    root = Path(known)
    known_paths, identities, folders, notes = scan_known(root)
    if opts.no_match_label in folders:
        raise MappingError(
            f"{root / opts.no_match_label}: an identity folder has the no-match label's name, so answers would be "
            "ambiguous; rename the folder or pass another no-match label"
        )
    dev_split = _read_dev(dev, dev_csv, folders, opts, notes) if dev_csv is not None else None
    test_names: list[str] = []
    test_dir = Path(".")
    if test is not None:
        test_dir = Path(test)
        test_files, more = flat_images(test_dir, "test")
        test_names = [p.name for p in test_files]
        notes += more

    gallery_emb, gallery_labels, more = _enrol(embedder, known_paths, identities, opts, progress, root)
    notes += more
    enrolled = set(gallery_labels.tolist())
    gallery = (gallery_emb, gallery_labels)
    problems: list[MappingProblem] = []

    figures = _DevFigures()
    t = opts.threshold
    if dev_split is not None:
        names, truth = dev_split.names, dev_split.truth
        probes = _search(embedder, [dev_split.folder / n for n in names], gallery, opts, progress)
        problems += [MappingProblem(split="dev", image=names[k], reason=r) for k, r in sorted(probes.failures.items())]
        unreachable = sorted({x for x in truth.labels if x != opts.no_match_label and x not in enrolled})
        if unreachable:
            notes.append(
                f"{dev_split.csv}: dev photos of {len(unreachable)} identity(ies) without a usable known photo can "
                f"never be mapped right: {first_names(unreachable)}"
            )
        t = _calibrate_on_dev(probes, dev_split, opts)
        figures, more = _dev_figures(probes, truth, t, opts)
        notes += more
    assert t is not None

    test_labels: list[str] = []
    answers: AnswerCounts | None = None
    written: str | None = None
    side_file: str | None = None
    if test is not None:
        probes = _search(embedder, [test_dir / n for n in test_names], gallery, opts, progress)
        flagged = sorted(probes.failures.items())
        problems += [MappingProblem(split="test", image=test_names[k], reason=r) for k, r in flagged]
        test_labels = decide_labels(probes.labels, probes.scores, t, opts.no_match_label)
        mapped = int(np.sum(probes.scores >= t))
        answers = AnswerCounts(
            n=len(test_names), mapped=mapped, no_match=len(test_names) - mapped - len(flagged), flagged=len(flagged)
        )
        if submission is not None:
            positional = dev_split is not None and dev_split.truth.positional
            ids: list[str | int] = list(range(len(test_names))) if positional else list(test_names)
            header = dev_split.truth.header if dev_split is not None else ["image", LABEL_COLUMN]
            written = str(write_submission(submission, ids, test_labels, header))
            side = write_csv(problems_path(submission), ["image", "reason"], [(test_names[k], r) for k, r in flagged])
            side_file = str(side)
            if positional:
                notes.append(
                    f"{submission}: test images written as integer ids, their positions in the sorted file "
                    f"names of {test_dir}"
                )
        if flagged:
            notes.append(
                f"{test_dir}: {len(flagged)} test photo(s) could not be embedded; answered {opts.no_match_label!r} "
                f"and flagged: {first_names([test_names[k] for k, _ in flagged])}"
            )
    report = MappingReport(
        rule="fixed" if opts.threshold is not None else opts.rule,
        target_fmr=opts.target_fmr if opts.threshold is None and opts.rule == "fmr" else None,
        template=opts.template,
        no_match_label=opts.no_match_label,
        known=KnownPeople(
            identities=len(enrolled),
            images=len(gallery_labels),
            identities_without_image=sorted(set(folders) - enrolled),
        ),
        image_ids="positions" if dev_split is not None and dev_split.truth.positional else "names",
        dev_images=figures.dev_images,
        dev_accuracy=figures.dev_accuracy,
        cv_accuracy=figures.cv_accuracy,
        cv_folds=figures.cv_folds,
        known_probes=figures.known_probes,
        no_match_probes=figures.no_match_probes,
        rank1=figures.rank1,
        threshold=t,
        test_predictions=answers,
        submission=written,
        problems_file=side_file,
        problems=problems,
        notes=notes,
    )
    predictions = [Prediction(image=i, label=x) for i, x in zip(test_names, test_labels)]
    return MappingResult(threshold=float(t), report=report, predictions=predictions, problems=problems)
