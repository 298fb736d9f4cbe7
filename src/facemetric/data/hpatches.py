"""HPatches (Balntas et al., CVPR 2017) in its release layout, read into a patch cache for descriptor learning.

The release holds one folder per image sequence: ``i_*`` (illumination changes) and ``v_*``
(viewpoint changes). Each folder has ``ref.png`` and the target images' patches at three levels of
extra geometric noise, ``e1..e5`` (easy), ``h1..h5`` (hard) and ``t1..t5`` (tough): every file is a
vertical stack of 65x65 grey patches, the k-th patch of every file showing the same 3-D point.

:func:`read_hpatches` reads the sequences (all, or a split) into a :class:`PatchSet`: the patches
resized to ``size`` x ``size`` grey, labelled by (sequence, patch index), with the image each came
from. :func:`write_patch_cache` stores it in the format of a ``facemetric prepare`` output, so it is a
``data.source`` for training (memory-mapped) like any prepared cache; its manifest's ``source``
column says ``<sequence>/<image>.png#<patch>``.

Splits: ``full``, ``illum`` (``i_*``) and ``view`` (``v_*``) are defined by the names; the
benchmark's train/test splits ``a``, ``b``, ``c`` are lists of sequence names in its
``splits.json`` (hpatches-benchmark), which :func:`read_splits` reads when you have it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facemetric.core.atomic import atomic_path, write_csv, write_json
from facemetric.data.sources import DatasetError

if TYPE_CHECKING:
    from facemetric.data.prepare import PrepareResult

PATCH = 65  # the release's patch side
IMAGES = ("ref", *(f"{level}{k}" for level in "eht" for k in range(1, 6)))
LEVELS = {"e": "easy", "h": "hard", "t": "tough"}


@dataclass
class PatchSet:
    """Patches (N, size, size, 1) uint8 with, per patch, its label (one per sequence x patch index),
    sequence name, patch index and image name (``ref``, ``e1`` ... ``t5``)."""

    images: np.ndarray
    labels: np.ndarray
    sequences: np.ndarray
    patch_index: np.ndarray
    image_names: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _stack(path: Path, size: int) -> np.ndarray:
    """The (n, size, size) patches of one release image (a vertical stack of 65x65 patches)."""
    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as an image ({exc})") from None
    h, w = grey.shape
    if w != PATCH or h % PATCH or h == 0:
        raise DatasetError(
            f"{path}: {w}x{h} pixels is not a vertical stack of {PATCH}x{PATCH} patches (HPatches release layout)"
        )
    patches = grey.reshape(h // PATCH, PATCH, PATCH)
    if size == PATCH:
        return patches.copy()
    return np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.Resampling.BILINEAR)) for p in patches])


def read_sequence(folder: str | Path, size: int = 32) -> dict[str, np.ndarray]:
    """Every image of one sequence folder: name -> (n, size, size) patches, n the same for all."""
    folder = Path(folder)
    missing = [name for name in IMAGES if not (folder / f"{name}.png").is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: missing {', '.join(m + '.png' for m in missing)}; a sequence holds ref.png, e1..e5, h1..h5 "
            "and t1..t5.png"
        )
    stacks = {name: _stack(folder / f"{name}.png", size) for name in IMAGES}
    counts = {name: len(s) for name, s in stacks.items()}
    if len(set(counts.values())) != 1:
        raise DatasetError(
            f"{folder}: its images hold different numbers of patches ({counts}); each must hold the same points"
        )
    return stacks


def read_splits(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """hpatches-benchmark's ``splits.json``: split name -> {"train": [...], "test": [...]} of sequence names."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read as the HPatches splits JSON ({exc})") from None
    splits = {}
    for name, value in raw.items():
        if not isinstance(value, dict) or not all(isinstance(value.get(k, []), list) for k in ("train", "test")):
            raise DatasetError(f"{path}: split {name!r} must be an object with train and test lists of sequences")
        splits[name] = {k: [str(s) for s in value.get(k, [])] for k in ("train", "test")}
    return splits


def sequence_names(
    root: str | Path, split: str = "full", part: str = "test", splits_json: str | Path | None = None
) -> list[str]:
    """The sequence folders of ``root`` in ``split``: ``full``, ``illum``, ``view``, or a split of
    ``splits_json`` (its ``part``: ``train`` or ``test``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder (expected the HPatches release: one folder per sequence)")
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[:2] in ("i_", "v_"))
    if not present:
        raise DatasetError(f"{root}: no sequence folder (i_* or v_*) found")
    if split in ("full", "illum", "view"):
        prefix = {"full": ("i_", "v_"), "illum": ("i_",), "view": ("v_",)}[split]
        return [s for s in present if s.startswith(prefix)]
    if splits_json is None:
        raise DatasetError(f"split {split!r}: give hpatches-benchmark's splits.json, or use full, illum or view")
    if part not in ("train", "test"):
        raise DatasetError(f"part must be train or test, got {part!r}")
    splits = read_splits(splits_json)
    if split not in splits:
        raise DatasetError(f"split {split!r} is not in {splits_json} (it has {', '.join(sorted(splits))})")
    wanted = splits[split][part]
    absent = sorted(set(wanted) - set(present))
    if absent:
        raise DatasetError(f"{root}: split {split} {part} names {len(absent)} sequence(s) not there, e.g. {absent[:3]}")
    return sorted(wanted)


def splits_file(root: str | Path, split: str, splits_json: str | Path | None) -> str | Path | None:
    """``splits_json``, or for a split of one (a, b, c) the release's own ``root/splits.json`` when present."""
    if splits_json is None and split not in ("full", "illum", "view") and (Path(root) / "splits.json").is_file():
        return Path(root) / "splits.json"
    return splits_json


