"""From a data config to decoded, identity-disjoint train and validation sets (``load_dataset``)."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemetric.core.atomic import write_json
from facemetric.core.config import DataConfig
from facemetric.core.spec import ImageSpec
from facemetric.data.cache import PackedImages, load_packed
from facemetric.data.prepared import is_prepared, load_prepared, prepared_spec
from facemetric.data.sources import DatasetError, no_usable_image, scan_source
from facemetric.data.split import split_identities, split_images

log = logging.getLogger("facemetric")


@dataclass
class DatasetSplit:
    train: PackedImages
    val: PackedImages | None
    spec: ImageSpec
    skipped: list[tuple[str, str]]  # every input left out, with the reason
    # other images of the training people (closed-set classification), labels = training class indices
    dev: PackedImages | None = None


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


def source_spec(cfg: DataConfig) -> ImageSpec:
    """The spec of ``data.source``'s crops, known before any photo is decoded: a prepared cache's own
    (its size wins over ``data.image_size``), else the one the config describes."""
    if cfg.source and is_prepared(cfg.source):
        return prepared_spec(cfg.source)
    return image_spec(cfg)


def _load_source(
    source: str, cfg: DataConfig, progress: bool
) -> tuple[PackedImages, ImageSpec, str, list[tuple[str, str]]]:
    """One source decoded (or memory-mapped): images, their spec, a description of its layout, skips."""
    if is_prepared(source):
        packed, spec = load_prepared(source), prepared_spec(source)
        if [spec.height, spec.width] != list(cfg.image_size):
            log.warning(
                "data.image_size %s differs from the %dx%d crops in %s: the crops are used as they are "
                "(prepare again with --size to change them)",
                cfg.image_size,
                spec.height,
                spec.width,
                source,
            )
        if spec.channels != cfg.channels:
            raise DatasetError(f"{source} holds {spec.channels}-channel crops but data.channels is {cfg.channels}")
        return packed, spec, "prepared cache", list(packed.bad)
    manifest = scan_source(source, cfg.layout, cfg.flat_pattern)
    spec = image_spec(cfg)
    packed = load_packed(manifest, spec, cfg.cache_dir, progress=progress)
    return packed, spec, f"{manifest.layout} layout", [(str(p), r) for p, r in manifest.skipped] + list(packed.bad)


def concat_packed(parts: list[PackedImages], prefixes: list[str]) -> PackedImages:
    """Several image sets as one (in memory), labels re-numbered, each part's identity names prefixed."""
    labels, names, offset = [], [], 0
    for part, prefix in zip(parts, prefixes):
        labels.append(np.asarray(part.labels) + offset)
        names += [prefix + n for n in part.identity_names]
        offset += len(part.identity_names)
    detections = [d for p in parts for d in p.detections] if all(p.detections for p in parts) else []
    return PackedImages(
        np.concatenate([np.asarray(p.images) for p in parts]),
        np.concatenate(labels).astype(np.int64),
        [path for p in parts for path in p.paths],
        names,
        [b for p in parts for b in p.bad],
        detections,
    )


def _same_cut(other: ImageSpec, spec: ImageSpec, where: str) -> None:
    """Refuse a second source whose crops are not cut like ``data.source``'s."""
    keys = ("height", "width", "channels", "align", "crop")
    if any(getattr(other, k) != getattr(spec, k) for k in keys):
        raise DatasetError(
            f"{where} holds {other.height}x{other.width}x{other.channels} crops cut by {other.align!r}, "
            f"data.source {spec.height}x{spec.width}x{spec.channels} by {spec.align!r}; "
            "prepare both the same way (same --align and --size)"
        )


def as_classes(images: PackedImages, classes: list[str], where: str) -> PackedImages:
    """``images`` relabelled with the index of their identity among the training ``classes``.

    Images of people who are not training classes cannot be classified: they are left out, and
    the count is logged; none left is an error naming ``where``.
    """
    index = {name: k for k, name in enumerate(classes)}
    own = np.array([index.get(images.identity_names[k], -1) for k in images.labels], dtype=np.int64)
    keep = np.flatnonzero(own >= 0)
    if len(keep) == 0:
        raise DatasetError(
            f"{where}: none of its {len(images.identity_names)} identities is a training identity "
            f"(e.g. {images.identity_names[:3]} vs {classes[:3]}); it must hold other images of the training people, "
            "in folders named like theirs"
        )
    if len(keep) < len(own):
        strangers = sorted({images.identity_names[k] for k in images.labels[own < 0]})
        log.warning(
            "%s: %d images of %d people who are not training classes are left out of classification (e.g. %s)",
            where,
            len(own) - len(keep),
            len(strangers),
            ", ".join(strangers[:5]),
        )
    part = images.subset(keep)
    return dataclasses.replace(part, labels=own[keep], identity_names=list(classes))


