"""Render an evaluation folder (``facemetric eval --out DIR``) as an HTML and a Markdown report.

The report is built once as a list of sections made of a few block types
(paragraph, table, figure, gallery) and then written twice: ``report.html`` is
self-contained (inline CSS, images as data URIs, no scripts, no external URLs)
so it can be mailed or archived as one file; ``report.md`` mirrors it with its
images in ``report_files/``. Everything read from the folder is escaped.
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

from facemetric.core.atomic import write_atomic
from facemetric.eval.evaldir import FORMAT
from facemetric.report import plots
from facemetric.report.document import (
    FILES_DIR,
    Figure,
    Gallery,
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


class ReportError(ValueError):
    """The folder is not a readable facemetric evaluation folder; the message says which file and what to do."""


@dataclass
class ReportPaths:
    """What :func:`render_report` wrote."""

    html: Path
    markdown: Path
    figures: list[Path]


# ---------------------------------------------------------------- report blocks


# ---------------------------------------------------------------- reading the folder


def _load_eval(eval_dir: Path) -> dict[str, Any]:
    """``eval.json`` of ``eval_dir``, checked to be a facemetric-eval/1 document."""
    path = eval_dir / "eval.json"
    if not path.is_file():
        raise ReportError(
            f"{path} not found: {eval_dir} is not a facemetric evaluation folder. Run "
            "`facemetric eval ... --out DIR` and pass DIR."
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(
            f"{path} cannot be read as JSON ({e}); re-run `facemetric eval --out DIR` to rewrite it"
        ) from e
    found = doc.get("format") if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
    if found != FORMAT:
        raise ReportError(
            f"{path} has format {found!r}, expected {FORMAT!r}: only folders written by "
            "`facemetric eval --out DIR` can be rendered"
        )
    return doc


def _load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
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


def _read_metrics(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train_rows, val_rows)`` of a run's ``metrics.jsonl``, sorted by step.

    Unparsable lines and other kinds are skipped; a resumed run repeats steps,
    so the last record of each step wins.
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


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


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


def _as_float(x: Any) -> float | None:
    """``x`` as a float (numbers and numeric strings such as "1e-03"), else None."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _get(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...``, or None when any level is missing or not a dict."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _join(*parts: str | None) -> str:
    return ", ".join(p for p in parts if p)


def _paren(text: str) -> str:
    return f" ({text})" if text else ""


def _words(key: str) -> str:
    """A JSON key as words: ``false_alarm_rate`` -> ``false alarm rate``."""
    return str(key).replace("_", " ")


# ---------------------------------------------------------------- sections


