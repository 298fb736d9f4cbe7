"""Render an evaluation folder (``facemetric eval --out DIR``) as an HTML and a Markdown report.

``eval.json`` is read back through :class:`facemetric.core.results.EvalDocument`, so a metric renamed
or retyped by the writer fails here with the field's path instead of silently dropping a row. The
report is built once as a list of sections made of a few block types (paragraph, table, figure,
image grid) and then written twice by the templates of :mod:`facemetric.report.document`:
``report.html`` is self-contained (inline CSS, images as data URIs, no scripts, no external URLs) so
it can be mailed or archived as one file; ``report.md`` mirrors it with its images in
``report_files/``. Everything read from the folder is escaped.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ValidationError

from facemetric.core.atomic import write_atomic
from facemetric.core.errors import FacemetricError
from facemetric.core.results import (
    EVAL_FORMAT,
    DirAtFar,
    EvalDocument,
    FarCalibration,
    IdentificationResult,
    NoFacePhoto,
    NoFaceReport,
    OpenSetResult,
    RetrievalResult,
    VerificationResult,
)
from facemetric.eval.patch_evaldir import is_patch_eval_dir
from facemetric.report import plots
from facemetric.report.document import (
    FILES_DIR,
    Block,
    Figure,
    ImageGrid,
    Para,
    Section,
    Table,
    how_to_read,
    not_available,
    to_html,
    to_markdown,
)

DEFAULT_TITLE = "facemetric evaluation report"
PAIR_HEIGHT = 112  # error-gallery crops smaller than this are enlarged (nearest neighbour)
MAX_PROBLEMS = 5  # validation problems listed in one ReportError
MAX_NO_FACE_ROWS = 50  # photos / pairs without a face listed in the report (eval.json lists all)


class ReportError(FacemetricError, ValueError):
    """The folder is not a readable facemetric evaluation folder; the message says which file and what to do."""


@dataclass
class ReportPaths:
    """What :func:`render_report` wrote."""

    html: Path
    markdown: Path
    figures: list[Path]


# ---------------------------------------------------------------- reading the folder


def _field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a path: ``('verification', 'per_fold', 3)`` -> ``verification.per_fold[3]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the document)"


def validation_problem(error: Any) -> str:
    """One validation problem: the field and what is wrong with it."""
    where = _field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field (renamed or misspelt?)"
    if error["type"] == "missing":
        return f"{where}: missing"
    got = repr(error.get("input"))
    return f"{where}: {error['msg']} (got {got[:60] + '...' if len(got) > 60 else got})"


def _load_eval(eval_dir: Path) -> EvalDocument:
    """``eval.json`` of ``eval_dir``, checked to be a facemetric-eval/1 document and validated."""
    path = eval_dir / "eval.json"
    if not path.is_file():
        raise ReportError(
            f"{path} not found: {eval_dir} is not a facemetric evaluation folder. Run "
            "`facemetric eval ... --out DIR` and pass DIR."
        )
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(
            f"{path} cannot be read as JSON ({e}); re-run `facemetric eval --out DIR` to rewrite it"
        ) from e
    found = raw.get("format") if isinstance(raw, dict) else f"a JSON {type(raw).__name__}"
    if found != EVAL_FORMAT:
        raise ReportError(
            f"{path} has format {found!r}, expected {EVAL_FORMAT!r}: only folders written by "
            "`facemetric eval --out DIR` can be rendered"
        )
    try:
        return EvalDocument.model_validate_json(text)
    except ValidationError as e:
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")  # renames first
        problems = [validation_problem(err) for err in errors]
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise ReportError(
            f"{path} does not match the {EVAL_FORMAT} results this version reads: "
            f"{'; '.join(problems[:MAX_PROBLEMS])}{more}. Re-run `facemetric eval --out DIR` to rewrite it"
        ) from None


def load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``keys`` of ``path`` (all of the same length), or None when the file is absent."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ReportError(f"{path} cannot be read as an .npz file ({e}); re-run `facemetric eval --out DIR`") from e
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ReportError(
            f"{path} lacks the arrays {missing} (it holds {sorted(arrays)}); it was not written by this "
            "version of `facemetric eval`: re-run it to rewrite the folder"
        )
    lengths = {k: len(arrays[k]) for k in keys if arrays[k].ndim}
    if len(set(lengths.values())) != 1 or len(lengths) != len(keys):
        raise ReportError(f"{path}: the arrays {keys} must be 1-D or more and of one length, got lengths {lengths}")
    return {k: arrays[k] for k in keys}


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train_rows, val_rows)`` of a run's ``metrics.jsonl``, sorted by step.

    The training log is untyped JSON lines (not part of eval.json): unparsable lines and other
    kinds are skipped; a resumed run repeats steps, so the last record of each step wins.
    """
    by_kind: dict[str, dict[float, dict[str, Any]]] = {"train": {}, "val": {}}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") in by_kind and _is_num(record.get("step")):
            by_kind[record["kind"]][record["step"]] = record
    train, val = (sorted(by_kind[k].values(), key=lambda r: r["step"]) for k in ("train", "val"))
    return train, val


