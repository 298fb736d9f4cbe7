"""The report's verification sections: the metric rows, ROC (with the threshold per stated FAR), DET, the
score distributions and the error gallery (the worst false accepts and false rejects, as the model saw them)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image

from facemetric.eval.verification.result import FarCalibration, VerificationResult
from facemetric.report.document import Block, Figure, ImageGrid, Para, Section, Table, how_to_read, not_available
from facemetric.report.formatting import as_float, join, key_order, num, paren
from facemetric.report.load import ReportError, load_npz
from facemetric.report.plots import det_plot, roc_plot, score_histograms

PAIR_HEIGHT = 112  # error-gallery crops smaller than this are enlarged (nearest neighbour)


def _tar_rows(v: VerificationResult) -> list[tuple[str, str]]:
    rows = []
    for key in sorted(v.tar_at_far, key=key_order):
        far = as_float(key)
        coarse = far is not None and far > 0 and far * v.num_negative < 1
        note = f" (fewer than 1/FAR = {1 / far:.0f} impostor pairs: no false accept allowed)" if coarse and far else ""
        rows.append((f"TAR @ FAR = {key}", num(v.tar_at_far[key]) + note))
    return rows


def verification_rows(v: VerificationResult) -> list[tuple[str, str]]:
    folds = "folds from the protocol" if v.folds_from_file else "stratified folds drawn at evaluation"
    rows = [
        (
            "Verification accuracy (k-fold mean ± std)",
            f"{num(v.accuracy)} ± {num(v.accuracy_std)}{paren(join(f'{v.n_folds} folds', folds))}",
        ),
        ("AUC", num(v.auc)),
        ("EER", f"{num(v.eer)} (threshold {num(v.eer_threshold)})"),
        *_tar_rows(v),
    ]
    if v.threshold is not None:
        rows.append(("Operating threshold", num(v.threshold.value) + paren(v.threshold.rule)))
    if v.errors is not None:
        rows.append(
            (
                "Errors at the operating threshold",
                f"{num(v.errors.false_accepts)} false accepts, {num(v.errors.false_rejects)} false rejects",
            )
        )
    rows.append(
        (
            "Accuracy, optimistic: threshold chosen on the test pairs (not a test figure)",
            f"{num(v.optimistic.accuracy)} at threshold {num(v.optimistic.threshold)}",
        )
    )
    rows.append(("Pairs", f"{num(v.num_positive)} genuine, {num(v.num_negative)} impostor" + paren(v.source)))
    return rows


def _one_length(*lists: list[float]) -> bool:
    """True when the lists are non-empty and of one length (a curve that can be drawn)."""
    return all(lists) and len({len(x) for x in lists}) == 1


def roc_section(v: VerificationResult | None) -> Section:
    section = Section(
        "ROC",
        [
            how_to_read(
                "The ROC curve shows the true accept rate (genuine pairs accepted) against the false accept rate "
                "(impostor pairs accepted) as the threshold moves; higher is better. The FAR axis is logarithmic to "
                "show the low-FAR region that matters for security; operating points with FAR = 0 are drawn at the "
                "left edge, FAR = 1 / number of impostor pairs. Dots mark the reported TAR @ FAR."
            )
        ],
    )
    curves = v.curves if v is not None else None
    if v is None or curves is None or not _one_length(curves.roc_fpr, curves.roc_tpr):
        section.blocks.append(not_available("eval.json has no verification.curves.roc_fpr / roc_tpr."))
        return section
    curve = {"roc_fpr": curves.roc_fpr, "roc_tpr": curves.roc_tpr}
    marks = {k: tar for k, tar in v.tar_at_far.items() if as_float(k) is not None}
    section.blocks.append(Figure("roc.png", "ROC", roc_plot(curve, marks, v.num_negative)))
    section.blocks += _far_calibration_blocks(v.far_calibration)
    return section


def _far_calibration_blocks(calibration: dict[str, FarCalibration]) -> list[Block]:
    """The threshold for each stated FAR, and what it delivered on folds it was not chosen on."""
    if not calibration:
        return []
    rows = [
        (key, num(c.threshold), num(c.tar), num(c.held_out_far), num(c.held_out_tar), num(c.below_resolution))
        for key, c in sorted(calibration.items(), key=lambda kc: key_order(kc[0]))
    ]
    return [
        Para(
            "Threshold for a stated false-accept rate: the loosest score threshold accepting at most that "
            "fraction of all the impostor pairs (the value to deploy), and, with each fold's threshold "
            "calibrated on the other folds only, the FAR and TAR it gave on the fold itself. "
            "Below resolution: fewer impostor pairs than 1 / FAR, so that FAR cannot be measured here."
        ),
        Table(("target FAR", "threshold", "TAR", "held-out FAR", "held-out TAR", "below resolution"), rows),
    ]


def det_section(v: VerificationResult | None) -> Section:
    section = Section(
        "DET",
        [
            how_to_read(
                "The DET curve shows the false reject rate against the false accept rate, both on log axes; lower-left "
                "is better. The curve crosses the dotted FAR = FRR line at the EER. Zero rates are drawn at the axis "
                "edges."
            )
        ],
    )
    curves = v.curves if v is not None else None
    if v is None or curves is None or not _one_length(curves.det_fpr, curves.det_fnr):
        section.blocks.append(not_available("eval.json has no verification.curves.det_fpr / det_fnr."))
        return section
    curve = {"det_fpr": curves.det_fpr, "det_fnr": curves.det_fnr}
    section.blocks.append(Figure("det.png", "DET", det_plot(curve, v.num_negative, v.num_positive)))
    return section


def _threshold_text(v: VerificationResult | None) -> str:
    """The operating threshold and its rule, or a note that eval.json gives none."""
    if v is None or v.threshold is None:
        return "eval.json gives no operating threshold (verification.threshold.value)."
    return f"Operating threshold: {num(v.threshold.value)}{paren(v.threshold.rule)}."


def scores_section(v: VerificationResult | None, eval_dir: Path) -> Section:
    section = Section(
        "Score distributions",
        [
            how_to_read(
                "Histograms (densities on shared bins) of the scores of genuine and impostor pairs. Their overlap is "
                "where errors happen: impostor pairs right of the threshold are false accepts, genuine pairs left of "
                "it are false rejects. The solid line is the operating threshold, the dashed one the EER threshold."
            )
        ],
    )
    if v is None:
        section.blocks.append(not_available("eval.json has no verification results."))
        return section
    arrays = load_npz(eval_dir / "scores.npz", ("scores", "same"))
    if arrays is None:
        section.blocks.append(not_available(f"{eval_dir / 'scores.npz'} not found."))
        return section
    threshold = v.threshold.value if v.threshold is not None else None
    png = score_histograms(arrays["scores"], arrays["same"], threshold, v.eer_threshold)
    section.blocks += [Para(_threshold_text(v)), Figure("scores.png", "Score distributions", png)]
    return section


def _pair_png(image1: np.ndarray, image2: np.ndarray) -> bytes:
    """The two crops side by side with a white gap, enlarged to at least PAIR_HEIGHT pixels high."""
    height = max(image1.shape[0], image2.shape[0])
    gap = np.full((height, 4, image1.shape[2]), 255, np.uint8)
    pad = [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0)), constant_values=255) for im in (image1, image2)]
    pair = np.concatenate([pad[0], gap, pad[1]], axis=1)
    img = Image.fromarray(pair[:, :, 0] if pair.shape[2] == 1 else pair)
    factor = max(1, math.ceil(PAIR_HEIGHT / height))
    img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def error_gallery_section(v: VerificationResult | None, eval_dir: Path) -> Section:
    section = Section(
        "Error gallery",
        [
            how_to_read(
                "The worst errors at the operating threshold: false accepts are the highest-scoring impostor pairs "
                "(different people the model calls the same), false rejects the lowest-scoring genuine pairs (the same "
                "person the model calls different). Each pair shows the two crops as the model saw them."
            )
        ],
    )
    path = eval_dir / "errors.npz"
    arrays = load_npz(path, ("kind", "score", "path1", "path2", "image1", "image2"))
    if arrays is None:
        section.blocks.append(not_available(f"{path} not found."))
        return section
    section.blocks.append(Para(_threshold_text(v)))
    if len(arrays["kind"]) == 0:
        section.blocks.append(Para("errors.npz holds no errors: every pair is classified correctly."))
        return section
    images = arrays["image1"], arrays["image2"]
    if any(im.ndim != 4 or im.shape[3] not in (1, 3) or im.dtype != np.uint8 for im in images):
        raise ReportError(
            f"{path}: image1 and image2 must be uint8 (E, H, W, C) with C = 1 or 3, got "
            f"{[(im.dtype.name, im.shape) for im in images]}; re-run `facemetric eval --out DIR`"
        )
    kinds = arrays["kind"].astype(str)
    for kind, heading in (
        ("false_accept", "Worst false accepts (impostor pairs scored at or above the threshold)"),
        ("false_reject", "Worst false rejects (genuine pairs scored below the threshold)"),
    ):
        figures = [
            Figure(
                f"error_{i:02d}.png",
                f"error pair {i}",
                _pair_png(images[0][i], images[1][i]),
                (num(float(arrays["score"][i])), str(arrays["path1"][i]), str(arrays["path2"][i])),
            )
            for i in np.flatnonzero(kinds == kind)
        ]
        if figures:
            section.blocks.append(ImageGrid(heading, ("Score", "Image 1", "Image 2"), figures))
        else:
            section.blocks.append(Para(f"{heading}: none."))
    return section
