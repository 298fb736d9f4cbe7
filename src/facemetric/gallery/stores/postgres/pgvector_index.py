"""Identify and verify against a PostgreSQL gallery by querying it: no index in the process at all.

Why no in-process index (no FAISS copy refreshed by a generation check, no LISTEN/NOTIFY): several API
servers share one gallery, and each must see another's enrolment or deletion on its very next
request. Asking the database every time gives exactly that, with nothing to rebuild (an in-process
copy is O(N) to reload after every change anywhere) and no memory per server growing with the
gallery; pgvector's HNSW indexes keep each query sub-linear, for the price of one round trip
(about a millisecond on a local network). :meth:`PgvectorIndex.sync` therefore has nothing to do.

Scores are cosine similarities, ``1 - (a <=> b)`` with pgvector's cosine distance, as the FAISS
index's inner products of unit vectors:

* ``template="max"``: an identity's best-matching image. The HNSW search fetches the nearest
  ``top_k x (largest identity's image count)`` images, enough to hold the best ``top_k`` identities
  (as :mod:`facemetric.gallery.stores.sqlite.faiss_index` does), with ``hnsw.ef_search`` at least that
  depth (and at least the URL's ``?ef_search=``, default 400: see
  :data:`~facemetric.gallery.stores.postgres.url.EF_SEARCH_DEFAULT`)
  and, on pgvector 0.8+, iterative scans for depths beyond 1,000;
* ``template="mean"``: the cosine to the mean of an identity's embeddings (the ``template`` column).

Exact search: with ``?search=exact`` in the gallery URL, and whenever the depth covers the whole
gallery anyway (small galleries, calibration), a scan scores every image instead of the HNSW index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from facemetric.core.matching import TEMPLATES
from facemetric.gallery.interface import Match, UnknownIdentityError
from facemetric.gallery.stores.postgres.database import SCHEMA, one, vector_text
from facemetric.gallery.stores.postgres.url import EF_SEARCH_DEFAULT, EF_SEARCH_RANGE

if TYPE_CHECKING:
    from facemetric.gallery.stores.postgres.store import PostgresStore

_EXACT_MAX = f"""
    SELECT i.name, 1 - min(m.embedding <=> %(q)s::vector) AS score
    FROM {SCHEMA}.images m JOIN {SCHEMA}.identities i ON i.id = m.identity_id
    GROUP BY i.name ORDER BY score DESC, i.name COLLATE "C" LIMIT %(k)s"""
_HNSW_MAX = f"""
    SELECT i.name, 1 - min(s.distance) AS score
    FROM (SELECT identity_id, embedding <=> %(q)s::vector AS distance FROM {SCHEMA}.images
          ORDER BY embedding <=> %(q)s::vector LIMIT %(depth)s) s
    JOIN {SCHEMA}.identities i ON i.id = s.identity_id
    GROUP BY i.name ORDER BY score DESC, i.name COLLATE "C" LIMIT %(k)s"""
_EXACT_MEAN = f"""
    SELECT name, 1 - (template <=> %(q)s::vector) AS score FROM {SCHEMA}.identities
    ORDER BY score DESC, name COLLATE "C" LIMIT %(k)s"""
_HNSW_MEAN = f"""
    SELECT name, 1 - (template <=> %(q)s::vector) AS score FROM {SCHEMA}.identities
    ORDER BY template <=> %(q)s::vector LIMIT %(k)s"""


class PgvectorIndex:
    """The :class:`~facemetric.gallery.interface.SearchIndex` of a :class:`PostgresStore`: every call
    is answered by the database as it is now."""

    def __init__(self, store: PostgresStore, exact: bool | None = None, ef_search: int | None = None) -> None:
        self.store = store
        self.exact = store.search.exact if exact is None else exact
        self.ef_search = ef_search or store.search.ef_search or EF_SEARCH_DEFAULT
        self.iterative = store.pgvector >= (0, 8, 0)  # hnsw.iterative_scan: deeper than ef_search
        self.rebuilds = 0  # never: there is nothing to rebuild

    def sync(self) -> bool:
        """Nothing to catch up with: every search reads the database."""
        return False

    def close(self) -> None:
        """Nothing to save: the database holds everything."""

    def exact_twin(self) -> PgvectorIndex | None:
        """The same store searched by scans (None when this index scans already: ``?search=exact``)."""
        return None if self.exact else PgvectorIndex(self.store, exact=True)

    def __len__(self) -> int:
        return self.store.counts()[0]

    @property
    def n_images(self) -> int:
        return self.store.counts()[1]

    @property
    def generation(self) -> int:
        return self.store.generation

    def search(self, probe: np.ndarray, top_k: int = 5, template: str = "max") -> list[Match]:
        """The ``top_k`` best identities for a unit-length ``probe``, best first (ties by name)."""
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        params: dict[str, Any] = {"q": vector_text(np.asarray(probe, np.float32).reshape(-1)), "k": int(top_k)}
        with self.store.reading() as db:
            identities, images, largest = one(  # one round trip (the largest identity: an index-only lookup)
                db, f"SELECT identities, images, (SELECT max(images) FROM {SCHEMA}.identities) FROM {SCHEMA}.gallery"
            )
            if not identities:
                return []
            if template == "mean":
                exact = self.exact or top_k >= identities
                depth = int(top_k)
            else:
                depth = params["depth"] = int(top_k) * int(largest)
                exact = self.exact or depth >= images or (depth > EF_SEARCH_RANGE[1] and not self.iterative)
            if not exact:
                ef = min(max(depth, self.ef_search), EF_SEARCH_RANGE[1])
                db.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                # PostgreSQL's planner prices a long HNSW candidate list above a sequential scan and then scans
                # every row (measured: 0.41 s, a full scan, instead of 0.05 s at 100,000 x 512-d): HNSW was asked for
                db.execute("SELECT set_config('enable_seqscan', 'off', true)")
                if self.iterative and depth > ef:
                    db.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")
            query = {
                ("max", True): _EXACT_MAX,
                ("max", False): _HNSW_MAX,
                ("mean", True): _EXACT_MEAN,
                ("mean", False): _HNSW_MEAN,
            }[template, exact]
            rows = db.execute(query, params).fetchall()
        found = [Match(name, float(score)) for name, score in rows]
        found.sort(key=lambda m: (-m.score, m.name))
        return found[:top_k]

    def score(self, probe: np.ndarray, name: str, template: str = "max") -> float:
        """The probe's score against one identity (verification), exact: only their rows are read."""
        if template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
        q = vector_text(np.asarray(probe, np.float32).reshape(-1))
        if template == "mean":
            query = f"SELECT 1 - (template <=> %s::vector) FROM {SCHEMA}.identities WHERE name = %s"
        else:
            query = (
                f"SELECT 1 - min(m.embedding <=> %s::vector) FROM {SCHEMA}.images m "
                f"JOIN {SCHEMA}.identities i ON i.id = m.identity_id WHERE i.name = %s"
            )
        with self.store.reading() as db:
            row = db.execute(query, (q, name)).fetchone()
        if row is None or row[0] is None:
            raise UnknownIdentityError(f"{name!r} is not enrolled; enrol them first (`facemetric gallery enroll`)")
        return float(row[0])