def _verification_rows(v: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    if v.get("accuracy") is not None:
        folds = None
        if v.get("folds_from_file") is not None:
            folds = "folds from the protocol" if v["folds_from_file"] else "stratified folds drawn at evaluation"
        n_folds = f"{v['n_folds']} folds" if v.get("n_folds") is not None else None
        std = f" ± {_num(v['accuracy_std'])}" if v.get("accuracy_std") is not None else ""
        rows.append(("Verification accuracy (k-fold mean ± std)",
                     f"{_num(v['accuracy'])}{std}{_paren(_join(n_folds, folds))}"))
    if v.get("auc") is not None:
        rows.append(("AUC", _num(v["auc"])))
    if v.get("eer") is not None:
        thr = f" (threshold {_num(v['eer_threshold'])})" if v.get("eer_threshold") is not None else ""
        rows.append(("EER", _num(v["eer"]) + thr))
    n_neg = v.get("num_negative")
    tar = v.get("tar_at_far") if isinstance(v.get("tar_at_far"), dict) else {}
    for key in sorted(tar, key=lambda k: _as_float(k) or 0.0):
        far = _as_float(key)
        coarse = _is_num(n_neg) and far is not None and 0 < far and far * n_neg < 1
        note = f" (fewer than 1/FAR = {1 / far:.0f} impostor pairs: no false accept allowed)" if coarse else ""
        rows.append((f"TAR @ FAR = {key}", _num(tar[key]) + note))
    threshold = _get(v, "threshold", "value")
    if threshold is not None:
        rows.append(("Operating threshold", _num(threshold) + _paren(str(_get(v, "threshold", "rule") or ""))))
    errors = v.get("errors")
    if isinstance(errors, dict):
        rows.append(("Errors at the operating threshold",
                     f"{_num(errors.get('false_accepts'))} false accepts, "
                     f"{_num(errors.get('false_rejects'))} false rejects"))
    if _get(v, "optimistic", "accuracy") is not None:
        thr = _get(v, "optimistic", "threshold")
        rows.append(("Accuracy, optimistic: threshold chosen on the test pairs (not a test figure)",
                     _num(v["optimistic"]["accuracy"]) + (f" at threshold {_num(thr)}" if thr is not None else "")))
    if v.get("num_positive") is not None or v.get("num_negative") is not None:
        rows.append(("Pairs", f"{_num(v.get('num_positive'))} genuine, {_num(n_neg)} impostor"
                     + _paren(str(v.get("source") or ""))))
    return rows


def _identification_rows(ident: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    closed = ident.get("closed_set") if isinstance(ident.get("closed_set"), dict) else {}
    for key, label in (("rank1", "Closed-set rank-1 identification rate"),
                       ("rank5", "Closed-set rank-5 identification rate")):
        if closed.get(key) is not None:
            rows.append((label, _num(closed[key])))
    threshold = _get(ident, "open_set", "threshold")
    if isinstance(threshold, dict) and threshold.get("value") is not None:
        text = f"{_num(threshold['value'])} for target FAR {_num(threshold.get('target_far'))}"
        if threshold.get("achieved_far") is not None:
            text += f"; achieved FAR {_num(threshold['achieved_far'])} on validation"
            text += _paren(str(threshold.get("source") or ""))
        if threshold.get("below_resolution"):
            text += "; the target FAR is below 1 / number of validation impostors, so it could not be measured"
        rows.append(("Open-set threshold", text))
    test = _get(ident, "open_set", "test")
    if isinstance(test, dict) and test.get("dir") is not None:
        far = test.get("false_alarm_rate")
        detail = f"measured false-alarm rate {_num(far)}" if far is not None else ""
        if far is not None and test.get("n_unknown") is not None:
            detail += f" on {_num(test['n_unknown'])} unknown test probes"
        rows.append(("Open-set test DIR at that threshold", _num(test["dir"]) + _paren(detail)))
    return rows


def _retrieval_rows(ret: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [(label, _num(ret[key])) for key, label in
            (("precision_at_1", "Retrieval precision@1"), ("r_precision", "Retrieval R-precision"),
             ("map_at_r", "Retrieval MAP@R")) if ret.get(key) is not None]
    recall = ret.get("recall_at_k") if isinstance(ret.get("recall_at_k"), dict) else {}
    for k in sorted(recall, key=lambda k: _as_float(k) or 0.0):
        rows.append((f"Retrieval Recall@{k}", _num(recall[k])))
    return rows


def _metrics_section(doc: dict[str, Any]) -> Section:
    section = Section("Metrics", [how_to_read(
        "Accuracy is the fraction of pairs classified correctly, each fold using the threshold chosen on the "
        "other folds (mean ± standard deviation over folds). AUC is the probability that a random genuine "
        "(same-person) pair scores higher than a random impostor pair. EER (equal error rate) is the error "
        "rate at the threshold where the false accept rate equals the false reject rate. TAR @ FAR = f is the "
        "fraction of genuine pairs accepted at the strictest threshold that accepts at most a fraction f of "
        "impostor pairs. Identification and retrieval figures are explained in their sections."
    )])
    rows = []
    for key, make in (("verification", _verification_rows), ("identification", _identification_rows),
                      ("retrieval", _retrieval_rows)):
        if isinstance(doc.get(key), dict):
            rows += make(doc[key])
    if rows:
        section.blocks.append(Table(("Metric", "Value"), rows))
    else:
        section.blocks.append(not_available("eval.json has no verification, identification or retrieval results."))
    return section


def _curve(v: Any, *keys: str) -> dict[str, list[float]] | None:
    """The curve lists ``keys`` of ``verification.curves`` when all are non-empty lists of one length."""
    curves = _get(v, "curves")
    lists = [_get(curves, k) for k in keys]
    if not all(isinstance(x, list) and x for x in lists) or len({len(x) for x in lists}) != 1:
        return None
    return dict(zip(keys, lists))


def _roc_section(v: Any) -> Section:
    section = Section("ROC", [how_to_read(
        "The ROC curve shows the true accept rate (genuine pairs accepted) against the false accept rate "
        "(impostor pairs accepted) as the threshold moves; higher is better. The FAR axis is logarithmic to "
        "show the low-FAR region that matters for security; operating points with FAR = 0 are drawn at the "
        "left edge, FAR = 1 / number of impostor pairs. Dots mark the reported TAR @ FAR."
    )])
    curve = _curve(v, "roc_fpr", "roc_tpr")
    if curve is None:
        section.blocks.append(not_available("eval.json has no verification.curves.roc_fpr / roc_tpr."))
        return section
    tar = v.get("tar_at_far") if isinstance(v.get("tar_at_far"), dict) else {}
    marks = {k: t for k, t in tar.items() if _as_float(k) is not None and _is_num(t)}
    n_neg = v.get("num_negative") if _is_num(v.get("num_negative")) else None
    section.blocks.append(Figure("roc.png", "ROC", plots.roc_plot(curve, marks, n_neg)))
    section.blocks += _far_calibration_blocks(v.get("far_calibration"))
    return section


def _far_calibration_blocks(calibration: Any) -> list[Any]:
    """The threshold for each stated FAR, and what it delivered on folds it was not chosen on."""
    if not isinstance(calibration, dict) or not calibration:
        return []
    rows = []
    for key in sorted(calibration, key=lambda k: _as_float(k) or 0.0):
        c = calibration[key] if isinstance(calibration[key], dict) else {}
        rows.append((key, _num(c.get("threshold")), _num(c.get("tar")), _num(c.get("held_out_far")),
                     _num(c.get("held_out_tar")), "yes" if c.get("below_resolution") else "no"))
    return [
        Para("Threshold for a stated false-accept rate: the loosest score threshold accepting at most that "
              "fraction of all the impostor pairs (the value to deploy), and, with each fold's threshold "
              "calibrated on the other folds only, the FAR and TAR it gave on the fold itself. "
              "Below resolution: fewer impostor pairs than 1 / FAR, so that FAR cannot be measured here."),
        Table(("target FAR", "threshold", "TAR", "held-out FAR", "held-out TAR", "below resolution"), rows),
    ]


def _det_section(v: Any) -> Section:
    section = Section("DET", [how_to_read(
        "The DET curve shows the false reject rate against the false accept rate, both on log axes; lower-left "
        "is better. The curve crosses the dotted FAR = FRR line at the EER. Zero rates are drawn at the axis "
        "edges."
    )])
    curve = _curve(v, "det_fpr", "det_fnr")
    if curve is None:
        section.blocks.append(not_available("eval.json has no verification.curves.det_fpr / det_fnr."))
        return section
    counts = [v.get(k) if _is_num(v.get(k)) else None for k in ("num_negative", "num_positive")]
    section.blocks.append(Figure("det.png", "DET", plots.det_plot(curve, *counts)))
    return section


def _threshold_text(v: Any) -> str:
    """The operating threshold and its rule, or a note that eval.json gives none."""
    value = _get(v, "threshold", "value")
    if value is None:
        return "eval.json gives no operating threshold (verification.threshold.value)."
    return f"Operating threshold: {_num(value)}{_paren(str(_get(v, 'threshold', 'rule') or ''))}."


def _scores_section(v: Any, eval_dir: Path) -> Section:
    section = Section("Score distributions", [how_to_read(
        "Histograms (densities on shared bins) of the scores of genuine and impostor pairs. Their overlap is "
        "where errors happen: impostor pairs right of the threshold are false accepts, genuine pairs left of "
        "it are false rejects. The solid line is the operating threshold, the dashed one the EER threshold."
    )])
    if not isinstance(v, dict):
        section.blocks.append(not_available("eval.json has no verification results."))
        return section
    arrays = _load_npz(eval_dir / "scores.npz", ("scores", "same"))
    if arrays is None:
        section.blocks.append(not_available(f"{eval_dir / 'scores.npz'} not found."))
        return section
    threshold, eer_threshold = _get(v, "threshold", "value"), v.get("eer_threshold")
    png = plots.score_histograms(arrays["scores"], arrays["same"], threshold,
                                 eer_threshold if _is_num(eer_threshold) else None)
    section.blocks += [Para(_threshold_text(v)), Figure("scores.png", "Score distributions", png)]
    return section


def _last_val_text(val: list[dict[str, Any]]) -> str:
    last = val[-1]
    parts = [f"{name} {_num(last[key])}" for key, name in
             (("accuracy", "accuracy"), ("auc", "AUC"), ("eer", "EER")) if _is_num(last.get(key))]
    return f"Last validation (step {last['step']}): {', '.join(parts) or 'no accuracy/AUC/EER recorded'}."


def _training_section(doc: dict[str, Any], eval_dir: Path) -> Section:
    section = Section("Training curves", [how_to_read(
        "Training loss per optimisation step, and the validation accuracy and EER measured during training. "
        "A validation curve that flattens or turns while the loss keeps falling suggests over-fitting."
    )])
    run_dir = doc.get("run_dir")
    if not isinstance(run_dir, str) or not run_dir:
        section.blocks.append(not_available("eval.json gives no training run folder (run_dir is null)."))
        return section
    candidates = _metrics_candidates(run_dir, eval_dir)
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
    section = Section("Embeddings (t-SNE)", [how_to_read(
        "t-SNE maps the embeddings to 2-D keeping near neighbours near. Compact clusters of one colour that do "
        "not mix mean the model separates those identities; distances between clusters and cluster sizes "
        "carry little meaning. At most 20 identities (those with the most images) are shown."
    )])
    arrays = _load_npz(eval_dir / "embeddings.npz", ("embeddings", "identities"))
    if arrays is None:
        section.blocks.append(not_available(f"{eval_dir / 'embeddings.npz'} not found."))
        return section
    if arrays["embeddings"].ndim != 2:
        raise ReportError(f"{eval_dir / 'embeddings.npz'}: embeddings must be (N, D), got shape "
                          f"{arrays['embeddings'].shape}; re-run `facemetric eval --out DIR`")
    png = plots.tsne_plot(arrays["embeddings"], arrays["identities"])
    if png is None:
        section.blocks.append(not_available(f"too few points ({len(arrays['embeddings'])}) for a t-SNE plot (5 needed)."))
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
    img = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _error_gallery_section(v: Any, eval_dir: Path) -> Section:
    section = Section("Error gallery", [how_to_read(
        "The worst errors at the operating threshold: false accepts are the highest-scoring impostor pairs "
        "(different people the model calls the same), false rejects the lowest-scoring genuine pairs (the same "
        "person the model calls different). Each pair shows the two crops as the model saw them."
    )])
    path = eval_dir / "errors.npz"
    arrays = _load_npz(path, ("kind", "score", "path1", "path2", "image1", "image2"))
    if arrays is None:
        section.blocks.append(not_available(f"{path} not found."))
        return section
    section.blocks.append(Para(_threshold_text(v)))
    if len(arrays["kind"]) == 0:
        section.blocks.append(Para("errors.npz holds no errors: every pair is classified correctly."))
        return section
    images = arrays["image1"], arrays["image2"]
    if any(im.ndim != 4 or im.shape[3] not in (1, 3) or im.dtype != np.uint8 for im in images):
        raise ReportError(f"{path}: image1 and image2 must be uint8 (E, H, W, C) with C = 1 or 3, got "
                          f"{[(im.dtype.name, im.shape) for im in images]}; re-run `facemetric eval --out DIR`")
    kinds = arrays["kind"].astype(str)
    for kind, heading in (("false_accept", "Worst false accepts (impostor pairs scored at or above the threshold)"),
                          ("false_reject", "Worst false rejects (genuine pairs scored below the threshold)")):
        figures = [Figure(f"error_{i:02d}.png", f"error pair {i}", _pair_png(images[0][i], images[1][i]),
                           (_num(float(arrays["score"][i])), str(arrays["path1"][i]), str(arrays["path2"][i])))
                   for i in np.flatnonzero(kinds == kind)]
        if figures:
            section.blocks.append(Gallery(heading, ("Score", "Image 1", "Image 2"), figures))
        else:
            section.blocks.append(Para(f"{heading}: none."))
    return section


def _dir_at_far_blocks(curve: dict[str, Any]) -> list[Any]:
    """DIR @ FAR as a table (equal-length lists as columns), its scalars as text, and a plot."""
    lists = {k: x for k, x in curve.items() if isinstance(x, list)}
    far_key = next((k for k in ("far", "fars") if k in lists), None)
    length = len(lists[far_key]) if far_key else max((len(x) for x in lists.values()), default=0)
    columns = {k: x for k, x in lists.items() if len(x) == length}
    blocks: list[Any] = []
    if columns and length:
        rows = [tuple(_num(columns[k][i]) for k in columns) for i in range(length)]
        blocks.append(Table(tuple(columns), rows))
    extras = [f"{k}: {_num(x) if not isinstance(x, (list, dict)) else json.dumps(x)}"
              for k, x in curve.items() if k not in columns]
    if extras:
        blocks.append(Para("; ".join(extras) + "."))
    png = plots.dir_far_plot(curve)
    if png is not None:
        blocks.append(Figure("dir_at_far.png", "DIR at FAR", png))
    return blocks


def _open_set_rows(open_set: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for group, label in (("threshold", "Threshold"), ("validation", "Validation"), ("test", "Test")):
        values = open_set.get(group)
        if isinstance(values, dict):
            rows += [(f"{label}: {_words(k)}", _num(x)) for k, x in values.items() if not isinstance(x, (dict, list))]
    rows += [(_words(k), _num(x)) for k, x in open_set.items() if not isinstance(x, (dict, list))]
    return rows


def _identification_section(doc: dict[str, Any], eval_dir: Path) -> Section:
    section = Section("Identification", [how_to_read(
        "Closed set: each probe is compared with a gallery of enrolled identities; the CMC curve gives the "
        "fraction of probes whose true identity is among the k best-scoring gallery identities. Open set: some "
        "probes are not enrolled. DIR (detection and identification rate) is the fraction of enrolled probes "
        "identified correctly at rank 1 with a score at or above the threshold; FAR (false-alarm rate) is the "
        "fraction of unknown probes whose best score reaches the threshold. The threshold is calibrated on a "
        "validation split; the DIR @ FAR table re-chooses thresholds on the test unknowns, to compare models."
    )])
    ident = doc.get("identification")
    if not isinstance(ident, dict):
        section.blocks.append(not_available("eval.json has no identification results."))
        return section
    ranks = _get(ident, "closed_set", "ranks")
    if isinstance(ranks, list) and ranks and all(_is_num(r) for r in ranks):
        closed = ident["closed_set"]
        section.blocks.append(Para(
            f"Closed set: {_num(closed.get('n_probes'))} probes, {_num(closed.get('n_identities'))} gallery "
            f"identities, template {closed.get('template', 'n/a')}."))
        section.blocks.append(Figure("cmc.png", "CMC", plots.cmc_plot(ranks)))
    else:
        section.blocks.append(not_available("eval.json has no identification.closed_set.ranks (CMC)."))
    open_set = ident.get("open_set")
    if isinstance(open_set, dict):
        section.blocks.append(Table(("Open-set quantity", "Value"), _open_set_rows(open_set)))
        curve = _get(open_set, "test", "dir_at_far")
        section.blocks += _dir_at_far_blocks(curve) if isinstance(curve, dict) else [
            not_available("eval.json has no identification.open_set.test.dir_at_far.")]
    else:
        section.blocks.append(not_available("eval.json has no open-set identification results."))
    csv_name = ident.get("decisions_csv")
    if isinstance(csv_name, str) and csv_name:
        where = "in this folder" if (eval_dir / csv_name).is_file() else "listed in eval.json but not found"
        section.blocks.append(Para(f"Per-probe open-set decisions: {csv_name} ({where})."))
    return section


def _retrieval_section(doc: dict[str, Any]) -> Section:
    section = Section("Retrieval", [how_to_read(
        "Every query image searches all other images. Precision@1 is the fraction of queries whose nearest "
        "neighbour shows the same person; Recall@K the fraction with at least one same-person image among the "
        "K nearest. With R the number of other images of the query's person, R-precision is the fraction of "
        "same-person images among the first R results and MAP@R the mean average precision over those R "
        "results, which rewards ranking all of them first."
    )])
    ret = doc.get("retrieval")
    if not isinstance(ret, dict):
        section.blocks.append(not_available("eval.json has no retrieval results."))
        return section
    rows = _retrieval_rows(ret) + [(_words(k), _num(x)) for k, x in ret.items()
                                   if not isinstance(x, (dict, list)) and k not in
                                   ("precision_at_1", "r_precision", "map_at_r")]
    section.blocks.append(Table(("Quantity", "Value"), rows))
    return section


def _meta(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The subtitle: checkpoint, time, data, embedding size, test-time flip and the evaluation's notes."""
    meta = [("Checkpoint", str(doc.get("checkpoint", "n/a"))), ("Created", str(doc.get("created", "n/a")))]
    data = doc.get("data")
    if isinstance(data, dict):
        items = sorted(data.items(), key=lambda kv: kv[0] != "description")
        meta += [("Data" if k == "description" else f"Data {k}", _num(x)) for k, x in items]
    elif data is not None:
        meta.append(("Data", str(data)))
    meta += [("Embedding dimension", _num(doc.get("embedding_dim"))),
             ("Test-time flip", _num(doc.get("flip")))]
    notes = doc.get("notes")
    meta += [("Note", str(n)) for n in notes] if isinstance(notes, list) else []
    return meta


def _sections(doc: dict[str, Any], eval_dir: Path) -> list[Section]:
    v = doc.get("verification")
    return [
        _metrics_section(doc),
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
        elif isinstance(block, Gallery):
            out += block.figures
    return out


def render_report(eval_dir: str | Path, title: str | None = None) -> ReportPaths:
    """Write ``report.html`` (self-contained) and ``report.md`` (+ ``report_files/*.png``) into ``eval_dir``.

    Raises :class:`ReportError` when ``eval_dir`` is not a facemetric-eval/1
    folder or one of its files is malformed. Sections whose inputs are absent
    say so instead of failing. PNGs left in ``report_files/`` by an earlier
    render that this one does not produce are removed.
    """
    eval_dir = Path(eval_dir)
    doc = _load_eval(eval_dir)
    sections = _sections(doc, eval_dir)
    title = title or DEFAULT_TITLE
    meta = _meta(doc)

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
