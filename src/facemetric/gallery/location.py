"""Where a gallery lives, named by one string: the store registered for its URL scheme decides.

* ``team``, ``/srv/galleries/team``, a :class:`~pathlib.Path`: a folder holding ``gallery.db`` (the
  SQLite store) and ``index.faiss`` (its derived FAISS index): the embedded default;
* ``postgresql://user[:password]@host[:port]/database`` (or ``postgres://``, any libpq URL, plus
  ``?search=exact`` for exact rather than HNSW search): PostgreSQL + pgvector, for several servers on
  one gallery;
* a scheme another store registered (:mod:`facemetric.gallery.stores`): that store;
* any other ``scheme://...`` is refused: taking ``http://x`` (or a mistyped ``postgresq://``) for a
  folder name would quietly create a local gallery in a folder called ``http:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from facemetric.gallery.interface import EmbedderInfo, GalleryError, SearchIndex, Store
from facemetric.gallery.stores import PLAIN_PATH, STORES, StoreBackend, backend_named, backends, redact_url

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class GalleryLocation:
    """A gallery's place: ``kind`` names its store (``sqlite``, ``postgresql``), ``target`` is the folder or
    the URL as given (with any password: print the location itself, whose text hides it)."""

    kind: str
    target: str

    @classmethod
    def parse(cls, value: str | Path | GalleryLocation) -> GalleryLocation:
        """The location a ``--gallery`` value names; :class:`GalleryError` for a URL of a scheme no store has."""
        if isinstance(value, GalleryLocation):
            return value
        if isinstance(value, Path):
            return cls(STORES.get(PLAIN_PATH).name, str(value))
        match = _SCHEME.match(value)
        scheme = PLAIN_PATH if match is None else match.group(1).lower()
        if scheme not in STORES:
            kinds = " or ".join(b.described for b in backends())
            named = f"a {match.group(1)}:// URL" if match else "a plain path"
            raise GalleryError(f"{redact_url(value)}: a gallery is {kinds}, not {named}; give one of those")
        return cls(STORES.get(scheme).name, value)

    @property
    def backend(self) -> StoreBackend:
        """The store kind of this location."""
        return backend_named(self.kind)

    def __str__(self) -> str:
        return self.backend.redact(self.target)

    def __repr__(self) -> str:  # in tracebacks and logs too, never the password
        return f"GalleryLocation({self.kind!r}, {str(self)!r})"

    @property
    def folder(self) -> Path | None:
        """The gallery folder, for a store kept in one (SQLite); else None."""
        return self.backend.folder(self.target)

    def exists(self) -> bool:
        """Whether a gallery is there already."""
        return self.backend.exists(self.target)

    def open(self) -> Store:
        """The store of the gallery there (:class:`GalleryError` when there is none)."""
        return self.backend.open(self.target)

    def create(self, embedder: EmbedderInfo, keep_faces: bool = False) -> Store:
        """A new, empty gallery there for ``embedder`` (keeping each enrolled face, for re-embedding with
        another model, when ``keep_faces``); refuses to replace one."""
        return self.backend.create(self.target, embedder, keep_faces)

    def index(self, store: Store) -> SearchIndex:
        """The search index over ``store``: the FAISS files of the folder, or queries to PostgreSQL."""
        return self.backend.index(self.target, store)
