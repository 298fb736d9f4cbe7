"""What the embedders share: cutting faces as the model expects, and the batched embedding loop.

:class:`CropEmbedder` implements the cropping half of :class:`~facemetric.core.embedder.Embedder`
for any model whose input is a fixed-size crop described by an :class:`ImageSpec`: the crop of
the spec (a central fraction, no detection) or the face found and aligned by a detection
backend (``spec.align`` names it, or the embedder brings its own :class:`Aligner`). A subclass
only runs its network (:meth:`~facemetric.core.embedder.Embedder.embed_crops`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from facemetric.core.embedder import Embedder, FaceCrops
from facemetric.core.faces import Detection
from facemetric.core.spec import ImageSpec
from facemetric.data.align import Aligner, aligner_for
from facemetric.data.augment import to_tensor
from facemetric.data.cache import decode_manifest
from facemetric.data.images import ImageDecodeError, open_image, resize_crop
from facemetric.data.sources import Manifest

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def file_fingerprint(path: str | Path, extra: str = "") -> str:
    """First 16 hex digits of sha256(file bytes + ``extra``): the same weights give the same value."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    digest.update(extra.encode())
    return digest.hexdigest()[:16]


def embed_batches(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: Any,
    batch_size: int,
    flip: bool,
    progress: bool,
    normalization: Normalization | None,
    dim: int,
) -> np.ndarray:
    """The embedding loop of the network embedders: normalise a batch of uint8 crops, run ``forward``
    (and on the mirrored batch with ``flip``), L2-normalise, concatenate; (0, ``dim``) for no image."""
    mean, std = normalization or (None, None)
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="embed", disable=None if progress else True, leave=False):
        x = to_tensor(images[start : start + batch_size], mean, std)
        e = forward(x)
        if flip:
            e = e + forward(torch.flip(x, dims=[3]))
        out.append(torch.nn.functional.normalize(e.float(), dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, dim), dtype=np.float32)


class CropEmbedder(Embedder):
    """An embedder whose network takes the crops :attr:`spec` describes.

    Photos are cut by ``aligner`` when given, else by the detector ``spec.align`` names, else by
    the spec's central crop (a model trained on pre-cropped photos: no detection).
    """

    def __init__(self, spec: ImageSpec, aligner: Aligner | None = None) -> None:
        self.spec = spec
        self._aligner, self._aligner_built = aligner, aligner is not None

    @property
    def aligner(self) -> Aligner | None:
        """The detector that cuts photos: the one given, else the one ``spec.align`` names, built at the
        first photo (an embedder used on crops alone never loads a detector)."""
        if not self._aligner_built:
            self._aligner, self._aligner_built = aligner_for(self.spec), True
        return self._aligner

    @aligner.setter
    def aligner(self, value: Aligner | None) -> None:
        self._aligner, self._aligner_built = value, True

    def crop_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        if self.aligner is not None:
            return self.aligner(image)
        converted = image.convert("RGB" if self.spec.channels == 3 else "L")
        return resize_crop(converted, self.spec), Detection("crop", False, image_size=[image.width, image.height])

    def crop_files(self, paths: Sequence[str | Path], progress: bool = False, workers: int | None = None) -> FaceCrops:
        """Decode and cut every file: in threads for a fixed crop; through a detector in ``workers``
        processes (None: :attr:`crop_workers`, else automatic), each with its own copy of the aligner.

        A subclass that cuts photos its own way (it overrides :meth:`crop_photo`) gets its
        :meth:`crop_photo` called on each file, in this process.
        """
        files = [Path(p) for p in paths]
        if type(self).crop_photo is not CropEmbedder.crop_photo:
            return self._crop_each(files, progress)
        manifest = Manifest(files, [p.parent.name for p in files], Path("."), "files")
        workers = self.crop_workers if workers is None else workers
        packed = decode_manifest(manifest, self.spec, workers=workers, progress=progress, aligner=self.aligner)
        index = np.asarray(packed.source_index, np.int64)
        if packed.detections:
            detections = [Detection(**d) if d else Detection("crop", False) for d in packed.detections]
        else:
            detections = [Detection("crop", False) for _ in packed.paths]
        left_out = np.setdiff1d(np.arange(len(files)), index)  # in input order, as decode_manifest lists them
        failures = [(int(k), reason) for k, (_, reason) in zip(left_out, packed.bad)]
        return FaceCrops(packed.images, detections, index, failures)

    def _crop_each(self, files: list[Path], progress: bool) -> FaceCrops:
        """:meth:`crop_photo` on each file, one after the other; unreadable files go to ``failures``."""
        unreadable: list[tuple[int, str]] = []

        def photos() -> Iterator[tuple[int, Image.Image]]:
            for k, path in enumerate(
                tqdm(files, desc="crop faces", unit="img", disable=None if progress else True, leave=False)
            ):
                try:
                    yield k, open_image(path, self.spec.channels)
                except ImageDecodeError as exc:
                    unreadable.append((k, str(exc)))
                except Exception as exc:  # a decoder bug: this file's reason, as decode_manifest words it
                    unreadable.append((k, f"{type(exc).__name__}: {exc}"))

        cut = self.cut_photos(photos())
        cut.failures = sorted(cut.failures + unreadable)
        return cut
