"""A teacher's embeddings of every training photo, computed once and cached (distillation).

The teacher cuts each photo its own way from the original file (a prepared cache's ``source``
column), so a student trained on 112x112 ArcFace-template crops can learn from dlib's network,
which reads 150x150 dlib chips of the same photos. Each photo is embedded as it is and, with
``mirror``, mirrored (the student's flipped view of it). The table is kept in
``core.paths.cache_dir()/teacher/``, keyed by the teacher's fingerprint and the photos (path, size,
modification time), so a second run, or a resumed one, does not pay the teacher again.

The online teacher (``distill.online``) instead embeds each augmented batch as the student sees it:
:func:`teacher_pixels` turns a normalised batch back into the teacher's uint8 crops.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from facemetric.core.atomic import atomic_path
from facemetric.core.embedder import Embedder
from facemetric.core.errors import ConfigError
from facemetric.core.paths import cache_dir
from facemetric.core.spec import ImageSpec
from facemetric.data.cache import RowView

Normalization = tuple[tuple[float, ...], tuple[float, ...]]

log = logging.getLogger("facemetric")

CHUNK = 1024  # photos cut and embedded at a time: bounds the memory of the teacher's crops
TABLE_VERSION = 1


def _key(teacher: Embedder, paths: list[str], mirror: bool) -> str:
    h = hashlib.sha256(f"v{TABLE_VERSION}|{teacher.fingerprint}|mirror={mirror}".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"|{os.path.abspath(p)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def teacher_table(
    teacher: Embedder, paths: list[str], mirror: bool = True, workers: int | None = None, progress: bool = True
) -> np.ndarray:
    """(N, 1 or 2, dim) float32: the teacher's unit embedding of each photo (view 0) and of its mirror
    image (view 1, with ``mirror``); NaN rows where the teacher finds no face."""
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ConfigError(
            f"distill.teacher embeds the original photos, and {len(missing)} are not found from {os.getcwd()}, "
            f"e.g. {missing[0]} (a prepared cache names them as prepare was given them: run from the folder "
            "prepare ran in, or prepare again with an absolute path)"
        )
    file = cache_dir() / "teacher" / f"{_key(teacher, paths, mirror)}.npy"
    if file.exists():
        try:
            table = np.load(file)
            if table.shape == (len(paths), 1 + mirror, teacher.dim):
                log.info("distill: teacher embeddings of %d photos from %s", len(paths), file)
                return table
        except (OSError, ValueError):
            pass
        log.warning("distill: %s is damaged; computing the teacher's embeddings again", file)
    table = np.full((len(paths), 1 + mirror, teacher.dim), np.nan, dtype=np.float32)
    failed = 0
    log.info(
        "distill: %s embeds %d photos%s (once; cached in %s)",
        teacher.name,
        len(paths),
        " and mirrors" * mirror,
        file.parent,
    )
    bar = tqdm(total=len(paths), desc=f"teacher ({teacher.name})", unit="photo", disable=None if progress else True)
    for start in range(0, len(paths), CHUNK):
        part = paths[start : start + CHUNK]
        crops = teacher.crop_files(part, workers=workers)
        bar.update(len(part))
        failed += len(crops.failures)
        if not len(crops):
            continue
        rows = start + crops.index
        images = np.asarray(crops.images)
        table[rows, 0] = teacher.embed_crops(images)
        if mirror:
            table[rows, 1] = teacher.embed_crops(np.ascontiguousarray(images[:, :, ::-1]))
    bar.close()
    if failed:
        log.warning(
            "distill: the teacher found no face in %d of %d photos; they train without a teacher target",
            failed,
            len(paths),
        )
    file.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(file) as tmp, open(tmp, "wb") as f:
        np.save(f, table)
    return table


def center_table(table: np.ndarray) -> np.ndarray:
    """The table with its mean embedding (over every photo and view it holds) subtracted, rows re-normalised.

    A teacher whose embeddings share a large common component (dlib's: mean vector of norm 0.92) puts
    everyone in a narrow cone; regressing onto it, a student learns mostly that common direction.
    Removing it keeps what tells people apart; NaN rows (no face) stay NaN.
    """
    valid = np.isfinite(table).all(axis=-1)
    mean = table[valid].mean(axis=0)
    out = table - mean
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    return out.astype(np.float32)


def teacher_pixels(images: torch.Tensor, normalization: Normalization, spec: ImageSpec) -> np.ndarray:
    """(N, H, W, C) uint8 crops for a teacher that reads ``spec`` from a normalised (N, C, h, w) training
    batch: the student's view of each photo, augmentation included, resized (bilinear) to the teacher's
    input; grey batches are repeated to 3 channels, colour ones averaged for a 1-channel teacher."""
    mean = torch.tensor(normalization[0], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(normalization[1], dtype=torch.float32).view(1, -1, 1, 1)
    x = (images.detach().float().cpu() * std + mean) * 255.0
    if x.shape[1] != spec.channels:
        x = x.expand(-1, spec.channels, -1, -1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
    size = (spec.height, spec.width)
    if tuple(x.shape[-2:]) != size:
        shrink = x.shape[-2] > size[0] or x.shape[-1] > size[1]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def crops_for_teacher(crops: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """(N, H, W, C) uint8 crops resized (bilinear) to what a teacher reading ``spec`` takes."""
    pixels = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
    channels = pixels.shape[1]
    return teacher_pixels(pixels, ((0.0,) * channels, (1.0,) * channels), spec)


def teacher_mean(teacher: Embedder, images: np.ndarray | RowView, sample: int = 2048, seed: int = 0) -> np.ndarray:
    """The teacher's mean unit embedding over (a sample of) the training crops ``images`` ((N, H, W, C)
    uint8, cut the teacher's way): what :func:`center_table` removes, for the online teacher."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(images))[:sample])
    return teacher.embed_crops(crops_for_teacher(images[rows], teacher.spec)).mean(axis=0)
