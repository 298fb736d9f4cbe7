"""An HPatches release described by a model or a baseline and evaluated on the three tasks (``eval --patches``).

:func:`patch_model` turns what ``--model`` names into a :class:`PatchDescriber`: a baseline
(``raw``, ``sift``, ``rootsift``), or anything :func:`facemetric.embedders.load_embedder` opens (a
checkpoint, a run folder's ``best.pt`` / ``last.pt``, an ONNX export) whose input is a square patch of
at most 65 px: the patches are resized to its side, and a 3-channel model gets the grey patch in
every channel. :func:`evaluate_release` reads the sequences of a split, describes them and runs
:func:`~facemetric.eval.patches.tasks.evaluate_patch_tasks`.

The patches are kept at the cache's 32 px; a describer that wants another side reads the release again
one sequence at a time, so the 65 px patches of SIFT are never all in memory together. The flat-patch
test of retrieval reads the reference images at 65 px, as the benchmark's generator does.

``tasks`` names a folder of hpatches-benchmark's task lists (its ``tasks/``: see
:mod:`facemetric.eval.patches.task_files`): the split's lists are evaluated instead of drawn ones, and for
split ``full`` the illum and view columns use the ``illum`` and ``view`` lists when the folder has them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facemetric.data.hpatches import IMAGES, PATCH, PatchSet, read_hpatches, sequence_names, splits_file
from facemetric.eval.patches.baselines import DESCRIBERS, PatchDescriber, patch_describer
from facemetric.eval.patches.pairs import PatchIndex, PatchProtocolError
from facemetric.eval.patches.result import PatchEvalMeta, PatchTaskResults
from facemetric.eval.patches.task_files import has_task_files, read_task_lists
from facemetric.eval.patches.tasks import Lists, evaluate_patch_tasks, flat_points

log = logging.getLogger("facemetric")

PATCH_SPLITS = ("full", "illum", "view", "a", "b", "c")
KEEP_SIZE = 32  # the side the patches are kept at (the prepared cache's)
TSNE_POINTS = 30  # points (x 16 patches) whose descriptors the report maps


@dataclass
class PatchEvaluation:
    """The results, what produced them (``meta``: model, describer, patch_size, data), the t-SNE sample."""

    results: PatchTaskResults
    meta: PatchEvalMeta
    sample: dict[str, np.ndarray]


def _checkpoint_of(reference: str) -> str:
    """A run folder's ``best.pt`` (else ``last.pt``); any other reference as it is."""
    folder = Path(reference).expanduser()
    if not folder.is_dir():
        return reference
    for name in ("best.pt", "last.pt"):
        if (folder / name).is_file():
            return str(folder / name)
    raise PatchProtocolError(f"{reference}: a folder without best.pt or last.pt; give a training run or a model file")


def patch_model(reference: str, batch_size: int = 256) -> PatchDescriber:
    """The describer ``reference`` names: a baseline name, or a model file / run folder taking square patches."""
    if reference in DESCRIBERS:
        return patch_describer(reference)
    from facemetric.embedders import EmbedderNotFoundError, load_embedder

    try:
        embedder = load_embedder(_checkpoint_of(reference))
    except EmbedderNotFoundError:
        raise PatchProtocolError(
            f"{reference}: no such checkpoint, ONNX file or run folder, and not a patch baseline "
            f"({', '.join(DESCRIBERS)})"
        ) from None
    spec = embedder.spec
    if spec.height != spec.width or spec.height > PATCH:
        raise PatchProtocolError(
            f"{reference}: the model takes {spec.height}x{spec.width} images, not a patch size: HPatches patches "
            f"are {PATCH}x{PATCH} and are given to a model at its side, square and at most {PATCH} px (a patch "
            "model such as l2net / hardnet at 32)"
        )
    channels = spec.channels

    def describe(images: Any) -> np.ndarray:
        x = np.asarray(images)
        return embedder.embed_crops(np.repeat(x, 3, axis=3) if channels == 3 else x, batch_size)

    text = f"{embedder.name}: {embedder.dim}-d, {spec.height}x{spec.width}" + (
        ", grey patch in all 3 channels" if channels == 3 else " grey"
    )
    return PatchDescriber(embedder.name, spec.height, describe, embedder.dim, text)


def _describe(root: Path, names: list[str], kept: PatchSet, describer: PatchDescriber) -> np.ndarray:
    """Descriptors of ``kept``'s rows: from its own patches when at the describer's side, else read again
    one sequence at a time at that side."""
    if describer.size == kept.images.shape[1]:
        return np.asarray(describer(kept.images), np.float32)
    out, start = [], 0
    for name in names:
        part = read_hpatches(root, [name], describer.size)
        end = start + len(part)
        if not np.array_equal(part.patch_index, kept.patch_index[start:end]) or not np.array_equal(
            part.image_names, kept.image_names[start:end]
        ):
            raise PatchProtocolError(f"{root / name}: its patches changed while being read; read the release again")
        out.append(np.asarray(describer(part.images), np.float32))
        start = end
    return np.concatenate(out)


