"""The FAISS index of a SQLite gallery folder, kept in step with its store without rebuilding.

The store is the truth; the index is derived from it. It holds every enrolled image's embedding
(inner product = cosine for unit vectors) under the image's row id, plus the mean template of each
identity (re-normalised). :meth:`FaissIndex.sync` catches up with the store by reading its change
log (:meth:`~facemetric.gallery.stores.sqlite.store.SQLiteStore.changes_since`): the rows added since, the ids
deleted. An enrolment therefore costs the same in a gallery of a thousand people or a million; only
when the log no longer reaches back (or on the first open) is the index rebuilt from the store.

Saved to ``index.faiss`` (one file, written atomically: a small JSON header naming the generation it
reflects, the owner of each image, then FAISS's own bytes) as a checkpoint: on open, the saved index
is loaded and brought forward by the log; a file that is missing, unreadable or newer than the store
is rebuilt from it. Saving the whole index is O(N), so it happens when the changes since the last save
reach :data:`SAVE_FRACTION` of the gallery (at least :data:`SAVE_MIN`), and on :meth:`close`: an
enrolment costs O(1) amortised; the log is then dropped up to :data:`LOG_KEEP` generations before the
saved one (another process's index further behind than that rebuilds once).

Exact (``flat``, the default) or approximate (``hnsw``, for galleries past about 100,000 people), as the
store's :class:`~facemetric.gallery.stores.sqlite.image_vectors.IndexSettings` say; an index saved with other
settings is rebuilt, and a change of settings by any process reaches the others on their next sync.

Scoring: ``template="max"`` scores an identity by its best-matching image, ``"mean"`` by the
cosine to its mean template. For ``max``, the search depth ``top_k x (largest identity's image
count)`` guarantees the best ``top_k`` identities are among the neighbours found.
"""

from __future__ import annotations

import json
import struct
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facemetric.core.atomic import write_atomic
from facemetric.core.matching import TEMPLATES
from facemetric.gallery.interface import GalleryError, Match, UnknownIdentityError
from facemetric.gallery.stores.sqlite.database import INDEX_FILE
from facemetric.gallery.stores.sqlite.image_vectors import (
    ImageVectors,
    IndexSettings,
    new_vectors,
    vectors_from_state,
)

if TYPE_CHECKING:
    from facemetric.gallery.stores.sqlite.store import SQLiteStore

FORMAT = "facemetric-index/3"
SAVE_FRACTION = 0.1  # changes since the last save, as a fraction of the images, that trigger a save
SAVE_MIN = 1000
LOG_KEEP = 10_000  # generations of the change log kept behind a saved index, for other processes' indexes


