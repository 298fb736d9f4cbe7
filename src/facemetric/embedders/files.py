"""A dataset embedded into one ``.npz`` file (``facemetric embed``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemetric.core.atomic import write_npz
from facemetric.core.embedder import Embedder
from facemetric.data.sources import scan_source


@dataclass
class EmbeddedSet:
    """Embeddings of a dataset's usable images, with their paths and identities, and what was left out."""

    embeddings: np.ndarray  # (N, D) float32, unit rows
    paths: list[str]
    identities: list[str]
    skipped: list[tuple[str, str]]  # (path, reason)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1]) if self.embeddings.ndim == 2 else 0

    def save(self, path: str | Path) -> Path:
        """``embeddings``, ``paths`` and ``identities`` arrays in an ``.npz`` file, written atomically."""
        return write_npz(
            path,
            {"embeddings": self.embeddings, "paths": np.array(self.paths), "identities": np.array(self.identities)},
        )


def embed_source(
    embedder: Embedder,
    source: str | Path,
    layout: str = "auto",
    flip: bool = False,
    batch_size: int = 256,
    progress: bool = True,
) -> EmbeddedSet:
    """Every image of a dataset (folder per person, CSV, flat files) through ``embedder``; files that
    cannot be used (unreadable, no face) are left out and listed with the reason."""
    manifest = scan_source(source, layout)
    batch = embedder.embed_files(manifest.paths, batch_size, flip, progress)
    kept = batch.index.tolist()
    skipped = [(str(p), r) for p, r in manifest.skipped] + [(str(manifest.paths[k]), r) for k, r in batch.failures]
    return EmbeddedSet(
        batch.embeddings, [str(manifest.paths[k]) for k in kept], [manifest.identities[k] for k in kept], skipped
    )
