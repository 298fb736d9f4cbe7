"""Where a gallery lives, named by one string: a folder (SQLite + FAISS) or a PostgreSQL URL.

* ``team``, ``/srv/galleries/team``, a :class:`~pathlib.Path`: a folder holding ``gallery.db`` (the
  SQLite store) and ``index.faiss`` (its derived FAISS index): the embedded default;
* ``postgresql://user[:password]@host[:port]/database`` (or ``postgres://``, any libpq URL, plus
  ``?search=exact`` for exact rather than HNSW search): PostgreSQL + pgvector, for several servers on
  one gallery;
* any other ``scheme://...`` is refused: taking ``http://x`` (or a mistyped ``postgresq://``) for a
  folder name would quietly create a local gallery in a folder called ``http:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from facemetric.gallery.interface import EmbedderInfo, GalleryError, SearchIndex, Store

DB_NAME = "gallery.db"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class GalleryLocation:
    """A gallery's place: ``kind`` is the store, ``target`` the folder or the URL as given (with any
    password: print the location itself, whose text hides it)."""

    kind: Literal["sqlite", "postgresql"]
    target: str

    @classmethod
    def parse(cls, value: str | Path | GalleryLocation) -> GalleryLocation:
        """The location a ``--gallery`` value names; :class:`GalleryError` for a URL of another scheme."""
        if isinstance(value, GalleryLocation):
            return value
        if isinstance(value, Path):
            return cls("sqlite", str(value))
        match = _SCHEME.match(value)
        if match is None:
            return cls("sqlite", value)
        if match.group(1).lower() in POSTGRES_SCHEMES:
            return cls("postgresql", value)
        from facemetric.gallery.postgres import redact

        raise GalleryError(
            f"{redact(value)}: a gallery is a folder (SQLite) or a postgresql://user@host/database URL "
            f"(PostgreSQL + pgvector), not a {match.group(1)}:// URL; give one of those"
        )

    def __str__(self) -> str:
        if self.kind == "sqlite":
            return self.target
        from facemetric.gallery.postgres import redact

        return redact(self.target)

    def __repr__(self) -> str:  # in tracebacks and logs too, never the password
        return f"GalleryLocation({self.kind!r}, {str(self)!r})"

    @property
    def folder(self) -> Path | None:
        """The gallery folder (None for PostgreSQL)."""
        return Path(self.target) if self.kind == "sqlite" else None

    def exists(self) -> bool:
        """Whether a gallery is there already."""
        if self.folder is not None:
            return (self.folder / DB_NAME).is_file()
        from facemetric.gallery.postgres import PostgresStore

        return PostgresStore.exists(self.target)

    def open(self) -> Store:
        """The store of the gallery there (:class:`GalleryError` when there is none)."""
        if self.folder is not None:
            from facemetric.gallery.store import SQLiteStore

            return SQLiteStore(self.folder / DB_NAME)
        from facemetric.gallery.postgres import PostgresStore

        return PostgresStore(self.target)

    def create(self, embedder: EmbedderInfo, keep_faces: bool = False) -> Store:
        """A new, empty gallery there for ``embedder`` (keeping each enrolled face, for re-embedding with
        another model, when ``keep_faces``); refuses to replace one."""
        if self.folder is not None:
            from facemetric.gallery.store import SQLiteStore

            return SQLiteStore.create(self.folder / DB_NAME, embedder, keep_faces)
        from facemetric.gallery.postgres import PostgresStore

        return PostgresStore.create(self.target, embedder, keep_faces)

    def index(self, store: Store) -> SearchIndex:
        """The search index over ``store``: the FAISS files of the folder, or queries to PostgreSQL."""
        if self.folder is not None:
            from facemetric.gallery.index import GalleryIndex
            from facemetric.gallery.store import SQLiteStore

            if not isinstance(store, SQLiteStore):
                raise TypeError(f"a folder gallery needs a SQLiteStore, got {type(store).__name__}")
            return GalleryIndex(store, self.folder)
        from facemetric.gallery.pgvector_index import PgvectorIndex
        from facemetric.gallery.postgres import PostgresStore

        if not isinstance(store, PostgresStore):
            raise TypeError(f"a PostgreSQL gallery needs a PostgresStore, got {type(store).__name__}")
        return PgvectorIndex(store)
