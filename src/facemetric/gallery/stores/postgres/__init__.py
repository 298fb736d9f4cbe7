"""The shared store, named by a ``postgresql://`` (or ``postgres://``) URL: PostgreSQL + pgvector.

The gallery is the schema ``facemetric`` of that database (:mod:`.database`), kept by
:class:`~.store.PostgresStore` and searched by :class:`~.pgvector_index.PgvectorIndex`, which asks the
database on every request: any number of API servers share one gallery. The URL is any libpq URL, plus
facemetric's own search parameters (:mod:`.url`). psycopg is imported only when a gallery is opened:
``pip install 'facemetric[postgres]'``.
"""

from __future__ import annotations

from facemetric.gallery.interface import EmbedderInfo, SearchIndex, Store
from facemetric.gallery.stores.registry import StoreBackend, register_store


@register_store("postgresql", "postgres")
class PostgresBackend(StoreBackend):
    """A gallery in a PostgreSQL database with pgvector."""

    name = "postgresql"
    described = "a postgresql://user@host/database URL (PostgreSQL + pgvector)"

    def exists(self, target: str) -> bool:
        from facemetric.gallery.stores.postgres.store import PostgresStore

        return PostgresStore.exists(target)

    def open(self, target: str) -> Store:
        from facemetric.gallery.stores.postgres.store import PostgresStore

        return PostgresStore(target)

    def create(self, target: str, embedder: EmbedderInfo, keep_faces: bool) -> Store:
        from facemetric.gallery.stores.postgres.store import PostgresStore

        return PostgresStore.create(target, embedder, keep_faces)

    def index(self, target: str, store: Store) -> SearchIndex:
        from facemetric.gallery.stores.postgres.pgvector_index import PgvectorIndex
        from facemetric.gallery.stores.postgres.store import PostgresStore

        if not isinstance(store, PostgresStore):
            raise TypeError(f"a PostgreSQL gallery needs a PostgresStore, got {type(store).__name__}")
        return PgvectorIndex(store)
