"""Typed results of identification: closed-set CMC, the open-set threshold and figures, the
``identification`` section of ``eval.json``, and what ``facemetric protocol open-set`` wrote."""

from __future__ import annotations

from facemetric.core.results import CalibratedThreshold, Result


class ClosedSetResult(Result):
    """CMC: ``ranks[k - 1]`` is the rank-k identification rate."""

    ranks: list[float]
    rank1: float
    rank5: float
    n_identities: int
    n_probes: int
    template: str


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
    """What :func:`~facemetric.eval.identification.open_set.open_set_report` measures: the threshold calibrated
    on validation, the test figures at it, and the gallery searched."""

    threshold: CalibratedThreshold
    test: OpenSetTest
    validation: OpenSetValidation
    template: str
    n_gallery_identities: int
    n_gallery_images: int


class IdentificationResult(Result):
    """An evaluation's identification section (``eval.json``): closed set, open set and the decisions' file."""

    closed_set: ClosedSetResult
    open_set: OpenSetResult
    decisions_csv: str


class OpenSetSplitSummary(Result):
    """What :func:`~facemetric.eval.identification.files.make_open_set_split` wrote (images per subset), and
    how to evaluate on it."""

    output: str
    gallery: int
    val_known: int
    val_unknown: int
    test_known: int
    test_unknown: int
    notes: list[str]
    usage: str  # the command that evaluates a model on it
