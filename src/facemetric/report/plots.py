"""Report figures as PNG bytes.

Every function builds its own :class:`matplotlib.figure.Figure` on an Agg canvas
and returns the encoded PNG, so nothing touches pyplot's global state or the
process-wide backend (safe inside notebooks, threads and tests).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

DPI = 100
SIZE = (5.5, 4.0)
FAR_FLOOR = 1e-5  # where FAR = 0 is drawn when the number of impostors is unknown
GENUINE_COLOR = "tab:blue"
IMPOSTOR_COLOR = "tab:orange"


def _figure(ncols: int = 1, size: tuple[float, float] = SIZE) -> tuple[Figure, list[Axes]]:
    """A fresh figure with ``ncols`` axes side by side, attached to an Agg canvas."""
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _png(fig: Figure) -> bytes:
    """Encode ``fig`` as PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _plain(text: Any) -> str:
    """``text`` with ``$`` escaped, so data (identity names) is never parsed as mathtext."""
    return str(text).replace("$", r"\$")


def _floor(count: int | None) -> float:
    """Smallest rate drawn on a log axis: one error in ``count`` trials, else :data:`FAR_FLOOR`."""
    return 1.0 / count if count else FAR_FLOOR


def roc_plot(
    curves: Mapping[str, Sequence[float]],
    marks: Mapping[str, float] | None = None,
    num_negative: int | None = None,
) -> bytes:
    """ROC: TAR against FAR on a log axis; FAR = 0 points sit at the left edge.

    ``curves`` holds ``roc_fpr`` and ``roc_tpr``; ``marks`` maps FAR keys such as
    ``"1e-03"`` to the TAR reported there, drawn as dots.
    """
    floor = _floor(num_negative)
    fpr = np.clip(np.asarray(curves["roc_fpr"], dtype=float), floor, 1.0)
    tpr = np.asarray(curves["roc_tpr"], dtype=float)
    fig, (ax,) = _figure()
    ax.plot(fpr, tpr, color=GENUINE_COLOR, lw=1.8, label="ROC")
    chance = np.geomspace(floor, 1.0, 100)
    ax.plot(chance, chance, color="0.6", lw=0.8, ls=":", label="chance")
    for key, tar in (marks or {}).items():
        far = max(float(key), floor)
        ax.plot([far], [tar], "o", ms=6, label=f"TAR@FAR={key}: {tar:.4f}")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("FAR (false accept rate, log scale)")
    ax.set_ylabel("TAR (true accept rate)")
    ax.set_title("ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def det_plot(
    curves: Mapping[str, Sequence[float]],
    num_negative: int | None = None,
    num_positive: int | None = None,
) -> bytes:
    """DET: FRR against FAR, both log axes; zero rates sit at the edges (one error in n)."""
    far_floor, frr_floor = _floor(num_negative), _floor(num_positive)
    far = np.clip(np.asarray(curves["det_fpr"], dtype=float), far_floor, 1.0)
    frr = np.clip(np.asarray(curves["det_fnr"], dtype=float), frr_floor, 1.0)
    fig, (ax,) = _figure()
    ax.plot(far, frr, color=GENUINE_COLOR, lw=1.8, label="DET")
    low = min(far_floor, frr_floor)
    ax.plot([low, 1.0], [low, 1.0], color="0.6", lw=0.8, ls=":", label="FAR = FRR (EER line)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(far_floor, 1.0)
    ax.set_ylim(frr_floor, 1.0)
    ax.set_xlabel("FAR (false accept rate, log scale)")
    ax.set_ylabel("FRR (false reject rate, log scale)")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)


def score_histograms(
    scores: ArrayLike,
    same: ArrayLike,
    threshold: float | None,
    eer_threshold: float | None = None,
) -> bytes:
    """Genuine and impostor score densities on shared bins, with the decision threshold(s)."""
    s = np.asarray(scores, dtype=float)
    genuine = np.asarray(same).astype(bool)
    bins = np.histogram_bin_edges(s, bins=int(np.clip(math.sqrt(len(s)), 10, 60))).tolist()
    fig, (ax,) = _figure()
    for mask, color, label in (
        (genuine, GENUINE_COLOR, "genuine (same person)"),
        (~genuine, IMPOSTOR_COLOR, "impostor (different people)"),
    ):
        if mask.any():
            ax.hist(s[mask], bins=bins, density=True, alpha=0.55, color=color, label=f"{label}, n={int(mask.sum())}")
    if threshold is not None:
        ax.axvline(threshold, color="black", lw=1.5, label=f"operating threshold {threshold:.4f}")
    if eer_threshold is not None:
        ax.axvline(eer_threshold, color="0.35", lw=1.2, ls="--", label=f"EER threshold {eer_threshold:.4f}")
    ax.set_ylim(0.0, ax.get_ylim()[1] * 1.45)  # headroom so the legend does not hide the bars
    ax.set_xlabel("score (higher = more alike)")
    ax.set_ylabel("density")
    ax.set_title("Score distributions")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of the rows holding a finite number under ``key``."""
    pairs = [
        (r["step"], r[key])
        for r in rows
        if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) and math.isfinite(r[key])
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _empty(ax: Axes, text: str) -> None:
    """Mark a panel that has nothing to draw."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def training_minutes(train_rows: Sequence[Mapping[str, Any]], steps: Sequence[float]) -> list[float] | None:
    """Minutes of training at each of ``steps``: the epochs' own seconds summed (validation, pauses and
    the time before a resume left out), interpolated within an epoch; None without epoch timings."""
    ends, seconds = _series(train_rows, "seconds")
    if not ends:
        return None
    minutes = np.cumsum(seconds) / 60.0
    return np.interp(steps, [0.0, *ends], [0.0, *minutes]).round(3).tolist()


