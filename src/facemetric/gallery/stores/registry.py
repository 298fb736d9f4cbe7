"""Kinds of gallery store, registered by the URL scheme that names them in ``--gallery``.

A store kind is a :class:`StoreBackend`: how to tell whether a gallery is at a target, open one,
create one, build its search index and print the target without a password. Each kind is one module
(or one small subpackage) of :mod:`facemetric.gallery.stores` that registers itself::

    @register_store("redis", "rediss")
    class RedisBackend(StoreBackend):
        name = "redis"
        described = "a redis://host/db URL (Redis)"
        ...

:func:`facemetric.core.registry.discover` imports every module of that package, so a third store is
one new module and nothing else. :data:`PLAIN_PATH` is the key of the store a value without a
scheme names (the SQLite folder). Backends import their drivers (psycopg, FAISS) inside their
methods: registering every store costs nothing until a gallery of that kind is opened.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypeVar

from facemetric.core.registry import Registry
from facemetric.gallery.interface import EmbedderInfo, SearchIndex, Store

PLAIN_PATH = ""  # the registry key of a --gallery value with no scheme: not a scheme, so no URL can name it


class StoreBackend(ABC):
    """One kind of gallery store; ``target`` is the ``--gallery`` value as given (a folder, a URL)."""

    #: the kind's name (``GalleryLocation.kind``): "sqlite", "postgresql"
    name: ClassVar[str]
    #: how the refusal of an unknown scheme describes this kind: "a folder (SQLite)"
    described: ClassVar[str]

    def redact(self, target: str) -> str:
        """``target`` fit to print: a URL's password hidden."""
        return redact_url(target)

    def folder(self, target: str) -> Path | None:
        """The folder the gallery lives in, for a kind that keeps it in one (else None)."""
        return None

    @abstractmethod
    def exists(self, target: str) -> bool:
        """Whether a gallery is there already."""

    @abstractmethod
    def open(self, target: str) -> Store:
        """The store of the gallery there (:class:`~facemetric.gallery.interface.GalleryError` when there is none)."""

    @abstractmethod
    def create(self, target: str, embedder: EmbedderInfo, keep_faces: bool) -> Store:
        """A new, empty gallery there for ``embedder``; refuses to replace one."""

    @abstractmethod
    def index(self, target: str, store: Store) -> SearchIndex:
        """The search index over ``store`` (a store this backend opened or created at ``target``)."""


B = TypeVar("B", bound=type[StoreBackend])

STORES: Registry[type[StoreBackend]] = Registry("gallery store")


def register_store(*schemes: str) -> Callable[[B], B]:
    """Class decorator registering a :class:`StoreBackend` for each of ``schemes`` (lower case; give
    :data:`PLAIN_PATH` for values without a scheme). A scheme taken by another store is refused."""

    def wrap(backend: B) -> B:
        for scheme in schemes:
            STORES.register(scheme.lower())(backend)
        return backend

    return wrap


def backends() -> list[type[StoreBackend]]:
    """Every registered kind once: the plain-path one first, then by scheme."""
    return list(dict.fromkeys(STORES.get(scheme) for scheme in STORES.names()))


def backend_named(kind: str) -> StoreBackend:
    """The backend whose ``name`` is ``kind`` (a :class:`GalleryLocation`'s kind)."""
    for backend in backends():
        if backend.name == kind:
            return backend()
    raise ValueError(f"no gallery store is named {kind!r}; known: {', '.join(b.name for b in backends())}")


def redact_url(url: str) -> str:
    """``url`` fit to print: its password (in the user part or a ``password=`` parameter) hidden."""
    url = re.sub(r"(://[^:/@?#]*:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url)
