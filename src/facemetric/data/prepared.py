"""Open a ``facemetric prepare`` output as training/evaluation data (memory-mapped, nothing decoded)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from facemetric.data.align import ALIGNERS
from facemetric.data.cache import PackedImages
from facemetric.data.images import ImageSpec
from facemetric.data.prepare import FORMAT


def _meta(path: str | Path) -> dict | None:
    """A complete prepared cache's meta.json (written last by prepare), else None."""
    file = Path(path) / "meta.json"
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def is_prepared(path: str | Path) -> bool:
    """True when ``path`` is a complete prepared cache (its meta.json written)."""
    return _meta(path) is not None


def align_with_settings(align: str, opts: dict) -> str:
    """The backend name, with the settings the cache was cut with that differ from the backend's defaults after a
    ``?`` (``dlib-chip?detector=yunet``): what a model trained on the cache cuts photos with at inference."""
    if align not in ALIGNERS:
        return align
    defaults = {name: p.default for name, p in ALIGNERS.parameters(align).items()}
    settings = sorted(opts.get("align_options", {}).items())
    changed = [f"{k}={v}" for k, v in settings if k in defaults and v != defaults[k]]
    return align + ("?" + "&".join(changed) if changed else "")


def prepared_spec(path: str | Path) -> ImageSpec:
    """The preprocessing a prepared cache's crops went through, with its normalisation statistics."""
    meta = _meta(path)
    if meta is None:
        raise FileNotFoundError(f"{path}: not a complete prepared cache (no meta.json); run facemetric prepare first")
    opts = meta["options"]
    crop = float(opts.get("align_options", {}).get("fraction", 0.55)) if opts["align"] == "center" else 1.0
    return ImageSpec(
        opts["size"],
        opts["size"],
        opts["channels"],
        crop=crop,
        align="crop" if opts["align"] in ("none", "center") else align_with_settings(opts["align"], opts),
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
    )


def load_prepared(path: str | Path) -> PackedImages:
    """Images (memory-mapped: pages are read when a batch touches them), labels, sources, skips."""
    path = Path(path)
    if not is_prepared(path):
        raise FileNotFoundError(f"{path}: not a complete prepared cache (no meta.json); run facemetric prepare first")
    images = np.load(path / "images.npy", mmap_mode="r")
    with (path / "manifest.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = np.array([int(r["label"]) for r in rows], dtype=np.int64)
    names: dict[int, str] = {int(r["label"]): r["identity"] for r in rows}
    with (path / "skipped.csv").open(newline="", encoding="utf-8") as f:
        bad = [(r["source"], r["reason"]) for r in csv.DictReader(f)]
    if len(rows) != len(images):
        raise ValueError(
            f"{path}: manifest.csv has {len(rows)} rows but images.npy {len(images)}; prepare again with --overwrite"
        )
    return PackedImages(images, labels, [r["source"] for r in rows], [names[k] for k in range(len(names))], bad)
