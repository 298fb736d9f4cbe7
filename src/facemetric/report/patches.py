"""The report of a patch evaluation folder (``facemetric eval --data RELEASE --patches --out DIR``).

``eval.json`` is read back through :class:`~facemetric.eval.patches.result.PatchEvalDocument`; the
sections are made of the same blocks as a face report's and written by the same templates: the three
tasks' mAP per level and kind, the verification lists one by one, what was measured, and a t-SNE map
of the sampled points' descriptors (``descriptors.npz``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from facemetric.eval.patches.result import LEVEL_NAMES, PatchEvalDocument, percent
from facemetric.report.document import Figure, Para, Section, Table, how_to_read, not_available
from facemetric.report.load import ReportError, load_npz, validation_problem
from facemetric.report.plots import patch_tsne_plot

COLUMNS = ("Task", "Sequences", "Easy", "Hard", "Tough", "Mean")
KIND_WORDS = {"all": "all", "illum": "illumination (i_*)", "view": "viewpoint (v_*)"}


def load_patch_eval(eval_dir: Path) -> PatchEvalDocument:
    """``eval.json`` of a patch evaluation folder, validated; ReportError naming the fields that do not fit."""
    path = eval_dir / "eval.json"
    try:
        return PatchEvalDocument.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(
            f"{path} cannot be read ({e}); re-run `facemetric eval --data RELEASE --patches --out DIR`"
        ) from e
    except ValidationError as e:
        problems = "; ".join(validation_problem(err) for err in e.errors()[:5])
        raise ReportError(
            f"{path} does not match the patch results this version reads: {problems}. Re-run `facemetric eval "
            "--data RELEASE --patches --out DIR` to rewrite it"
        ) from None


def _tasks_section(doc: PatchEvalDocument) -> Section:
    rows = [
        (task if kind == "all" else "", KIND_WORDS[kind])
        + tuple(percent(getattr(getattr(scores, level), kind)) for level in (*LEVEL_NAMES, "mean"))
        for task, kind, scores in doc.rows()
    ]
    return Section(
        "HPatches tasks",
        [
            how_to_read(
                "Mean average precision in percent (higher is better) at each jitter level of the patches: easy, "
                "hard and tough targets are cut with growing geometric noise around the true position. "
                "Verification: pairs of patches ranked by descriptor distance, the same 3-D point or not; the "
                "imbalanced lists (5 negatives a positive) are the benchmark's headline, the balanced ones 1 to 1 "
                "(scored by ROC AUC unless the settings below say AP). "
                "Matching: each reference patch matched to its nearest patch of a target image, a wrong match "
                "counting as a missed one. Retrieval: a reference patch finds its point's five target patches "
                "among distractors (the whole distractor list, the figure published tables quote). Illumination "
                "sequences change the light, viewpoint ones the geometry. "
                f"AP convention: {doc.settings.ap} (trapezoid: hpatches-benchmark's Python code; step: its MATLAB "
                "code)."
            ),
            Table(COLUMNS, rows),
        ],
    )


def _verification_section(doc: PatchEvalDocument) -> Section:
    v = doc.verification
    lists = (
        ("Negatives from the same sequence, balanced", v.intra_balanced),
        ("Negatives from the same sequence, imbalanced", v.intra_imbalanced),
        ("Negatives from other sequences, balanced", v.inter_balanced),
        ("Negatives from other sequences, imbalanced", v.inter_imbalanced),
    )
    rows = [
        (name, "all") + tuple(percent(getattr(scores, level).all) for level in (*LEVEL_NAMES, "mean"))
        for name, scores in lists
    ]
    c, s = doc.counts, doc.settings
    own = "including" if s.same_sequence_distractors else "excluding"
    text = (
        f"{c.verification_positives} positive pairs a level, one point in two of the reference and the level's "
        f"five images; {c.verification_negatives_intra} intra- and {c.verification_negatives_inter} inter-sequence "
        f"negatives; the imbalanced lists hold {s.imbalance} negatives a positive. Matching: {c.matching_pairs} "
        f"(sequence, target image) pairs. Retrieval: {c.retrieval_queries} queries, {c.retrieval_distractors} "
        f"distractors from the {s.distractor_image} image ({own} "
        f"those of the query's sequence), {c.retrieval_flat_points} points flat (grey-level std <= {s.min_std:g}). "
        f"AP: {s.ap} ({'hpatches-benchmark Python code' if s.ap == 'trapezoid' else 'its MATLAB code'}); balanced "
        f"verification: {'ROC AUC' if s.balanced == 'auc' else 'AP'}. Lists: {s.lists}; seed {s.seed}."
    )
    return Section("Verification lists", [Table(("List", *COLUMNS[1:]), rows), Para(text)])


def _tsne_section(eval_dir: Path) -> Section:
    section = Section(
        "Descriptors (t-SNE)",
        [
            how_to_read(
                "t-SNE maps the descriptors of a seeded sample of points, each seen in its 16 images, to 2-D keeping "
                "near neighbours near. One colour is one 3-D point; the star is its reference patch, circles, "
                "squares and triangles its easy, hard and tough patches. A good descriptor keeps each colour "
                "together, tough patches included; distances between clusters carry little meaning."
            )
        ],
    )
    path = eval_dir / "descriptors.npz"
    arrays = load_npz(path, ("descriptors", "points", "images"))
    if arrays is None:
        section.blocks.append(not_available(f"{path} not found."))
        return section
    if arrays["descriptors"].ndim != 2:
        raise ReportError(f"{path}: descriptors must be (N, D), got {arrays['descriptors'].shape}")
    png = patch_tsne_plot(arrays["descriptors"], arrays["points"], arrays["images"])
    if png is None:
        section.blocks.append(not_available(f"too few patches ({len(arrays['descriptors'])}) for a t-SNE plot."))
    else:
        section.blocks.append(Figure("patch_tsne.png", "t-SNE of the patch descriptors", png))
    return section


def patch_report(eval_dir: Path) -> tuple[list[tuple[str, str]], list[Section]]:
    """The subtitle (label, value) and the sections of the report of a patch evaluation folder."""
    doc = load_patch_eval(eval_dir)
    headline = ", ".join(f"{task} {percent(value)}" for task, value in doc.headline().items())
    meta = [
        ("Model", doc.model),
        ("Descriptor", f"{doc.describer} (patches given at {doc.patch_size} px)"),
        ("Created", doc.created),
        ("Data", str(doc.data.get("description", ""))),
        ("mAP % (mean over levels)", headline),
    ]
    meta += [("Note", note) for note in doc.notes]
    return meta, [_tasks_section(doc), _verification_section(doc), _tsne_section(eval_dir)]