def learning_curves(runs: Mapping[str, tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]]]) -> bytes:
    """Held-out accuracy against minutes of training, one line per run (``name -> (train rows, val rows)``)."""
    fig, (ax,) = _figure(size=(7.0, 4.2))
    drawn = 0
    for name, (train_rows, val_rows) in runs.items():
        steps, acc = _series(val_rows, "accuracy")
        minutes = training_minutes(train_rows, steps)
        if steps and minutes is not None:
            ax.plot(minutes, acc, "o-", ms=3, lw=1.4, label=_plain(name))
            drawn += 1
    if drawn:
        ax.set_xlabel("minutes of training (this CPU)")
        ax.set_ylabel("held-out accuracy")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    else:
        _empty(ax, "no run with validation records and epoch timings")
    ax.set_title("Learning curves")
    fig.tight_layout()
    return _png(fig)


def training_curves(train_rows: Sequence[Mapping[str, Any]], val_rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Two panels: training loss per step; validation accuracy and EER (twin axis) against minutes of
    training (the learning curve; per step when the records carry no epoch timings)."""
    fig, (loss_ax, val_ax) = _figure(2, (10.0, 3.8))
    steps, loss = _series(train_rows, "loss")
    if steps:
        loss_ax.plot(steps, loss, color="tab:purple", lw=1.2)
        loss_ax.set_xlabel("step")
        loss_ax.set_ylabel("loss")
        loss_ax.grid(True, alpha=0.3)
    else:
        _empty(loss_ax, "no training-loss records")
    loss_ax.set_title("Training loss")

    acc_steps, acc = _series(val_rows, "accuracy")
    eer_steps, eer = _series(val_rows, "eer")
    acc_x, eer_x = training_minutes(train_rows, acc_steps), training_minutes(train_rows, eer_steps)
    x_label = "minutes of training"
    if acc_x is None or eer_x is None:
        acc_x, eer_x, x_label = acc_steps, eer_steps, "step"
    if acc_steps or eer_steps:
        lines = []
        if acc_steps:
            lines += val_ax.plot(acc_x, acc, "o-", color=GENUINE_COLOR, ms=3, label="accuracy")
            val_ax.set_ylabel("accuracy")
        if eer_steps:
            eer_ax = val_ax.twinx() if acc_steps else val_ax
            lines += eer_ax.plot(eer_x, eer, "s--", color=IMPOSTOR_COLOR, ms=3, label="EER")
            eer_ax.set_ylabel("EER")
        val_ax.set_xlabel(x_label)
        val_ax.grid(True, alpha=0.3)
        val_ax.legend(lines, [str(ln.get_label()) for ln in lines], loc="center right", fontsize=8)
    else:
        _empty(val_ax, "no validation records")
    val_ax.set_title("Validation")
    fig.tight_layout()
    return _png(fig)


def select_points(identities: ArrayLike, max_points: int, max_identities: int, seed: int) -> np.ndarray:
    """Sorted indices of the points a t-SNE plot shows.

    Keeps the ``max_identities`` identities with the most points (ties broken by
    name), then, when more than ``max_points`` remain, a seeded random subset:
    the same inputs always give the same plot.
    """
    ids = np.asarray(identities).astype(str)
    names, counts = np.unique(ids, return_counts=True)
    ranked = sorted(zip(names.tolist(), counts.tolist()), key=lambda nc: (-nc[1], nc[0]))
    keep = np.flatnonzero(np.isin(ids, [name for name, _ in ranked[:max_identities]]))
    if len(keep) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(keep, size=max_points, replace=False))
    return keep


def tsne_plot(
    embeddings: ArrayLike,
    identities: ArrayLike,
    max_points: int = 1500,
    max_identities: int = 20,
    seed: int = 0,
) -> bytes | None:
    """2-D t-SNE of the embeddings coloured by identity; None when fewer than 5 points are shown."""
    from sklearn.manifold import TSNE

    emb = np.asarray(embeddings, dtype=np.float32)
    ids = np.asarray(identities).astype(str)
    keep = select_points(ids, max_points, max_identities, seed)
    n = len(keep)
    if n < 5:
        return None
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, (n - 1) / 3)).fit_transform(emb[keep])
    shown = ids[keep]
    names = sorted(set(shown.tolist()))
    cmap = matplotlib.colormaps["tab20"]
    fig, (ax,) = _figure(size=(6.5, 4.5))
    for i, name in enumerate(names):
        at = shown == name
        ax.scatter(xy[at, 0], xy[at, 1], s=12, color=cmap(i % 20), label=_plain(name))
    title = f"t-SNE: {n} points, {len(names)} identities"
    if n < len(ids) or len(names) < len(set(ids.tolist())):
        title += f" (of {len(ids)} points, {len(set(ids.tolist()))} identities)"
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= 20 and max(len(name) for name in names) <= 24:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _png(fig)


def cmc_plot(ranks: Sequence[float]) -> bytes:
    """CMC: the rank-k identification rate for k = 1..len(ranks)."""
    k = np.arange(1, len(ranks) + 1)
    fig, (ax,) = _figure()
    ax.plot(k, ranks, "o-" if len(ranks) <= 30 else "-", color=GENUINE_COLOR, ms=4)
    ax.set_xlabel("rank k")
    ax.set_ylabel("identification rate (true identity in top k)")
    ax.set_ylim(min(0.0, float(np.min(ranks))), 1.02)
    ax.set_xlim(0.5, len(ranks) + 0.5)
    ax.set_title("CMC (closed-set identification)")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def tar_by_yaw_plot(yaws: Sequence[float], tars: Sequence[float], counts: Sequence[int], threshold: float) -> bytes:
    """TAR against the |yaw| of each genuine pair's more turned photo, each point labelled with its pair count."""
    fig, (ax,) = _figure()
    ax.plot(yaws, tars, "o-", color=GENUINE_COLOR, ms=4)
    for x, y, n in zip(yaws, tars, counts):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, -12), ha="center", fontsize=7)
    ax.set_xlabel("|yaw| of the more turned photo (degrees)")
    ax.set_ylabel(f"TAR at threshold {threshold:.3f}")
    ax.set_ylim(min(0.0, float(np.min(tars))) - 0.05 if len(tars) else 0.0, 1.05)
    ax.set_xlim(-5, 95)
    ax.set_title("Genuine pairs accepted as the head turns")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def dir_far_plot(dir_at_far: Mapping[str, Any]) -> bytes | None:
    """DIR against FAR (log axis) from a ``dir_at_far`` dict; None without equal-length FAR and DIR lists.

    The FAR list may be named ``far`` or ``fars``.
    """
    fars = dir_at_far.get("far", dir_at_far.get("fars"))
    dirs = dir_at_far.get("dir")
    if not isinstance(fars, list) or not isinstance(dirs, list) or not fars or len(fars) != len(dirs):
        return None
    x = np.clip(np.asarray(fars, dtype=float), FAR_FLOOR, 1.0)
    fig, (ax,) = _figure()
    ax.plot(x, dirs, "o-", color=GENUINE_COLOR, ms=5)
    ax.set_xscale("log")
    ax.set_xlim(x.min() / 2, min(1.0, x.max() * 2))
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("FAR (false-alarm rate of unknown probes, log scale)")
    ax.set_ylabel("DIR (detection and identification rate)")
    ax.set_title("Open-set DIR at FAR")
    ax.grid(True, which="both", alpha=0.3)
    return _png(fig)