def identity_groups(names: list[str], pattern: str, where: str) -> np.ndarray:
    """The group of each identity (``data.val_group``'s first capture in its name), as group numbers."""
    regex = re.compile(pattern)
    found = [regex.search(name) for name in names]
    missing = [name for name, match in zip(names, found) if match is None]
    if missing:
        raise DatasetError(
            f"{where}: data.val_group {pattern!r} does not match {len(missing)} identity name(s), e.g. "
            f"{missing[:3]}; it must find the group (first capture) in every identity's name"
        )
    keys = [match.group(1) for match in found if match is not None]
    return np.unique(keys, return_inverse=True)[1]


def load_dataset(cfg: DataConfig, progress: bool = True, out_dir: Path | None = None) -> DatasetSplit:
    """Scan, decode (via the cache) and split ``cfg.source``; bad inputs are reported, not fatal.

    ``cfg.extra_sources`` are split the same way (``val_identities``, ``split_seed``); their training
    people are added as more classes (named ``<source folder>/<identity>``), their held-out people are
    left out of training and of validation, which stays on ``source``'s held-out people.
    """
    if not cfg.source:
        raise DatasetError("no training data: set data.source (or pass --data PATH)")
    packed, spec, layout, skipped = _load_source(cfg.source, cfg, progress)
    if len(packed) == 0:
        raise DatasetError(no_usable_image(cfg.source, skipped))
    groups = identity_groups(packed.identity_names, cfg.val_group, cfg.source) if cfg.val_group else None
    train_idx, val_idx = split_identities(packed.labels, cfg.val_identities, cfg.split_seed, groups=groups)
    train = packed.subset(train_idx)
    val = packed.subset(val_idx) if len(val_idx) else None
    dev = None
    if cfg.val_images:
        kept, held = split_images(train.labels, cfg.val_images, cfg.split_seed)
        dev = train.subset(held) if len(held) else None
        train = train.subset(kept)
    extras: list[PackedImages] = []
    for source in cfg.extra_sources:
        more, more_spec, _, more_skipped = _load_source(source, cfg, progress)
        skipped += more_skipped
        _same_cut(more_spec, spec, f"data.extra_sources: {source}")
        if len(more) == 0:
            raise DatasetError("data.extra_sources: " + no_usable_image(source, more_skipped))
        more_groups = identity_groups(more.identity_names, cfg.val_group, source) if cfg.val_group else None
        more_train, _ = split_identities(more.labels, cfg.val_identities, cfg.split_seed, groups=more_groups)
        extras.append(more.subset(more_train))
    if extras:
        prefixes = [""] + [f"{Path(s).name}/" for s in cfg.extra_sources]
        train = concat_packed([train, *extras], prefixes)
    if dev is not None:
        dev = as_classes(dev, train.identity_names, "data.val_images")
    if cfg.dev_source:
        if dev is not None:
            raise DatasetError("data.dev_source and data.val_images both give classification images; set one")
        more, more_spec, _, more_skipped = _load_source(cfg.dev_source, cfg, progress)
        skipped += more_skipped
        _same_cut(more_spec, spec, f"data.dev_source: {cfg.dev_source}")
        dev = as_classes(more, train.identity_names, f"data.dev_source ({cfg.dev_source})")
    report_skipped(skipped, out_dir)  # every source's, in one list
    if dev is not None:
        log.info(
            "classification: %d images of %d training people held out (%s)",
            len(dev),
            len(np.unique(dev.labels)),
            "data.dev_source" if cfg.dev_source else "data.val_images",
        )
    log.info(
        "data: %s (%s) -> %d images of %d identities; train %d identities / %d images%s, "
        "validation %d identities / %d images",
        cfg.source,
        layout,
        len(packed),
        len(packed.identity_names),
        len(train.identity_names),
        len(train),
        f" (with {len(extras)} extra source(s))" if extras else "",
        len(val.identity_names) if val else 0,
        len(val) if val else 0,
    )
    return DatasetSplit(train, val, spec, skipped, dev)
