"""How a folder gallery searches: exact (FAISS flat, the default) or approximate (FAISS HNSW) (``gallery index``).

Exact search scores every enrolled image: 79 ms a search at a million 128-d people on 2 cores, 272 ms at
512-d (BENCHMARKS.md). HNSW walks a graph instead, for galleries past about 100,000 people; it can miss the
nearest person, so check it on the gallery itself with ``facemetric gallery recall``. The choice is kept
in the gallery (its store), so every process opening it searches the same way; the index is rebuilt here
and now, so no request pays for it. A PostgreSQL gallery says the same things in its URL
(``?search=exact``, ``?m=&ef_construction=`` for a new gallery, ``?ef_search=``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from facemetric.gallery.interface import GalleryError
from facemetric.gallery.location import GalleryLocation


def configure_index(
    location: str | Path | GalleryLocation,
    kind: str | None = None,
    m: int | None = None,
    ef_construction: int | None = None,
    ef_search: int | None = None,
) -> dict[str, Any]:
    """Set what is given (the rest kept), build the index now, and report the settings; nothing given:
    report them only."""
    from facemetric.gallery.stores.sqlite.store import SQLiteStore

    location = GalleryLocation.parse(location)
    given: dict[str, Any] = {"kind": kind, "m": m, "ef_construction": ef_construction, "ef_search": ef_search}
    store = location.open()
    try:
        if not isinstance(store, SQLiteStore):
            raise GalleryError(
                f"{location}: a PostgreSQL gallery searches pgvector's HNSW index, set in its URL: ?ef_search=N per "
                "search, ?m=M&ef_construction=E when the gallery is created, ?search=exact for exact search"
            )
        current = store.index_settings
        wanted = replace(current, **{key: value for key, value in given.items() if value is not None})
        changed = wanted != current
        if changed:
            store.set_index_settings(wanted)
        start = time.perf_counter()
        index = location.index(store)  # builds (or loads) it as the gallery now says, and saves it
        try:
            built_s = time.perf_counter() - start
            out = {"gallery": str(location), "index": asdict(wanted), "changed": changed}
            return {**out, "identities": len(index), "images": index.n_images, "open_s": round(built_s, 3)}
        finally:
            index.close()
    finally:
        store.close()