def read_hpatches(root: str | Path, sequences: list[str] | None = None, size: int = 32) -> PatchSet:
    """The patches of ``sequences`` (default: every sequence folder of ``root``), ``size`` x ``size`` grey."""
    names = sequences if sequences is not None else sequence_names(root)
    images, labels, seqs, index, image_names = [], [], [], [], []
    offset = 0
    for name in names:
        stacks = read_sequence(Path(root) / name, size)
        n = len(stacks["ref"])
        for image, patches in stacks.items():
            images.append(patches)
            labels.append(offset + np.arange(n))
            seqs += [name] * n
            index.append(np.arange(n))
            image_names += [image] * n
        offset += n
    if not images:
        raise DatasetError(f"{root}: no sequence to read")
    return PatchSet(
        np.concatenate(images)[..., None],
        np.concatenate(labels).astype(np.int64),
        np.array(seqs),
        np.concatenate(index).astype(np.int64),
        np.array(image_names),
    )


def write_patch_cache(
    patches: PatchSet,
    out: str | Path,
    source: str = "hpatches",
    fingerprint: str | None = None,
    summary: dict | None = None,
) -> Path:
    """``patches`` as a prepared cache (``images.npy``, ``manifest.csv``, ``meta.json`` ...), a
    ``data.source``; identities are ``<sequence>/<patch index>``. ``summary`` (if any) goes to
    ``summary.json``; ``meta.json`` is written last (a cache without it is unfinished)."""
    from facemetric.data.prepare import FORMAT, FORMAT_VERSION

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "images.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, patches.images)  # a file object: np.save would add ".npy" to the temporary name
    identities = [f"{s}/{k}" for s, k in zip(patches.sequences.tolist(), patches.patch_index.tolist())]
    rows = (
        [row, int(label), identity, f"{seq}/{image}.png#{k}"]
        for row, (label, identity, seq, image, k) in enumerate(
            zip(patches.labels, identities, patches.sequences, patches.image_names, patches.patch_index)
        )
    )
    write_csv(out / "manifest.csv", ["index", "label", "identity", "source"], rows)
    write_csv(out / "skipped.csv", ["source", "identity", "kind", "reason"], [])
    pixels = patches.images.astype(np.float64) / 255.0
    size = int(patches.images.shape[1])
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "fingerprint": fingerprint or f"hpatches:{source}:{len(patches)}",
        "options": {"size": size, "channels": 1, "align": "none", "source": source},
        "images": len(patches),
        "identities": int(len(np.unique(patches.labels))),
        "mean": [round(float(pixels.mean()), 5)],
        "std": [round(max(float(pixels.std()), 1e-3), 5)],
    }
    if summary is not None:
        write_json(out / "summary.json", summary)
    write_json(out / "meta.json", meta)
    return out


def prepare_patches(
    root: str | Path,
    out: str | Path,
    split: str = "full",
    part: str = "train",
    splits_json: str | Path | None = None,
    size: int = 32,
    overwrite: bool = False,
) -> PrepareResult:
    """``facemetric prepare --patches``: the sequences of ``split`` / ``part`` of the release at ``root``
    packed into the cache ``out`` (a ``data.source``); returns what :func:`~facemetric.data.prepare.prepare`
    returns (the summary, or the stored one and ``up_to_date``). ``splits_json`` defaults to
    ``root/splits.json`` when the split is not one of full, illum, view."""
    from facemetric.data.prepare import PrepareResult, check_output

    root, out = Path(root), Path(out)
    names = sequence_names(root, split, part, splits_file(root, split, splits_json))
    source = f"{root.name}:{split}" + (f":{part}" if split not in ("full", "illum", "view") else "")
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    fingerprint = f"hpatches:{source}:{size}:{len(names)}:{digest}"
    stored = check_output(out, fingerprint, overwrite)  # refuses an OUT holding something else, unless overwrite
    if stored is not None:
        return PrepareResult(out, stored, up_to_date=True)
    patches = read_hpatches(root, names, size)
    summary = {
        "source": str(root),
        "split": split,
        "part": part,
        "sequences": len(names),
        "illumination": sum(n.startswith("i_") for n in names),
        "viewpoint": sum(n.startswith("v_") for n in names),
        "points": int(len(np.unique(patches.labels))),
        "patches": len(patches),
        "size": size,
        "out": str(out),
    }
    write_patch_cache(patches, out, source, fingerprint, summary)
    return PrepareResult(out, summary)
