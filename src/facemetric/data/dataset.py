"""From a data config to decoded, identity-disjoint train and validation sets (``load_dataset``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from facemetric.core.atomic import write_json
from facemetric.core.config import DataConfig
from facemetric.core.spec import ImageSpec
from facemetric.data.cache import PackedImages, load_packed
from facemetric.data.prepared import is_prepared, load_prepared, prepared_spec
from facemetric.data.sources import DatasetError, scan_source
from facemetric.data.split import split_identities

log = logging.getLogger("facemetric")


@dataclass
class DatasetSplit:
    train: PackedImages
    val: PackedImages | None
    spec: ImageSpec
    skipped: list[tuple[str, str]]  # every input left out, with the reason


def image_spec(cfg: DataConfig) -> ImageSpec:
    """The preprocessing a data config describes."""
    return ImageSpec(height=cfg.image_size[0], width=cfg.image_size[1], channels=cfg.channels, crop=cfg.crop)


def report_skipped(skipped: list[tuple[str, str]], out_dir: Path | None = None) -> None:
    """Warn once per skipped input with its path and reason; keep the full list in the run folder."""
    if not skipped:
        return
    lines = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
    log.warning("skipped %d input(s) that cannot be used:\n%s", len(skipped), lines)
    if out_dir is not None:
        write_json(out_dir / "skipped_inputs.json", [{"path": p, "reason": r} for p, r in skipped])


def load_dataset(cfg: DataConfig, progress: bool = True, out_dir: Path | None = None) -> DatasetSplit:
    """Scan, decode (via the cache) and split ``cfg.source``; bad inputs are reported, not fatal."""
    if not cfg.source:
        raise DatasetError("no training data: set data.source (or pass --data PATH)")
    if is_prepared(cfg.source):
        packed, spec = load_prepared(cfg.source), prepared_spec(cfg.source)
        layout, skipped = "prepared cache", list(packed.bad)
        if [spec.height, spec.width] != list(cfg.image_size):
            log.warning(
                "data.image_size %s differs from the %dx%d crops in %s: the crops are used as they are "
                "(prepare again with --size to change them)",
                cfg.image_size,
                spec.height,
                spec.width,
                cfg.source,
            )
        if spec.channels != cfg.channels:
            raise DatasetError(f"{cfg.source} holds {spec.channels}-channel crops but data.channels is {cfg.channels}")
    else:
        manifest = scan_source(cfg.source, cfg.layout, cfg.flat_pattern)
        spec = image_spec(cfg)
        packed = load_packed(manifest, spec, cfg.cache_dir, progress=progress)
        layout, skipped = f"{manifest.layout} layout", [(str(p), r) for p, r in manifest.skipped] + list(packed.bad)
    report_skipped(skipped, out_dir)
    if len(packed) == 0:
        raise DatasetError(f"{cfg.source}: no usable image (see the skipped inputs above)")
    train_idx, val_idx = split_identities(packed.labels, cfg.val_identities, cfg.split_seed)
    train = packed.subset(train_idx)
    val = packed.subset(val_idx) if len(val_idx) else None
    log.info(
        "data: %s (%s) -> %d images of %d identities; train %d identities / %d images, "
        "validation %d identities / %d images",
        cfg.source,
        layout,
        len(packed),
        len(packed.identity_names),
        len(train.identity_names),
        len(train),
        len(val.identity_names) if val else 0,
        len(val) if val else 0,
    )
    return DatasetSplit(train, val, spec, skipped)
