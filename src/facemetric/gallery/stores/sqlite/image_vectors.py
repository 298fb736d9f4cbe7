"""The image embeddings of a SQLite gallery's FAISS index, searched exactly (flat) or by an HNSW graph.

A folder gallery's index is exact by default (``flat``: every search scores every image; 79 ms at a
million 128-d people on 2 cores, BENCHMARKS.md). Past about 100,000 people a gallery can choose ``hnsw``
(``facemetric gallery init --index hnsw``, or ``reindex`` later): FAISS's HNSW graph over the same inner
products, sub-linear per search and approximate; ``facemetric gallery recall`` measures how often it finds
what exact search finds. The settings (:class:`IndexSettings`) are the gallery's, kept in its store.

HNSW cannot delete a node, so a deleted image becomes a tombstone: its node stays in the graph (other
nodes route through it), searches skip it (a FAISS id selector), and when tombstones pass
:data:`COMPACT_FRACTION` of the graph it is rebuilt from the live vectors. FAISS ids of the graph are
positions; the gallery's image ids are mapped to them here, so an image id deleted and reused later is a
new node, never confused with its tombstone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from facemetric.gallery.interface import GalleryError

INDEX_KINDS = ("flat", "hnsw")
# the HNSW defaults: pgvector's measured ones for the same embeddings (m 32 / ef_construction 128: recall@1
# 1.00 / 0.99 at ef_search 100 for 100,000 face-like people, 128-d / 512-d; a search's candidate list at
# least 400), BENCHMARKS.md; FAISS builds the same graph
M_DEFAULT, EF_CONSTRUCTION_DEFAULT, EF_SEARCH_DEFAULT = 32, 128, 400
M_RANGE, EF_CONSTRUCTION_RANGE, EF_SEARCH_RANGE = (2, 100), (4, 1000), (1, 10_000)
COMPACT_FRACTION = 0.2  # tombstones, as a share of the graph's nodes, that make it rebuild from the live ones


@dataclass(frozen=True)
class IndexSettings:
    """How a folder gallery searches: ``kind`` ``flat`` (exact) or ``hnsw`` (approximate), and the HNSW build
    (``m`` links per node, ``ef_construction`` the build's candidate list) and search (``ef_search``)."""

    kind: str = "flat"
    m: int = M_DEFAULT
    ef_construction: int = EF_CONSTRUCTION_DEFAULT
    ef_search: int = EF_SEARCH_DEFAULT

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise GalleryError(f"index {self.kind!r} is not an index kind; use one of {', '.join(INDEX_KINDS)}")
        for key, value, (low, high) in (
            ("m", self.m, M_RANGE),
            ("ef_construction", self.ef_construction, EF_CONSTRUCTION_RANGE),
            ("ef_search", self.ef_search, EF_SEARCH_RANGE),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise GalleryError(f"HNSW {key} must be a whole number from {low} to {high}, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> IndexSettings:
        return cls(**json.loads(text))

    def builds_like(self, other: IndexSettings) -> bool:
        """Whether an index built with ``other`` is one built with these (``ef_search`` is per search)."""
        return (self.kind, self.m, self.ef_construction) == (other.kind, other.m, other.ef_construction)


def _numpy(vectors: Any) -> np.ndarray:
    """float32 numpy of what FAISS returned: with ``faiss.contrib.torch_utils`` imported anywhere in the
    process (pytorch-metric-learning does), ``reconstruct`` returns torch tensors."""
    return np.asarray(vectors, dtype=np.float32)


def _search(index: Any, q: np.ndarray, k: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` with search parameters: ``faiss.contrib.torch_utils`` (imported by
    pytorch-metric-learning, for one) replaces ``search`` with one that takes none, and keeps FAISS's
    own as ``search_numpy``."""
    return getattr(index, "search_numpy", index.search)(q, k, params=params)


class FlatVectors:
    """Every image scored on every search: exact, and O(N) per search."""

    def __init__(self, dim: int, settings: IndexSettings, index: Any = None) -> None:
        self.settings = settings
        self.index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return np.asarray(faiss.vector_to_array(self.index.id_map), np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.index.add_with_ids(vectors, np.asarray(ids, np.int64))

    def remove(self, ids: list[int]) -> None:
        self.index.remove_ids(np.asarray(ids, np.int64))  # O(N) memmove: deletions are rare

    def vector(self, image_id: int) -> np.ndarray:
        return _numpy(self.index.reconstruct(image_id))

    def vectors(self) -> np.ndarray:
        n = len(self)
        return _numpy(self.index.index.reconstruct_n(0, n)) if n else np.zeros((0, self.dim), np.float32)

    def search(self, q: np.ndarray, depth: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.index.search(q, depth)
        return scores[0], ids[0]

    def to_state(self) -> tuple[dict[str, Any], bytes]:
        return {}, faiss.serialize_index(self.index).tobytes()  # the id map is inside

    @classmethod
    def from_state(cls, settings: IndexSettings, state: dict[str, Any], blob: np.ndarray) -> FlatVectors | None:
        index: Any = faiss.deserialize_index(blob)
        if not isinstance(index, faiss.IndexIDMap2) or not isinstance(
            faiss.downcast_index(index.index), faiss.IndexFlatIP
        ):
            return None
        return cls(index.d, settings, index)


class HnswVectors:
    """An HNSW graph over the images (inner product), with tombstones for deleted ones (module docstring)."""

    def __init__(self, dim: int, settings: IndexSettings, graph: Any = None, nodes: Any = None, dead: Any = ()) -> None:
        self.settings = settings
        if graph is None:
            graph = faiss.IndexHNSWFlat(dim, settings.m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = settings.ef_construction
        self.graph: Any = graph
        self.nodes = np.asarray(nodes if nodes is not None else [], np.int64)  # node -> image id
        self.node_of = {int(i): k for k, i in enumerate(self.nodes.tolist())}
        self.dead = {int(k) for k in dead}
        for k in self.dead:
            self.node_of.pop(int(self.nodes[k]), None)
        self._selector: Any = None  # skips the tombstones; rebuilt when they change

    @property
    def dim(self) -> int:
        return int(self.graph.d)

    def __len__(self) -> int:
        return len(self.node_of)

    def ids(self) -> np.ndarray:
        return np.fromiter(self.node_of, np.int64, len(self.node_of))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        start = int(self.graph.ntotal)
        self.graph.add(vectors)
        self.nodes = np.concatenate([self.nodes, np.asarray(ids, np.int64)])
        for k, i in enumerate(np.asarray(ids).tolist()):
            self.node_of[int(i)] = start + k

    def remove(self, ids: list[int]) -> None:
        for i in ids:
            self.dead.add(self.node_of.pop(int(i)))
        self._selector = None
        if len(self.dead) > COMPACT_FRACTION * max(1, int(self.graph.ntotal)):
            self._compact()

    def _compact(self) -> None:
        """Rebuild the graph from the live nodes: the tombstones are gone."""
        live = np.array(sorted(self.node_of.values()), np.int64)
        vectors = _numpy(self.graph.reconstruct_batch(live)) if len(live) else np.zeros((0, self.dim), np.float32)
        ids = self.nodes[live]
        fresh = HnswVectors(self.dim, self.settings)
        if len(live):
            fresh.add(ids, vectors)
        self.graph, self.nodes, self.node_of, self.dead = fresh.graph, fresh.nodes, fresh.node_of, set()
        self._selector = None

    def vector(self, image_id: int) -> np.ndarray:
        return _numpy(self.graph.reconstruct(self.node_of[int(image_id)]))

    def vectors(self) -> np.ndarray:
        nodes = np.fromiter(self.node_of.values(), np.int64, len(self.node_of))
        return _numpy(self.graph.reconstruct_batch(nodes)) if len(nodes) else np.zeros((0, self.dim), np.float32)

    def _params(self, hnsw: bool) -> Any:
        params: Any = getattr(faiss, "SearchParametersHNSW" if hnsw else "SearchParameters")()  # not in its stubs
        if self.dead:
            if self._selector is None:
                batch = faiss.IDSelectorBatch(np.fromiter(self.dead, np.int64, len(self.dead)))
                self._selector = (batch, faiss.IDSelectorNot(batch))  # the batch must outlive the Not
            params.sel = self._selector[1]
        return params

    def search(self, q: np.ndarray, depth: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scores, image ids) of the ``depth`` nearest live images; ``exact`` scores every node instead of
        walking the graph (the recall check's reference), with a candidate list at least ``depth`` long."""
        params = self._params(hnsw=not exact)
        if exact:
            scores, nodes = _search(faiss.downcast_index(self.graph.storage), q, depth, params)
        else:
            params.efSearch = max(self.settings.ef_search, depth)
            scores, nodes = _search(self.graph, q, depth, params)
        nodes = nodes[0]
        ids = np.where(nodes >= 0, self.nodes[np.maximum(nodes, 0)] if len(self.nodes) else -1, -1)
        return scores[0], ids

    def to_state(self) -> tuple[dict[str, Any], bytes]:
        state = {"nodes": self.nodes.tolist(), "dead": sorted(self.dead)}
        return state, faiss.serialize_index(self.graph).tobytes()

    @classmethod
    def from_state(cls, settings: IndexSettings, state: dict[str, Any], blob: np.ndarray) -> HnswVectors | None:
        graph: Any = faiss.deserialize_index(blob)
        if not isinstance(graph, faiss.IndexHNSWFlat) or graph.ntotal != len(state["nodes"]):
            return None
        hnsw: Any = graph.hnsw  # faiss's stubs lack nb_neighbors
        built = (hnsw.nb_neighbors(1), hnsw.efConstruction, graph.metric_type)
        if built != (settings.m, settings.ef_construction, faiss.METRIC_INNER_PRODUCT):
            return None
        return cls(graph.d, settings, graph, state["nodes"], state["dead"])


ImageVectors = FlatVectors | HnswVectors


def new_vectors(dim: int, settings: IndexSettings) -> ImageVectors:
    """An empty index of the kind ``settings`` names."""
    return HnswVectors(dim, settings) if settings.kind == "hnsw" else FlatVectors(dim, settings)


def vectors_from_state(settings: IndexSettings, state: dict[str, Any], blob: np.ndarray) -> ImageVectors | None:
    """The saved index, or None when it is not one built with ``settings``."""
    kind = HnswVectors if settings.kind == "hnsw" else FlatVectors
    return kind.from_state(settings, state, blob)
