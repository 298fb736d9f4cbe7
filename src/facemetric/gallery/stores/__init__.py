"""The kinds of gallery store, each registered for the URL schemes that name it: a folder (SQLite +
FAISS, :mod:`.sqlite`) and ``postgresql://`` (pgvector, :mod:`.postgres`). Every module of this package
registers its store on import, so a new store is one new module here with ``@register_store("scheme")``."""

from facemetric.core.registry import discover
from facemetric.gallery.stores.registry import (
    PLAIN_PATH,
    STORES,
    StoreBackend,
    backend_named,
    backends,
    redact_url,
    register_store,
)

discover(__name__, __path__)

__all__ = ["PLAIN_PATH", "STORES", "StoreBackend", "backend_named", "backends", "redact_url", "register_store"]
