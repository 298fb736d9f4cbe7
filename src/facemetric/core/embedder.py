"""The one ``Embedder`` interface: photos (or crops cut as the model expects) in, unit-length embeddings out.

Every face model facemetric uses implements it: a facemetric checkpoint, its ONNX export and
the pretrained ``dlib-resnet`` (``facemetric.embedders.load_embedder`` opens any of them by
path or name). Evaluation, ``embed``, the gallery and the HTTP API take any embedder.

An embedder has two stages, so that each can run where it is cheapest:

* :meth:`Embedder.crop_photo` finds the face in a photo and cuts it the way the network was
  trained to see it (the crop of its :attr:`spec`, or a detector + landmarks), returning the
  crop and its :class:`~facemetric.core.faces.Detection` record; :meth:`Embedder.crop_files`
  does it for files, in bulk;
* :meth:`Embedder.embed_crops` runs the network on a batch of such crops.

:meth:`Embedder.embed_photos` and :meth:`Embedder.embed_files` chain the two. Photos without
a face are not errors of the batch: they are reported in ``failures`` with the reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection, NoFaceError
from facemetric.core.spec import ImageSpec


@dataclass
class FaceCrops:
    """Faces cut from a list of photos: one crop per photo where a face was found."""

    images: Any  # (n, H, W, C) uint8 array (or a lazy row view of one)
    detections: list[Detection]
    index: np.ndarray  # position in the input list of each crop
    failures: list[tuple[int, str]] = field(default_factory=list)  # (position, reason) of photos left out

    def __len__(self) -> int:
        return len(self.index)


@dataclass
class FaceBatch:
    """Embedded photos: one unit-length row per photo in which a face was found."""

    embeddings: np.ndarray  # (n, dim) float32
    detections: list[Detection]
    index: np.ndarray  # position in the input list of each row
    failures: list[tuple[int, str]] = field(default_factory=list)  # (position, reason) of photos left out
    crops: Any = None  # (n, H, W, C) uint8: what the network saw

    def __len__(self) -> int:
        return len(self.index)


class Embedder(ABC):
    """A face model: photos or crops in, unit-length ``dim``-d float32 embeddings out.

    Attributes:
        name: a short display name (``dlib-resnet``, ``best.pt``).
        reference: what ``load_embedder`` takes to open this model again (a pretrained name or an
            absolute path), stored by galleries.
        fingerprint: equal fingerprints mean equal embeddings for equal photos (weights and every
            setting that changes the vectors); a gallery refuses vectors of another fingerprint.
        dim: embedding size.
        spec: the crops :meth:`embed_crops` takes (size, channels, how they are cut, normalisation).
        crop_workers: the processes :meth:`crop_files` finds faces in when its call does not say
            (None: automatic, several for a large batch; 0 or 1: this process). Set it to pass a
            command's ``--workers`` to everything that cuts photos through this embedder.
        thread_safe: whether many threads may call it at once (a server's batching embedder); a gallery
            calls one that is not from one thread at a time.
    """

    name: str
    reference: str
    fingerprint: str
    dim: int
    spec: ImageSpec
    crop_workers: int | None = None
    thread_safe: bool = False

    @abstractmethod
    def crop_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        """The (H, W, C) uint8 crop this model embeds for ``image``, and how it was found;
        :class:`NoFaceError` when the photo holds no usable face."""

    @abstractmethod
    def crop_files(self, paths: Sequence[str | Path], progress: bool = False, workers: int | None = None) -> FaceCrops:
        """:meth:`crop_photo` for image files, in bulk (face detection in ``workers`` processes; None:
        :attr:`crop_workers`); unreadable files and photos without a face are reported in ``failures``."""

    @abstractmethod
    def embed_crops(self, crops: Any, batch_size: int = 256, flip: bool = False, progress: bool = False) -> np.ndarray:
        """(N, dim) unit-length float32 embeddings of (N, H, W, C) uint8 crops cut as :attr:`spec` says;
        ``flip`` adds the embedding of each mirrored crop (test-time augmentation) before normalising."""

    def cut_photos(self, photos: Iterable[tuple[int, Image.Image]]) -> FaceCrops:
        """:meth:`crop_photo` on each (position, photo); photos without a face go to ``failures``."""

        def cut(image: Image.Image) -> tuple[np.ndarray, Detection] | NoFaceError:
            try:
                return self.crop_photo(image)
            except NoFaceError as exc:
                return exc

        return self.gather_crops((k, cut(image)) for k, image in photos)

    def gather_crops(self, results: Iterable[tuple[int, tuple[np.ndarray, Detection] | NoFaceError]]) -> FaceCrops:
        """:class:`FaceCrops` of (position, :meth:`crop_photo`'s result or the :class:`NoFaceError` it raised)."""
        crops, detections, index, failures = [], [], [], []
        for k, result in results:
            if isinstance(result, NoFaceError):
                failures.append((k, str(result)))
                continue
            crops.append(result[0])
            detections.append(result[1])
            index.append(k)
        shape = (0, self.spec.height, self.spec.width, self.spec.channels)
        return FaceCrops(
            np.stack(crops) if crops else np.zeros(shape, np.uint8), detections, np.asarray(index, np.int64), failures
        )

    def embed_photos(self, images: Sequence[Image.Image], batch_size: int = 256, flip: bool = False) -> FaceBatch:
        """Find, cut and embed the face of each photo; photos without a face go to ``failures``."""
        cut = self.cut_photos(enumerate(images))
        embeddings = self.embed_crops(cut.images, batch_size, flip) if len(cut) else np.zeros((0, self.dim), np.float32)
        return FaceBatch(embeddings, cut.detections, cut.index, cut.failures, cut.images)

    def embed_photo(self, image: Image.Image) -> tuple[np.ndarray, Detection]:
        """One photo's embedding and detection; :class:`NoFaceError` when it holds no face."""
        batch = self.embed_photos([image])
        if batch.failures:
            raise NoFaceError(batch.failures[0][1])
        return batch.embeddings[0], batch.detections[0]

    def embed_files(
        self, paths: Sequence[str | Path], batch_size: int = 256, flip: bool = False, progress: bool = False
    ) -> FaceBatch:
        """:meth:`crop_files` then :meth:`embed_crops`: image files in, embeddings out."""
        crops = self.crop_files(paths, progress)
        embeddings = self.embed_crops(crops.images, batch_size, flip, progress)
        return FaceBatch(embeddings, crops.detections, crops.index, crops.failures, crops.images)