def _metrics_candidates(run_dir: str, eval_dir: Path) -> list[Path]:
    """Where ``<run_dir>/metrics.jsonl`` may be: relative to the working directory, then to the eval folder."""
    run = Path(run_dir)
    dirs = [run] if run.is_absolute() else [Path.cwd() / run, eval_dir / run]
    return [d / "metrics.jsonl" for d in dirs]


# ---------------------------------------------------------------- formatting


def _num(x: Any) -> str:
    """A number for the report: rates and thresholds with 4 decimals, tiny values in e-notation."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.1e}" if x != 0 and abs(x) < 1e-4 else f"{x:.4f}"
    return str(x)


def _as_float(key: str) -> float | None:
    """A rate or K written as a mapping key ("1e-03", "10") as a number, else None."""
    try:
        return float(key)
    except ValueError:
        return None


def _key_order(key: str) -> float:
    """Sort key of such mapping keys: by value, unparsable keys first."""
    return _as_float(key) or 0.0


def _join(*parts: str | None) -> str:
    return ", ".join(p for p in parts if p)


def _paren(text: str | None) -> str:
    return f" ({text})" if text else ""


def _words(key: str) -> str:
    """A field name as words: ``false_alarm_rate`` -> ``false alarm rate``."""
    return key.replace("_", " ")


def _scalars(model: BaseModel) -> list[tuple[str, Any]]:
    """The single-valued fields of ``model`` (not lists, mappings or nested results), in declaration order."""
    return [(name, value) for name, value in model if not isinstance(value, (BaseModel, list, dict))]


# ---------------------------------------------------------------- sections


def _tar_rows(v: VerificationResult) -> list[tuple[str, str]]:
    rows = []
    for key in sorted(v.tar_at_far, key=_key_order):
        far = _as_float(key)
        coarse = far is not None and far > 0 and far * v.num_negative < 1
        note = f" (fewer than 1/FAR = {1 / far:.0f} impostor pairs: no false accept allowed)" if coarse and far else ""
        rows.append((f"TAR @ FAR = {key}", _num(v.tar_at_far[key]) + note))
    return rows


def _verification_rows(v: VerificationResult) -> list[tuple[str, str]]:
    folds = "folds from the protocol" if v.folds_from_file else "stratified folds drawn at evaluation"
    rows = [
        (
            "Verification accuracy (k-fold mean ± std)",
            f"{_num(v.accuracy)} ± {_num(v.accuracy_std)}{_paren(_join(f'{v.n_folds} folds', folds))}",
        ),
        ("AUC", _num(v.auc)),
        ("EER", f"{_num(v.eer)} (threshold {_num(v.eer_threshold)})"),
        *_tar_rows(v),
    ]
    if v.threshold is not None:
        rows.append(("Operating threshold", _num(v.threshold.value) + _paren(v.threshold.rule)))
    if v.errors is not None:
        rows.append(
            (
                "Errors at the operating threshold",
                f"{_num(v.errors.false_accepts)} false accepts, {_num(v.errors.false_rejects)} false rejects",
            )
        )
    rows.append(
        (
            "Accuracy, optimistic: threshold chosen on the test pairs (not a test figure)",
            f"{_num(v.optimistic.accuracy)} at threshold {_num(v.optimistic.threshold)}",
        )
    )
    rows.append(("Pairs", f"{_num(v.num_positive)} genuine, {_num(v.num_negative)} impostor" + _paren(v.source)))
    return rows


def _identification_rows(ident: IdentificationResult) -> list[tuple[str, str]]:
    closed, threshold, test = ident.closed_set, ident.open_set.threshold, ident.open_set.test
    text = (
        f"{_num(threshold.value)} for target FAR {_num(threshold.target_far)}; achieved FAR "
        f"{_num(threshold.achieved_far)} on validation{_paren(threshold.source)}"
    )
    if threshold.below_resolution:
        text += "; the target FAR is below 1 / number of validation impostors, so it could not be measured"
    detail = f"measured false-alarm rate {_num(test.false_alarm_rate)} on {_num(test.n_unknown)} unknown test probes"
    return [
        ("Closed-set rank-1 identification rate", _num(closed.rank1)),
        ("Closed-set rank-5 identification rate", _num(closed.rank5)),
        ("Open-set threshold", text),
        ("Open-set test DIR at that threshold", _num(test.dir) + _paren(detail)),
    ]


def _retrieval_rows(ret: RetrievalResult) -> list[tuple[str, str]]:
    rows = [
        ("Retrieval precision@1", _num(ret.precision_at_1)),
        ("Retrieval R-precision", _num(ret.r_precision)),
        ("Retrieval MAP@R", _num(ret.map_at_r)),
    ]
    rows += [(f"Retrieval Recall@{k}", _num(ret.recall_at_k[k])) for k in sorted(ret.recall_at_k, key=_key_order)]
    return rows


def _metrics_section(doc: EvalDocument) -> Section:
    section = Section(
        "Metrics",
        [
            how_to_read(
                "Accuracy is the fraction of pairs classified correctly, each fold using the threshold chosen on the "
                "other folds (mean ± standard deviation over folds). AUC is the probability that a random genuine "
                "(same-person) pair scores higher than a random impostor pair. EER (equal error rate) is the error "
                "rate at the threshold where the false accept rate equals the false reject rate. TAR @ FAR = f is the "
                "fraction of genuine pairs accepted at the strictest threshold that accepts at most a fraction f of "
                "impostor pairs. Identification and retrieval figures are explained in their sections."
            )
        ],
    )
    rows = []
    if doc.verification is not None:
        rows += _verification_rows(doc.verification)
    if doc.identification is not None:
        rows += _identification_rows(doc.identification)
    if doc.retrieval is not None:
        rows += _retrieval_rows(doc.retrieval)
    if rows:
        section.blocks.append(Table(("Metric", "Value"), rows))
    else:
        section.blocks.append(not_available("eval.json has no verification, identification or retrieval results."))
    return section


def _one_length(*lists: list[float]) -> bool:
    """True when the lists are non-empty and of one length (a curve that can be drawn)."""
    return all(lists) and len({len(x) for x in lists}) == 1


def _roc_section(v: VerificationResult | None) -> Section:
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
    marks = {k: tar for k, tar in v.tar_at_far.items() if _as_float(k) is not None}
    section.blocks.append(Figure("roc.png", "ROC", plots.roc_plot(curve, marks, v.num_negative)))
    section.blocks += _far_calibration_blocks(v.far_calibration)
    return section


def _far_calibration_blocks(calibration: dict[str, FarCalibration]) -> list[Block]:
    """The threshold for each stated FAR, and what it delivered on folds it was not chosen on."""
    if not calibration:
        return []
    rows = [
        (key, _num(c.threshold), _num(c.tar), _num(c.held_out_far), _num(c.held_out_tar), _num(c.below_resolution))
        for key, c in sorted(calibration.items(), key=lambda kc: _key_order(kc[0]))
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


def _det_section(v: VerificationResult | None) -> Section:
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
    section.blocks.append(Figure("det.png", "DET", plots.det_plot(curve, v.num_negative, v.num_positive)))
    return section


def _threshold_text(v: VerificationResult | None) -> str:
    """The operating threshold and its rule, or a note that eval.json gives none."""
    if v is None or v.threshold is None:
        return "eval.json gives no operating threshold (verification.threshold.value)."
    return f"Operating threshold: {_num(v.threshold.value)}{_paren(v.threshold.rule)}."


def _scores_section(v: VerificationResult | None, eval_dir: Path) -> Section:
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
    png = plots.score_histograms(arrays["scores"], arrays["same"], threshold, v.eer_threshold)
    section.blocks += [Para(_threshold_text(v)), Figure("scores.png", "Score distributions", png)]
    return section


def _last_val_text(val: list[dict[str, Any]]) -> str:
    last = val[-1]
    parts = [
        f"{name} {_num(last[key])}"
        for key, name in (("accuracy", "accuracy"), ("auc", "AUC"), ("eer", "EER"))
        if _is_num(last.get(key))
    ]
    return f"Last validation (step {last['step']}): {', '.join(parts) or 'no accuracy/AUC/EER recorded'}."


def _training_section(doc: EvalDocument, eval_dir: Path) -> Section:
    section = Section(
        "Training curves",
        [
            how_to_read(
                "Training loss per optimisation step, and the validation accuracy and EER measured during training. "
                "A validation curve that flattens or turns while the loss keeps falling suggests over-fitting."
            )
        ],
    )
    if not doc.run_dir:
        section.blocks.append(not_available("eval.json gives no training run folder (run_dir is null)."))
        return section
    candidates = _metrics_candidates(doc.run_dir, eval_dir)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        section.blocks.append(not_available(f"no metrics.jsonl at {' or '.join(map(str, candidates))}."))
        return section
    train, val = _read_metrics(path)
    if not train and not val:
        section.blocks.append(not_available(f"{path} holds no train or val records."))
        return section
    text = f"From {path}: {len(train)} training and {len(val)} validation records."
    section.blocks.append(Para(text + (" " + _last_val_text(val) if val else "")))
    section.blocks.append(Figure("training.png", "Training curves", plots.training_curves(train, val)))
    return section


def _embeddings_section(eval_dir: Path) -> Section:
    section = Section(
        "Embeddings (t-SNE)",
        [
            how_to_read(
                "t-SNE maps the embeddings to 2-D keeping near neighbours near. Compact clusters of one colour that do "
                "not mix mean the model separates those identities; distances between clusters and cluster sizes "
                "carry little meaning. At most 20 identities (those with the most images) are shown."
            )
        ],
    )
    arrays = load_npz(eval_dir / "embeddings.npz", ("embeddings", "identities"))
    if arrays is None:
        section.blocks.append(not_available(f"{eval_dir / 'embeddings.npz'} not found."))
        return section
    if arrays["embeddings"].ndim != 2:
        raise ReportError(
            f"{eval_dir / 'embeddings.npz'}: embeddings must be (N, D), got shape "
            f"{arrays['embeddings'].shape}; re-run `facemetric eval --out DIR`"
        )
    png = plots.tsne_plot(arrays["embeddings"], arrays["identities"])
    if png is None:
        section.blocks.append(
            not_available(f"too few points ({len(arrays['embeddings'])}) for a t-SNE plot (5 needed).")
        )
    else:
        section.blocks.append(Figure("tsne.png", "t-SNE of the embeddings", png))
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


def _error_gallery_section(v: VerificationResult | None, eval_dir: Path) -> Section:
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
                (_num(float(arrays["score"][i])), str(arrays["path1"][i]), str(arrays["path2"][i])),
            )
            for i in np.flatnonzero(kinds == kind)
        ]
        if figures:
            section.blocks.append(ImageGrid(heading, ("Score", "Image 1", "Image 2"), figures))
        else:
            section.blocks.append(Para(f"{heading}: none."))
    return section


def _dir_at_far_blocks(curve: DirAtFar) -> list[Block]:
    """DIR @ FAR as a table (the lists as long as ``far`` as columns), the other fields as text, and a plot."""
    length = len(curve.far)
    columns = {name: x for name, x in curve if isinstance(x, list) and len(x) == length}
    blocks: list[Block] = []
    if length:
        blocks.append(Table(tuple(columns), [tuple(_num(x[i]) for x in columns.values()) for i in range(length)]))
    extras = [
        f"{name}: {json.dumps(x) if isinstance(x, list) else _num(x)}" for name, x in curve if name not in columns
    ]
    if extras:
        blocks.append(Para("; ".join(extras) + "."))
    png = plots.dir_far_plot(curve.model_dump())
    if png is not None:
        blocks.append(Figure("dir_at_far.png", "DIR at FAR", png))
    return blocks


def _open_set_rows(open_set: OpenSetResult) -> list[tuple[str, str]]:
    rows = []
    for group, label in (
        (open_set.threshold, "Threshold"),
        (open_set.validation, "Validation"),
        (open_set.test, "Test"),
    ):
        rows += [(f"{label}: {_words(name)}", _num(x)) for name, x in _scalars(group)]
    return rows + [(_words(name), _num(x)) for name, x in _scalars(open_set)]


def _identification_section(doc: EvalDocument, eval_dir: Path) -> Section:
    section = Section(
        "Identification",
        [
            how_to_read(
                "Closed set: each probe is compared with a gallery of enrolled identities; the CMC curve gives the "
                "fraction of probes whose true identity is among the k best-scoring gallery identities. Open set: some "
                "probes are not enrolled. DIR (detection and identification rate) is the fraction of enrolled probes "
                "identified correctly at rank 1 with a score at or above the threshold; FAR (false-alarm rate) is the "
                "fraction of unknown probes whose best score reaches the threshold. The threshold is calibrated on a "
                "validation split; the DIR @ FAR table re-chooses thresholds on the test unknowns, to compare models."
            )
        ],
    )
    ident = doc.identification
    if ident is None:
        section.blocks.append(not_available("eval.json has no identification results."))
        return section
    closed = ident.closed_set
    if closed.ranks:
        section.blocks.append(
            Para(
                f"Closed set: {_num(closed.n_probes)} probes, {_num(closed.n_identities)} gallery "
                f"identities, template {closed.template}."
            )
        )
        section.blocks.append(Figure("cmc.png", "CMC", plots.cmc_plot(closed.ranks)))
    else:
        section.blocks.append(not_available("eval.json has no identification.closed_set.ranks (CMC)."))
    section.blocks.append(Table(("Open-set quantity", "Value"), _open_set_rows(ident.open_set)))
    section.blocks += _dir_at_far_blocks(ident.open_set.test.dir_at_far)
    if ident.decisions_csv:
        where = "in this folder" if (eval_dir / ident.decisions_csv).is_file() else "listed in eval.json but not found"
        section.blocks.append(Para(f"Per-probe open-set decisions: {ident.decisions_csv} ({where})."))
    return section


def _retrieval_section(doc: EvalDocument) -> Section:
    section = Section(
        "Retrieval",
        [
            how_to_read(
                "Every query image searches all other images. Precision@1 is the fraction of queries whose nearest "
                "neighbour shows the same person; Recall@K the fraction with at least one same-person image among the "
                "K nearest. With R the number of other images of the query's person, R-precision is the fraction of "
                "same-person images among the first R results and MAP@R the mean average precision over those R "
                "results, which rewards ranking all of them first."
            )
        ],
    )
    ret = doc.retrieval
    if ret is None:
        section.blocks.append(not_available("eval.json has no retrieval results."))
        return section
    headline = {"precision_at_1", "r_precision", "map_at_r"}
    rows = _retrieval_rows(ret) + [(_words(name), _num(x)) for name, x in _scalars(ret) if name not in headline]
    section.blocks.append(Table(("Quantity", "Value"), rows))
    return section


def _no_face_table(photos: list[NoFacePhoto], used_as: str) -> Table:
    """Photos without a face: path, open-set subset (when any has one), what was done, detector and its message."""
    shown = photos[:MAX_NO_FACE_ROWS]
    if any(p.subset for p in shown):
        return Table(
            ("Photo", "Open-set subset", "Used as", "Detection backend", "Detector's message"),
            [(p.path, p.subset or "", used_as, p.detection.backend, p.reason) for p in shown],
        )
    return Table(
        ("Photo", "Used as", "Detection backend", "Detector's message"),
        [(p.path, used_as, p.detection.backend, p.reason) for p in shown],
    )


def _more(shown: int, total: int, what: str) -> list[Block]:
    if total <= shown:
        return []
    return [Para(f"... and {total - shown} more {what}: eval.json (no_face) lists them all.")]


def _no_face_section(report: NoFaceReport | None) -> Section | None:
    """Photos in which the model found no face, and the pairs they affected; None when there were none."""
    if report is None or not report.affected():
        return None
    section = Section(
        "Photos without a detectable face",
        [
            how_to_read(
                "The model finds the face before embedding it; in these photos its detector found none. The policy "
                "(facemetric eval --no-face) says what became of them: fallback embeds the central crop the model's "
                "spec cuts without detection, reject turns them away as a deployed system would (a pair with one is "
                "scored -1, a non-match), fail stops the evaluation."
            ),
            Para(f"{report.summary()}: {report.rule}."),
        ],
    )
    used_as = "central crop" if report.policy == "fallback" else "turned away"
    if report.photos:
        section.blocks.append(_no_face_table(report.photos, used_as))
        section.blocks += _more(MAX_NO_FACE_ROWS, len(report.photos), "photos")
    if report.pairs:
        rows = [
            (_num(p.line), p.path1, p.path2, "same" if p.same else "different", _num(p.score))
            for p in report.pairs[:MAX_NO_FACE_ROWS]
        ]
        section.blocks.append(Table(("Pairs file line", "Photo 1", "Photo 2", "Person", "Score"), rows))
        section.blocks += _more(MAX_NO_FACE_ROWS, len(report.pairs), "pairs")
    if report.not_enrolled:
        section.blocks.append(
            Para(
                f"Not enrolled (every gallery photo without a face): {', '.join(report.not_enrolled)}; their probes "
                "are unknown people to the system."
            )
        )
    ret = report.retrieval
    if ret is not None and ret.photos:
        section.blocks.append(
            Para(f"Retrieval dataset: {ret.n_photos} photos without a face, {ret.left_out} of them left out.")
        )
        section.blocks.append(_no_face_table(ret.photos, used_as))
        section.blocks += _more(MAX_NO_FACE_ROWS, len(ret.photos), "photos")
    return section


def _meta(doc: EvalDocument) -> list[tuple[str, str]]:
    """The subtitle: checkpoint, time, data, embedding size, test-time flip and the evaluation's notes."""
    meta = [("Checkpoint", doc.checkpoint), ("Created", doc.created)]
    items = sorted(doc.data.items(), key=lambda kv: kv[0] != "description")
    meta += [("Data" if k == "description" else f"Data {k}", _num(x)) for k, x in items]
    meta += [("Embedding dimension", _num(doc.embedding_dim)), ("Test-time flip", _num(doc.flip))]
    if doc.no_face is not None and doc.no_face.affected():
        meta.append(("Photos without a face", doc.no_face.summary()))
    return meta + [("Note", note) for note in doc.notes]