class _Templates:
    """Mean templates of the identities: per-identity sums and counts, and a matrix of the normalised
    means whose rows are updated in place (a removed identity's row takes the last row)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.names: list[str] = []
        self.row: dict[str, int] = {}
        self.sums = np.zeros((0, dim), np.float64)
        self.counts = np.zeros(0, np.int64)
        self.means = np.zeros((0, dim), np.float32)

    def __len__(self) -> int:
        return len(self.names)

    def _grow(self, needed: int) -> None:
        size = max(16, 2 * len(self.counts), needed)
        for attr in ("sums", "counts", "means"):
            old = getattr(self, attr)
            new = np.zeros((size, *old.shape[1:]), old.dtype)
            new[: len(old)] = old
            setattr(self, attr, new)

    def add(self, names: list[str], vectors: np.ndarray) -> None:
        for name in dict.fromkeys(names):
            if name not in self.row:
                self.row[name] = len(self.names)
                self.names.append(name)
        if len(self.names) > len(self.counts):
            self._grow(len(self.names))
        rows = np.fromiter((self.row[n] for n in names), np.int64, len(names))
        np.add.at(self.sums, rows, vectors)
        np.add.at(self.counts, rows, 1)
        self._refresh(np.unique(rows))

    def subtract(self, name: str, vector: np.ndarray) -> None:
        k = self.row[name]
        self.counts[k] -= 1
        if self.counts[k] > 0:
            self.sums[k] -= vector
            self._refresh(k)
            return
        last = len(self.names) - 1  # the last row moves into the hole
        moved = self.names[last]
        for array in (self.sums, self.counts, self.means):
            array[k] = array[last]
            array[last] = 0
        self.names[k], self.row[moved] = moved, k
        self.names.pop()
        del self.row[name]

    def _refresh(self, rows: np.ndarray | int) -> None:
        rows = np.atleast_1d(rows)
        sums = self.sums[rows]
        self.means[rows] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)

    def scores(self, probe: np.ndarray) -> np.ndarray:
        return self.means[: len(self.names)] @ probe


class FaissIndex:
    """Image and identity-template indexes of one SQLite store; thread-safe."""

    def __init__(self, store: SQLiteStore, folder: str | Path | None = None) -> None:
        self.store = store
        self.folder = Path(folder) if folder is not None else None
        self._lock = threading.RLock()
        self.generation = -1
        self.rebuilds = 0  # full rebuilds from the store (first open, a log that no longer reaches back)
        self.saves = 0
        self._saved_images = 0
        self._changed_since_save = 0
        if not self._load():
            self._rebuild()
            self._save()
        self.sync()

    # ------------------------------------------------------------------ persistence

    @property
    def path(self) -> Path | None:
        return self.folder / INDEX_FILE if self.folder is not None else None

    def _load(self) -> bool:
        """Adopt the saved index when it is readable and not ahead of the store (the log brings it forward)."""
        path = self.path
        if path is None or not path.is_file():
            return False
        try:
            data = path.read_bytes()
            (size,) = struct.unpack_from("<Q", data, 0)
            header = json.loads(data[8 : 8 + size])
            if header.get("format") != FORMAT or not 0 <= header["generation"] <= self.store.generation:
                return False
            settings = self.store.index_settings
            if not settings.builds_like(IndexSettings.from_json(header["settings"])):
                return False  # built another way: rebuilt as the gallery now says
            images = vectors_from_state(settings, header["state"], np.frombuffer(data, np.uint8, offset=8 + size))
            names, owner = header["names"], np.asarray(header["owner"], np.int64)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, struct.error, GalleryError):
            return False
        if images is None or len(images) != len(owner) or images.dim != self.store.embedder.dim:
            return False
        self._adopt(header["generation"], images, [names[k] for k in owner])
        self._saved_images = len(owner)
        return True

    def _save(self) -> None:
        """Write the index and the generation it reflects as one file (atomic), then drop the log up to it."""
        path = self.path
        if path is None:
            return
        with self._lock:
            ids = self._images.ids()
            names = sorted(set(self._by_id.values()))
            position = {n: k for k, n in enumerate(names)}
            owner = [position[self._by_id[int(i)]] for i in ids]
            state, blob = self._images.to_state()
            header = json.dumps(
                {
                    "format": FORMAT,
                    "generation": self.generation,
                    "settings": self._images.settings.to_json(),
                    "state": state,
                    "names": names,
                    "owner": owner,
                }
            )
            generation = self.generation
            self._changed_since_save, self._saved_images = 0, len(ids)
        raw = header.encode()
        write_atomic(path, struct.pack("<Q", len(raw)) + raw + blob)
        self.store.forget_changes(generation - LOG_KEEP)  # other processes' indexes a little behind still catch up
        self.saves += 1

    def close(self) -> None:
        """Save the index if it changed since it was last saved (the next open then reads less log)."""
        with self._lock:
            if self._changed_since_save:
                self._save()

    # ------------------------------------------------------------------ building

    def _install(self, generation: int, ids: np.ndarray, names: list[str], vectors: np.ndarray) -> None:
        with self._lock:
            self._adopt(generation, new_vectors(self.store.embedder.dim, self.store.index_settings), [])
            self._add(ids, names, vectors)

    def _adopt(self, generation: int, images: ImageVectors, names: list[str]) -> None:
        """Take ``images`` (holding the images of ``names``, in its ``ids()`` order) as the index."""
        with self._lock:
            self.generation, self._images, self._templates = generation, images, _Templates(images.dim)
            self._by_id: dict[int, str] = {}
            self._members: dict[str, set[int]] = {}
            self._sizes: Counter[int] = Counter()  # identities per image count: the largest, without a scan
            self._largest = 0
            if names:
                self._account(images.ids(), names, images.vectors())

    def _add(self, ids: np.ndarray, names: list[str], vectors: np.ndarray) -> None:
        if not len(ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._images.add(np.asarray(ids, np.int64), vectors)
        self._account(ids, names, vectors)

    def _account(self, ids: np.ndarray, names: list[str], vectors: np.ndarray) -> None:
        """The templates and memberships of images now in the index."""
        self._templates.add(names, vectors)
        for i, name in zip(ids.tolist(), names):
            self._by_id[i] = name
            members = self._members.setdefault(name, set())
            self._resize(len(members), len(members) + 1)
            members.add(i)

    def _remove(self, ids: np.ndarray) -> None:
        present = [i for i in ids.tolist() if i in self._by_id]
        if not present:
            return
        for i in present:
            name = self._by_id.pop(i)
            self._templates.subtract(name, self._images.vector(i))
            members = self._members[name]
            self._resize(len(members), len(members) - 1)
            members.discard(i)
            if not members:
                del self._members[name]
        self._images.remove(present)

    def _resize(self, old: int, new: int) -> None:
        """One identity went from ``old`` to ``new`` images: keep the count of each size and the largest."""
        if old:
            self._sizes[old] -= 1
            if not self._sizes[old]:
                del self._sizes[old]
        if new:
            self._sizes[new] += 1
        if new > self._largest:
            self._largest = new
        while self._largest and not self._sizes.get(self._largest):
            self._largest -= 1

    def _rebuild(self) -> None:
        generation, ids, names, vectors = self.store.snapshot()
        self._install(generation, ids, names, vectors)
        self.rebuilds += 1

    def sync(self) -> bool:
        """Catch up with the store's changes since this index's generation (by any process); True when
        something changed. Reads only the change log and the rows it names, or rebuilds when it cannot."""
        with self._lock:
            if self.store.generation == self.generation:
                return False
            changes = self.store.changes_since(self.generation)
            settings = self.store.index_settings
            if changes is None or not settings.builds_like(self._images.settings):
                self._rebuild()
                self._save()
                return True
            self._images.settings = settings  # ef_search may have changed: it needs no rebuild
            self._remove(changes.removed)
            self._remove(changes.ids)  # an id deleted and reused since: its old row goes first
            self._add(changes.ids, changes.names, changes.vectors)
            self.generation = changes.generation
            self._changed_since_save += len(changes.removed) + len(changes.ids)
            if self.path is not None and self._changed_since_save >= max(SAVE_MIN, SAVE_FRACTION * self._saved_images):
                self._save()
            return True

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._templates)

    @property
    def settings(self) -> IndexSettings:
        """How this index was built and searches."""
        return self._images.settings

    @property
    def ef_search(self) -> int | None:
        """HNSW's least candidate list a search walks; None for exact search."""
        return self.settings.ef_search if self.settings.kind == "hnsw" else None

    def exact_twin(self) -> _ExactTwin | None:
        """None for a flat index (exact already); for HNSW, exact search of the same vectors."""
        return _ExactTwin(self) if self.settings.kind == "hnsw" else None

    @property
    def n_images(self) -> int:
        return len(self._images)

    def search(self, probe: np.ndarray, top_k: int = 5, template: str = "max", exact: bool = False) -> list[Match]:
        """The ``top_k`` best identities for a unit-length ``probe``, best first (ties by name); ``exact``
        scores every image even in an HNSW index."""
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        q = np.ascontiguousarray(np.asarray(probe, np.float32).reshape(1, -1))
        with self._lock:
            if not len(self._templates):
                return []
            if template == "mean":
                scores = self._templates.scores(q[0])
                k = min(top_k, len(scores))
                rows = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
                found = [Match(self._templates.names[r], float(scores[r])) for r in rows]
            else:
                depth = min(len(self._images), top_k * self._largest)
                scores, ids = self._images.search(q, depth, exact)
                best: dict[str, float] = {}
                for s, i in zip(scores, ids):
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
            members = self._members.get(name)
            if not members:
                raise UnknownIdentityError(f"{name!r} is not enrolled; enrol them first (`facemetric gallery enroll`)")
            if template == "mean":
                return float(self._templates.means[self._templates.row[name]] @ q)
            vectors = np.stack([self._images.vector(i) for i in members])
            return float((vectors @ q).max())


class _ExactTwin:
    """Exact search of an HNSW index's own vectors (``gallery recall``'s reference)."""

    def __init__(self, index: FaissIndex) -> None:
        self.index = index

    def sync(self) -> bool:
        return self.index.sync()

    def __len__(self) -> int:
        return len(self.index)

    @property
    def n_images(self) -> int:
        return self.index.n_images

    def search(self, probe: np.ndarray, top_k: int = 5, template: str = "max") -> list[Match]:
        return self.index.search(probe, top_k, template, exact=True)

    def score(self, probe: np.ndarray, name: str, template: str = "max") -> float:
        return self.index.score(probe, name, template)

    def close(self) -> None:
        """Nothing of its own: the index it reads is closed by its owner."""

    def exact_twin(self) -> None:
        return None
