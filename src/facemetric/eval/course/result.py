"""Typed results of the course task: the known-or-nobody mapping's report and answers, dev classification
accuracy, a test folder's predictions summary, and what ``facemetric protocol course`` wrote.

Their JSON (``model_dump``) is what the command line prints and writes with ``--report``, key for key."""

from __future__ import annotations

from typing import Literal

from facemetric.core.results import Result

# ------------------------------------------------------------------ classification


class ImageProblem(Result):
    """A photo that could not be used (undecodable, no face), and why."""

    image: str
    reason: str


class DevAccuracy(Result):
    """Top-1 / top-5 on a folder per identity; photos of people who are not classes, or unusable, count as errors."""

    top1: float
    top5: float
    images: int
    not_a_class: int
    not_a_class_examples: list[str]
    unusable: list[ImageProblem]
    by: str  # "head" or "centres"


class PredictionSummary(Result):
    """A test folder's predictions in numbers: images, the flagged ones, the classifier, classes predicted."""

    images: int
    flagged: list[ImageProblem]
    by: str
    classes_predicted: int


# ------------------------------------------------------------------ known or nobody


class KnownPeople(Result):
    """The enrolled people: identities with a usable photo, photos, and identity folders without one."""

    identities: int
    images: int
    identities_without_image: list[str]


class KnownProbes(Result):
    """Dev photos of enrolled people at the threshold (the flagged are among the wrongly rejected)."""

    n: int
    correct: int
    wrong_identity: int
    wrongly_rejected: int
    flagged: int


class NoMatchProbes(Result):
    """Dev photos of people nobody enrolled at the threshold."""

    n: int
    correctly_rejected: int
    falsely_accepted: int
    flagged: int
    false_match_rate: float | None


class AnswerCounts(Result):
    """The test photos' answers: mapped to someone, to the no-match label, or flagged (not embedded)."""

    n: int
    mapped: int
    no_match: int
    flagged: int


class MappingProblem(Result):
    """A probe photo that could not be embedded: answered with the no-match label and flagged."""

    split: Literal["dev", "test"]
    image: str
    reason: str


class MappingReport(Result):
    """What :func:`~facemetric.eval.course.mapping.map_unknowns` measured and did.

    ``rule`` is ``"fixed"`` for a given threshold; the dev entries are None (``dev_images`` 0) without a dev
    CSV and the test ones without a test folder. ``rank1`` is closed-set (threshold ignored; a flagged known
    probe is a miss); ``dev_accuracy`` is optimistic when the threshold was chosen on dev, ``cv_accuracy``
    (``cv_folds``-fold, threshold chosen on the other folds) estimates the accuracy on new photos.
    """

    rule: str
    target_fmr: float | None
    template: str
    no_match_label: str
    known: KnownPeople
    image_ids: Literal["names", "positions"]
    dev_images: int
    dev_accuracy: float | None
    cv_accuracy: float | None
    cv_folds: int | None
    known_probes: KnownProbes | None
    no_match_probes: NoMatchProbes | None
    rank1: float | None
    threshold: float
    test_predictions: AnswerCounts | None
    submission: str | None
    problems_file: str | None
    problems: list[MappingProblem]
    notes: list[str]


class Prediction(Result):
    """One test image's answer: an enrolled identity or the no-match label."""

    image: str
    label: str


class MappingResult(Result):
    """The chosen threshold, the report, each test image's answer (sorted by file name) and the flagged photos."""

    threshold: float
    report: MappingReport
    predictions: list[Prediction]
    problems: list[MappingProblem]

    @property
    def test_images(self) -> list[str]:
        """The file names of the test folder, sorted."""
        return [p.image for p in self.predictions]

    @property
    def test_labels(self) -> list[str]:
        """The answer for each test image (an identity or the no-match label)."""
        return [p.label for p in self.predictions]


# ------------------------------------------------------------------ the course layout


class CourseOptions(Result):
    """The options a course layout was written with."""

    verification_fraction: float
    dev_fraction: float
    test_fraction: float
    known_per_identity: int
    absent_fraction: float
    min_class_images: int
    layout: str
    link: str  # symlink, hardlink or copy; png for a prepared cache's crops
    no_match_label: str


class CoursePeople(Result):
    """How many people play each part: classification classes, enrolled and absent verification people."""

    classes: int
    known: int
    absent: int


class SkippedInput(Result):
    """An input of the dataset left out of the layout, and why."""

    source: str
    reason: str


class CourseLayoutSummary(Result):
    """What :func:`~facemetric.eval.course.layout.write_course_layout` wrote: ``course.json`` (which adds who
    plays which part) and ``usage``, the commands that use the layout."""

    output: str
    source: str
    source_kind: str
    seed: int
    options: CourseOptions
    counts: dict[str, int]  # written images per subset (train, dev, test, known, unknown_dev, unknown_test)
    no_match_probes: dict[str, int]  # unknown_dev / unknown_test images of absent people
    identities: CoursePeople
    renamed_identities: dict[str, str]  # identity -> its folder name, where it had to be made safe
    skipped: list[SkippedInput]
    notes: list[str]
    usage: str