PATCH_MARKERS = {"ref": "*", "e": "o", "h": "s", "t": "^"}  # image of an HPatches patch -> marker


def patch_tsne_plot(descriptors: ArrayLike, points: ArrayLike, images: ArrayLike, seed: int = 0) -> bytes | None:
    """2-D t-SNE of patch descriptors: colour by 3-D point, marker by image (ref star, easy circle, hard
    square, tough triangle), so a point whose tough patches drift away from its cluster shows; None
    under 5 patches."""
    from sklearn.manifold import TSNE

    desc = np.asarray(descriptors, dtype=np.float32)
    names, kinds = np.asarray(points).astype(str), np.asarray(images).astype(str)
    n = len(desc)
    if n < 5:
        return None
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, (n - 1) / 3)).fit_transform(desc)
    order = sorted(set(names.tolist()))
    colours = [matplotlib.colormaps[name](i) for name in ("tab20", "tab20b") for i in range(20)]
    colour = {name: colours[i % len(colours)] for i, name in enumerate(order)}
    fig, (ax,) = _figure(size=(6.5, 4.8))
    for image in ("t", "h", "e", "ref"):  # the reference patches last, on top
        at = kinds == "ref" if image == "ref" else np.char.startswith(kinds, image) & (kinds != "ref")
        if at.any():
            ref = image == "ref"
            ax.scatter(
                xy[at, 0],
                xy[at, 1],
                s=70 if ref else 14,
                marker=PATCH_MARKERS[image],
                c=[colour[name] for name in names[at]],
                edgecolors="black" if ref else "none",
                linewidths=0.6,
            )
    for image, label in (("ref", "reference"), ("e", "easy"), ("h", "hard"), ("t", "tough")):
        ax.scatter([], [], marker=PATCH_MARKERS[image], color="0.3", label=label)
    ax.set_title(f"t-SNE: {len(order)} points x {n // max(len(order), 1)} patches, colour = point", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="image", title_fontsize=8)
    return _png(fig)
