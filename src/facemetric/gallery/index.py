"""The FAISS index of a SQLite gallery folder, kept in step with its store.

The store is the truth; the index is derived from it. It holds every enrolled image's
embedding (inner product = cosine for unit vectors) under the image's row id, plus the mean
template of each identity (re-normalised). It is saved to ``index.faiss`` with the store
generation it reflects in ``index.json``; on open, an index file that is missing, unreadable,
or of another generation is rebuilt from the store, and :meth:`GalleryIndex.sync` rebuilds it
whenever the store has changed since (another process enrolling, a crash between the two).

Scoring: ``template="max"`` scores an identity by its best-matching image, ``"mean"`` by the
cosine to its mean template. For ``max``, the search depth ``top_k x (largest identity's image
count)`` guarantees the best ``top_k`` identities are among the neighbours found.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from facemetric.core.atomic import write_atomic
from facemetric.gallery.interface import TEMPLATES, Match, Store, UnknownIdentityError

__all__ = ["TEMPLATES", "GalleryIndex", "Match"]


class GalleryIndex:
    """Image and identity-template indexes of one store; thread-safe."""

    def __init__(self, store: Store, folder: str | Path | None = None) -> None:
        self.store = store
        self.folder = Path(folder) if folder is not None else None
        self._lock = threading.RLock()
        self.generation = -1
        self.rebuilds = 0
        if not self._load():
            self._rebuild()

    # ------------------------------------------------------------------ persistence

    def _paths(self) -> tuple[Path, Path] | None:
        return (self.folder / "index.faiss", self.folder / "index.json") if self.folder is not None else None

    def _load(self) -> bool:
        """Adopt the saved index when it reflects the store's current generation."""
        paths = self._paths()
        if paths is None or not paths[0].is_file() or not paths[1].is_file():
            return False
        try:
            saved = json.loads(paths[1].read_text())
            if saved.get("generation") != self.store.generation:
                return False
            images: Any = faiss.read_index(str(paths[0]))  # an IndexIDMap2 (faiss ships no type hints for it)
        except (OSError, ValueError, RuntimeError):
            return False
        names = saved.get("names")
        if not isinstance(names, list) or images.ntotal != len(names) or images.d != self.store.embedder.dim:
            return False
        ids = faiss.vector_to_array(images.id_map) if hasattr(images, "id_map") else np.arange(images.ntotal)
        vectors = images.index.reconstruct_n(0, images.ntotal) if images.ntotal else np.zeros((0, images.d), np.float32)
        self._install(saved["generation"], np.asarray(ids, np.int64), names, vectors)
        return True

    def _save(self) -> None:
        paths = self._paths()
        if paths is None:
            return
        faiss_path, json_path = paths
        # the JSON names the generation: replace the index first, so a crash between leaves a mismatch (rebuild)
        write_atomic(faiss_path, faiss.serialize_index(self._images).tobytes())
        write_atomic(json_path, json.dumps({"generation": self.generation, "names": self._names}))

    # ------------------------------------------------------------------ building

    def _install(self, generation: int, ids: np.ndarray, names: list[str], vectors: np.ndarray) -> None:
        dim = self.store.embedder.dim
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        images = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if len(ids):
            images.add_with_ids(vectors, ids)
        identities = sorted(set(names))
        position = {n: k for k, n in enumerate(identities)}
        owner = np.array([position[n] for n in names], dtype=np.int64)
        means = np.zeros((len(identities), dim), np.float32)
        np.add.at(means, owner, vectors)
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        templates = faiss.IndexFlatIP(dim)
        templates.add(means)
        with self._lock:
            self.generation, self._images, self._names, self._templates = generation, images, list(names), templates
            self._vectors, self._means = vectors, means  # for scoring one identity (verify)
            self._identities, self._owner, self._position = identities, owner, position
            self._by_id = dict(zip(ids.tolist(), names))
            self._max_images = int(np.bincount(owner).max()) if len(owner) else 0

    def _rebuild(self) -> None:
        generation, ids, names, vectors = self.store.snapshot()
        self._install(generation, ids, names, vectors)
        self.rebuilds += 1
        self._save()

    def sync(self) -> bool:
        """Rebuild from the store if it changed since this index was built; True when rebuilt."""
        with self._lock:
            if self.store.generation == self.generation:
                return False
            self._rebuild()
            return True

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._identities)

    @property
    def n_images(self) -> int:
        return int(self._images.ntotal)

    def search(self, probe: np.ndarray, top_k: int = 5, template: str = "max") -> list[Match]:
        """The ``top_k`` best identities for a unit-length ``probe``, best first (ties by name)."""
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        q = np.ascontiguousarray(np.asarray(probe, np.float32).reshape(1, -1))
        with self._lock:
            if not self._identities:
                return []
            if template == "mean":
                k = min(top_k, len(self._identities))
                scores, rows = self._templates.search(q, k)
                found = [Match(self._identities[r], float(s)) for s, r in zip(scores[0], rows[0]) if r >= 0]
            else:
                depth = min(self._images.ntotal, top_k * self._max_images)
                scores, ids = self._images.search(q, depth)
                best: dict[str, float] = {}
                for s, i in zip(scores[0], ids[0]):
                    if i >= 0:
                        name = self._by_id[int(i)]
                        best[name] = max(best.get(name, -np.inf), float(s))
                found = [Match(n, s) for n, s in best.items()]
        found.sort(key=lambda m: (-m.score, m.name))
        return found[:top_k]

    def score(self, probe: np.ndarray, name: str, template: str = "max") -> float:
        """The probe's score against one identity (verification)."""
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        q = np.asarray(probe, np.float32).reshape(-1)
        with self._lock:
            k = self._position.get(name)
            if k is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled; enrol them first (`facemetric gallery enroll`)")
            if template == "mean":
                return float(self._means[k] @ q)
            return float((self._vectors[self._owner == k] @ q).max())