def _sections(doc: EvalDocument, eval_dir: Path) -> list[Section]:
    v = doc.verification
    no_face = _no_face_section(doc.no_face)
    return [
        _metrics_section(doc),
        *([no_face] if no_face is not None else []),
        _roc_section(v),
        _det_section(v),
        _scores_section(v, eval_dir),
        _training_section(doc, eval_dir),
        _embeddings_section(eval_dir),
        _error_gallery_section(v, eval_dir),
        _identification_section(doc, eval_dir),
        _retrieval_section(doc),
    ]


def _figures(sections: list[Section]) -> list[Figure]:
    out: list[Figure] = []
    for block in (b for s in sections for b in s.blocks):
        if isinstance(block, Figure):
            out.append(block)
        elif isinstance(block, ImageGrid):
            out += block.figures
    return out


def render_report(eval_dir: str | Path, title: str | None = None) -> ReportPaths:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ ``report_files/*.png``) into ``eval_dir``.

    Raises :class:`ReportError` when ``eval_dir`` is not a facemetric-eval/1 (or, from ``eval --patches``,
    facemetric-patches/1) folder or one of its files is malformed. Sections whose inputs are absent
    say so instead of failing. PNGs left in ``report_files/`` by an earlier
    render that this one does not produce are removed.
    """
    eval_dir = Path(eval_dir)
    if is_patch_eval_dir(eval_dir):  # facemetric eval --patches: its own results and sections
        from facemetric.report.patches import patch_report

        meta, sections = patch_report(eval_dir)
    else:
        doc = _load_eval(eval_dir)
        sections = _sections(doc, eval_dir)
        meta = _meta(doc)
    title = title or DEFAULT_TITLE

    files_dir = eval_dir / FILES_DIR
    files_dir.mkdir(exist_ok=True)
    figure_paths = []
    for fig in _figures(sections):
        write_atomic(files_dir / fig.name, fig.png)
        figure_paths.append(files_dir / fig.name)
    for stale in set(files_dir.glob("*.png")) - set(figure_paths):
        stale.unlink()
    paths = ReportPaths(eval_dir / "report.html", eval_dir / "report.md", figure_paths)
    write_atomic(paths.html, to_html(title, meta, sections).encode("utf-8"))
    write_atomic(paths.markdown, to_markdown(title, meta, sections).encode("utf-8"))
    return paths
