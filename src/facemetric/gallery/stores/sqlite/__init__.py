"""The embedded store, named by a folder (a ``--gallery`` value without a scheme, or a :class:`~pathlib.Path`).

The folder holds ``gallery.db``, the SQLite store and the truth (:mod:`.store`, its tables in
:mod:`.database`), and ``index.faiss``, its FAISS index (:mod:`.faiss_index`), derived and brought up
to date from the store's change log. Nothing to run: right for a laptop, a door lock, one API server.
FAISS is imported only when a gallery's index is opened.
"""

from __future__ import annotations

from pathlib import Path

from facemetric.gallery.interface import EmbedderInfo, SearchIndex, Store
from facemetric.gallery.stores.registry import PLAIN_PATH, StoreBackend, register_store
from facemetric.gallery.stores.sqlite.database import DB_NAME


@register_store(PLAIN_PATH)
class SQLiteBackend(StoreBackend):
    """A gallery folder: ``gallery.db`` (SQLite) and ``index.faiss`` (FAISS)."""

    name = "sqlite"
    described = "a folder (SQLite)"

    def redact(self, target: str) -> str:
        return target  # a folder name is no secret, and no URL

    def folder(self, target: str) -> Path:
        return Path(target)

    def exists(self, target: str) -> bool:
        return (Path(target) / DB_NAME).is_file()

    def open(self, target: str) -> Store:
        from facemetric.gallery.stores.sqlite.store import SQLiteStore

        return SQLiteStore(Path(target) / DB_NAME)

    def create(self, target: str, embedder: EmbedderInfo, keep_faces: bool) -> Store:
        from facemetric.gallery.stores.sqlite.store import SQLiteStore

        return SQLiteStore.create(Path(target) / DB_NAME, embedder, keep_faces)

    def index(self, target: str, store: Store) -> SearchIndex:
        from facemetric.gallery.stores.sqlite.faiss_index import FaissIndex
        from facemetric.gallery.stores.sqlite.store import SQLiteStore

        if not isinstance(store, SQLiteStore):
            raise TypeError(f"a folder gallery needs a SQLiteStore, got {type(store).__name__}")
        return FaissIndex(store, Path(target))
