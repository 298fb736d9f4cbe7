"""Typed results of HPatches' three tasks (``facemetric eval --patches``): what a patch ``eval.json`` holds.

In the style of the face evaluations' results (:class:`facemetric.core.results.Result`): every figure is a
field, unknown keys are refused, the report reads the file back through these models. A patch
evaluation folder has its own format name, ``facemetric-patches/1``, so neither kind of folder is
mistaken for the other.

Every task gives a :class:`LevelScores`: a fraction in [0, 1] (mean average precision, or ROC AUC for the
balanced verification lists by default) for each jitter level of the benchmark (easy, hard, tough) and
their mean, each over all sequences and over the illumination (``i_*``) and viewpoint (``v_*``)
sequences alone. ``settings.ap`` names the AP convention (``trapezoid``: hpatches-benchmark's Python
code; ``step``: its MATLAB code).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from facemetric.core.results import Result

PATCH_EVAL_FORMAT = "facemetric-patches/1"
KINDS = ("all", "illum", "view")
LEVEL_NAMES = ("easy", "hard", "tough")


class KindScores(Result):
    """One figure over all sequences and over each kind alone; None where there is nothing to measure."""

    all: float | None
    illum: float | None
    view: float | None


class LevelScores(Result):
    """One task's mAP per jitter level, and the mean over the three levels."""

    easy: KindScores
    hard: KindScores
    tough: KindScores
    mean: KindScores


class VerificationScores(Result):
    """Patch verification for each list: negatives from the same sequence (intra) or others (inter), every
    positive (balanced: ROC AUC, or AP with ``settings.balanced == "ap"``) or the first 1 / ``imbalance`` of them
    (imbalanced: AP), and the mean of intra and inter."""

    intra_balanced: LevelScores
    intra_imbalanced: LevelScores
    inter_balanced: LevelScores
    inter_imbalanced: LevelScores
    balanced: LevelScores
    imbalanced: LevelScores  # the benchmark's headline figure


class PatchCounts(Result):
    """What the figures were measured on."""

    sequences: int
    illum_sequences: int
    view_sequences: int
    points: int
    patches: int
    descriptor_dim: int
    verification_positives: int  # of the "all" column's lists, one list for every level
    verification_negatives_intra: int  # a list's negatives (the imbalanced list's positives being the first
    verification_negatives_inter: int  # 1 / imbalance of the positives)
    matching_pairs: int  # (sequence, target image) pairs matched against their reference image
    retrieval_queries: int  # of the "all" column's lists
    retrieval_distractors: int  # the whole list (a query's own sequence's ones are left out of its ranking)
    retrieval_flat_points: int  # points whose reference patch is too flat to be drawn as a query or a distractor


class PatchSettings(Result):
    """The lists and conventions, so a figure can be reproduced (see docs/evaluation.md)."""

    seed: int
    lists: str  # "drawn" (by facemetric, as the benchmark's generators) or the tasks folder read
    pairs: int  # positives drawn (and negatives of each kind)
    imbalance: int  # negatives per positive in the imbalanced lists
    max_queries: int
    distractors: int
    min_std: float  # a reference patch with a grey-level std not above this is flat (65 px patches)
    ap: Literal["trapezoid", "step"]  # the AP convention: the benchmark's Python code or its MATLAB code
    balanced: Literal["auc", "ap"]  # the balanced verification figure
    distractor_image: Literal["reference", "target"]  # where a retrieval distractor's patch comes from
    same_sequence_distractors: bool  # whether a query ranks the distractors of its own sequence


class PatchTaskResults(Result):
    """The three HPatches tasks' mAP per level and kind, with what they were measured on."""

    verification: VerificationScores
    matching: LevelScores
    retrieval: LevelScores  # over the whole distractor list: the figure published tables quote
    retrieval_pools: dict[int, LevelScores]  # per pool size (positives + first distractors), as the Python code
    counts: PatchCounts
    settings: PatchSettings

    def headline(self) -> dict[str, float | None]:
        """The three figures to compare descriptors by: mean over levels, all sequences."""
        return {
            "verification": self.verification.imbalanced.mean.all,
            "matching": self.matching.mean.all,
            "retrieval": self.retrieval.mean.all,
        }

    def rows(self) -> list[tuple[str, str, LevelScores]]:
        """(task, kind, scores) in the order the table shows them."""
        tasks = (
            ("verification (imbalanced)", self.verification.imbalanced),
            (
                f"verification (balanced{', AUC' if self.settings.balanced == 'auc' else ''})",
                self.verification.balanced,
            ),
            ("matching", self.matching),
            ("retrieval", self.retrieval),
        )
        return [(task, kind, scores) for task, scores in tasks for kind in KINDS]

    def table(self) -> str:
        """The results as a small text table of mAP in percent (``-``: no sequence of that kind)."""
        head = f"{'task':<26}{'kind':<7}" + "".join(f"{h:>8}" for h in (*LEVEL_NAMES, "mean"))
        lines = [head, "-" * len(head)]
        for task, kind, scores in self.rows():
            cells = [getattr(getattr(scores, level), kind) for level in (*LEVEL_NAMES, "mean")]
            label = task if kind == "all" else ""
            lines.append(f"{label:<26}{kind:<7}" + "".join(f"{percent(v):>8}" for v in cells))
        c = self.counts
        lines.append(
            f"mAP % ({self.settings.ap} AP), balanced verification {self.settings.balanced.upper()} %; "
            f"{c.sequences} sequences ({c.illum_sequences} illum, {c.view_sequences} view), {c.points} points; "
            f"{c.verification_positives} positive pairs a level, {c.retrieval_queries} queries among "
            f"{c.retrieval_distractors} distractors; lists: {self.settings.lists}"
        )
        return "\n".join(lines)


def percent(value: float | None) -> str:
    """A fraction as a percentage with two decimals, ``-`` for None."""
    return "-" if value is None else f"{100 * value:.2f}"


class PatchEvalMeta(Result):
    """What a patch evaluation described and on what: the model or baseline, the describer in words, the side
    the patches were given at, and the data (release, split, part, sequences)."""

    model: str  # a checkpoint / ONNX path, or a baseline's name (raw, sift, rootsift)
    describer: str  # what made the descriptors, in words
    patch_size: int  # the side the patches were given to it at
    data: dict[str, Any] = Field(default_factory=dict)  # the release, split, part and sequences


class PatchEvalDocument(PatchTaskResults):
    """``eval.json`` of a patch evaluation folder: the model or baseline, the data, the results."""

    format: Literal["facemetric-patches/1"] = "facemetric-patches/1"
    created: str
    model: str  # a checkpoint / ONNX path, or a baseline's name (raw, sift, rootsift)
    describer: str  # what made the descriptors, in words
    patch_size: int  # the side the patches were given to it at
    data: dict[str, Any] = Field(default_factory=dict)  # the release, split, part and sequences
    notes: list[str] = Field(default_factory=list)