def reference_std(root: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Each sequence's reference patches' grey-level standard deviation at the release's 65 px."""
    from PIL import Image

    out = {}
    for name in names:
        path = root / name / "ref.png"
        try:
            with Image.open(path) as img:
                grey = np.asarray(img.convert("L"), np.float64)
        except (OSError, ValueError) as exc:
            raise PatchProtocolError(f"{path}: cannot be read as an image ({exc})") from None
        out[name] = grey.reshape(-1, PATCH * PATCH).std(1)
    return out


def release_lists(tasks: str | Path, split: str, index: PatchIndex) -> Lists:
    """The columns' lists from an hpatches-benchmark tasks folder: ``split``'s for all; for ``full``, ``illum``
    and ``view``'s when present; a split of one kind fills its column too."""
    folder = Path(tasks)
    if not folder.is_dir():
        raise PatchProtocolError(f"{folder}: no such folder (give hpatches-benchmark's tasks/ folder of list files)")
    main = read_task_lists(folder, split, index)
    lists: Lists = {"all": main, "illum": None, "view": None}
    for kind in ("illum", "view"):
        if split == kind:
            lists[kind] = main
        elif split == "full" and has_task_files(folder, kind):
            lists[kind] = read_task_lists(folder, kind, index)
    return lists


def _tsne_sample(desc: np.ndarray, patches: PatchSet, seed: int) -> dict[str, np.ndarray]:
    """Descriptors of up to :data:`TSNE_POINTS` seeded points (not flat) in all their images."""
    index = PatchIndex.of(patches)
    usable = np.flatnonzero(~flat_points(patches, index, 10.0))
    if len(usable) == 0:
        usable = np.arange(len(index))
    chosen = np.sort(np.random.default_rng(seed).choice(usable, min(TSNE_POINTS, len(usable)), replace=False))
    rows = index.rows[chosen].reshape(-1)
    names = [f"{index.names[index.sequence[p]]}/{index.patch_index[p]}" for p in chosen]
    return {
        "descriptors": desc[rows].astype(np.float32),
        "points": np.repeat(np.array(names), len(IMAGES)),
        "images": np.tile(np.array(IMAGES), len(chosen)),
    }


def evaluate_release(
    root: str | Path,
    model: str,
    *,
    split: str = "full",
    part: str = "test",
    splits_json: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 256,
    tasks: str | Path | None = None,
    **protocol: Any,
) -> PatchEvaluation:
    """Describe the sequences of ``split`` (its ``part`` for a, b, c) of the release at ``root`` with ``model``
    and evaluate the three tasks, on the lists of ``tasks`` (a benchmark tasks folder) or drawn ones;
    ``protocol`` goes to :func:`evaluate_patch_tasks` (ap, balanced, distractor_image, pairs ...)."""
    root = Path(root)
    if split not in PATCH_SPLITS:
        raise PatchProtocolError(f"split must be one of {', '.join(PATCH_SPLITS)}, got {split!r}")
    splits_json = splits_file(root, split, splits_json)
    names = sequence_names(root, split, part, splits_json)
    describer = patch_model(model, batch_size)
    patches = read_hpatches(root, names, KEEP_SIZE)
    log.info("describing %d patches of %d sequences with %s", len(patches), len(names), describer.text)
    desc = _describe(root, names, patches, describer)
    index = PatchIndex.of(patches)
    std = reference_std(root, names)
    flat = np.concatenate([std[name] for name in index.names]) <= protocol.get("min_std", 10.0)
    lists = None if tasks is None else release_lists(tasks, split, index)
    results = evaluate_patch_tasks(
        desc,
        patches,
        seed=seed,
        flat=flat,
        lists=lists,
        lists_source="drawn" if tasks is None else str(tasks),
        progress=lambda task: log.info("patch %s", task),
        **protocol,
    )
    by_name = split in ("full", "illum", "view")
    meta = PatchEvalMeta(
        model=model,
        describer=describer.text,
        patch_size=describer.size,
        data={
            "description": f"{root}: split {split}" + ("" if by_name else f" ({part})") + f", {len(names)} sequences",
            "release": str(root),
            "split": split,
            "part": None if by_name else part,
            "splits_json": None if by_name else str(splits_json),
            "sequences": names,
        },
    )
    return PatchEvaluation(results, meta, _tsne_sample(desc, patches, seed))
