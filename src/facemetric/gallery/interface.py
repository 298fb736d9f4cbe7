"""What every gallery store and search index offers, and the errors and records they share.

Each kind of store implements :class:`Store` and has a :class:`SearchIndex`, and is registered for the
URL schemes that name it (:mod:`facemetric.gallery.stores`): SQLite in a folder with a FAISS index
(:mod:`facemetric.gallery.stores.sqlite`, the embedded default) and PostgreSQL + pgvector
(:mod:`facemetric.gallery.stores.postgres`, several servers on one database). Both keep the same
promises, checked by the same tests:

* every change is one transaction and bumps a ``generation`` counter (equal generations, equal contents);
* a request that cannot be done writes nothing (a bad name or embedding is refused before any write);
* embeddings of another model are refused (:meth:`Store.check_embedder`): scores across models mean nothing;
* the calibrated thresholds live in the store, with the gallery they were calibrated on.

A :class:`SearchIndex` answers identify and verify against one store: the FAISS index of a SQLite
folder, or pgvector queries for PostgreSQL.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from facemetric.core.errors import FacemetricError
from facemetric.core.matching import UNKNOWN
from facemetric.gallery.schemas import EnrollResult, Identity

if TYPE_CHECKING:
    from facemetric.gallery.thresholds import StoredThresholds

MAX_NAME_LENGTH = 100
RESERVED_NAMES = {UNKNOWN}
_NAME_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f]")


class GalleryError(FacemetricError, ValueError):
    """A gallery request that cannot be done as asked; the message says why and what to do."""


class InvalidNameError(GalleryError):
    """An identity name that is empty, too long, path-like or reserved."""


class UnknownIdentityError(GalleryError, LookupError):
    """The named identity is not enrolled."""


class EmbedderMismatchError(GalleryError):
    """The gallery holds embeddings of a different model than the one given."""


def validate_name(name: str) -> str:
    """An identity name, normalised (Unicode NFC, outer spaces stripped), or :class:`InvalidNameError`.

    Names are labels, never paths: no slash or backslash, no control character, not ``.``/``..``
    or starting with a dot, at most 100 characters, and not ``no correspondence`` (the answer for
    an unknown face).
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"an identity name must be text, got {type(name).__name__}")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise InvalidNameError("an identity name cannot be empty")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"an identity name has at most {MAX_NAME_LENGTH} characters, got {len(clean)}")
    if _NAME_FORBIDDEN.search(clean) or clean.startswith(".") or ".." in clean:
        raise InvalidNameError(
            f"{name!r} is not allowed as an identity name: no slash, backslash, '..', leading dot or control "
            "character (names are labels, not paths)"
        )
    if clean.lower() in RESERVED_NAMES:
        raise InvalidNameError(f"{clean!r} is reserved: it is the answer for a face that matches nobody")
    return clean


@dataclass(frozen=True)
class EmbedderInfo:
    """Which model made a gallery's embeddings; ``reference`` opens it again (``load_embedder``): a
    pretrained name (with its options) or a model file."""

    name: str
    fingerprint: str
    dim: int
    reference: str

    def as_dict(self) -> dict[str, str | int]:
        """The JSON record the stores and export files keep."""
        return {"name": self.name, "fingerprint": self.fingerprint, "dim": self.dim, "reference": self.reference}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str) -> EmbedderInfo:
        """The model of a stored record (:meth:`as_dict`); :class:`GalleryError` naming ``where`` when damaged."""
        try:
            info = cls(str(record["name"]), str(record["fingerprint"]), int(record["dim"]), record["reference"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GalleryError(
                f"{where}: the record of the gallery's model is damaged ({exc!r}); restore the gallery from a backup"
            ) from None
        if not isinstance(info.reference, str):
            raise GalleryError(
                f"{where}: the gallery's model reference is not text ({info.reference!r}); restore the gallery "
                "from a backup"
            )
        return info


@dataclass(frozen=True)
class Enrolment:
    """One photo to enrol: content hash, where it came from, detection record, unit-length embedding,
    and the face cut from the photo (JPEG bytes) when the gallery keeps faces for re-embedding."""

    sha256: str
    source: str
    detection: dict[str, Any]
    embedding: np.ndarray
    face: bytes | None = None


@dataclass(frozen=True)
class StoredImage:
    """One enrolled photo as a store holds it (an export's record): :class:`Enrolment` plus when."""

    sha256: str
    source: str
    detection: dict[str, Any]
    embedding: np.ndarray
    created: float
    face: bytes | None = None


@dataclass(frozen=True)
class StoredIdentity:
    """One enrolled person with every photo of theirs, as exported and restored."""

    name: str
    created: float
    images: list[StoredImage]


@dataclass(frozen=True)
class Restored:
    """What :meth:`Store.restore` wrote."""

    identities: int
    images: int


class Snapshot(NamedTuple):
    """Every enrolled image of a store, read in one transaction."""

    generation: int
    ids: np.ndarray  # image row ids, int64
    names: list[str]  # the identity of each image
    vectors: np.ndarray  # (N, D) float32


@dataclass(frozen=True)
class Match:
    """One gallery identity and its score for a probe."""

    name: str
    score: float


class Store(ABC):
    """A gallery's durable store: identities, enrolled photos with their embeddings, the model's
    fingerprint, the calibrated thresholds and a generation counter. Thread-safe."""

    #: where it is, fit to print (a folder, or a URL without its password)
    location: str
    embedder: EmbedderInfo

    def check_embedder(self, fingerprint: str, dim: int) -> None:
        """Refuse an embedder other than the one this gallery was built with."""
        if fingerprint != self.embedder.fingerprint or dim != self.embedder.dim:
            raise EmbedderMismatchError(
                f"{self.location} holds {self.embedder.dim}-d embeddings of {self.embedder.name} (fingerprint "
                f"{self.embedder.fingerprint}); the model given is different ({dim}-d, fingerprint {fingerprint}). "
                "Scores across models mean nothing: use the gallery's own model (leave the model out and the gallery "
                "opens its own), or a new gallery"
            )

    def checked_enrolment(self, name: str, items: list[Enrolment]) -> str:
        """The normalised name, once the request is known to be whole: a valid name, at least one photo,
        every embedding finite and of the gallery's dimension (else :class:`GalleryError`, nothing written)."""
        name = validate_name(name)
        if not items:
            raise GalleryError(f"nothing to enrol for {name!r}: give at least one photo")
        for item in items:
            vector = np.asarray(item.embedding, dtype=np.float32)
            if vector.shape != (self.embedder.dim,) or not np.all(np.isfinite(vector)):
                raise GalleryError(
                    f"an embedding of shape {vector.shape} (finite: {bool(np.all(np.isfinite(vector)))}) "
                    f"cannot be enrolled in a gallery of {self.embedder.dim}-d embeddings"
                )
        return name

    @property
    @abstractmethod
    def generation(self) -> int:
        """Bumped by every committed change: equal generations mean equal contents."""

    @abstractmethod
    def thresholds(self) -> StoredThresholds:
        """The calibrated thresholds (both None before any calibration)."""

    @abstractmethod
    def identities(self) -> list[Identity]:
        """Every identity with its number of images and enrolment time, by name (code point order)."""

    @abstractmethod
    def has_identity(self, name: str) -> bool: ...

    @abstractmethod
    def enrolled_hashes(self) -> set[str]:
        """Content hashes of every enrolled photo (to keep them out of a calibration)."""

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """Every image's id, identity and embedding, with the generation they are of, read consistently."""

    def sample_images(self, count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
        """Up to ``count`` enrolled images drawn at random (``seed``): their people and embeddings. This reads a
        :meth:`snapshot`; the built-in stores read only the rows drawn."""
        snapshot = self.snapshot()
        rows = np.random.default_rng(seed).permutation(len(snapshot.ids))[: max(0, int(count))]
        return [snapshot.names[k] for k in rows], snapshot.vectors[rows]

    @abstractmethod
    def integrity_check(self) -> str:
        """``"ok"`` when the store is sound, else what is wrong."""

    @abstractmethod
    def enroll(self, name: str, items: list[Enrolment]) -> EnrollResult:
        """Add ``items`` to ``name`` (created if new) in one transaction; a photo already enrolled for
        that person (same content hash) is skipped. Returns the name and added/duplicate counts."""

    @abstractmethod
    def remove(self, name: str) -> int:
        """Delete ``name`` and its images; returns how many images went. :class:`UnknownIdentityError` if absent."""

    @abstractmethod
    def set_thresholds(self, thresholds: StoredThresholds) -> None:
        """Store the calibrated thresholds (replacing the previous ones)."""

    #: whether enrolments keep the face cut from each photo (for re-embedding with another model)
    keep_faces: bool

    @abstractmethod
    def export(self, batch: int = 1000) -> Iterator[StoredIdentity]:
        """Every identity with its photos (embeddings, detections, faces kept), by name, read from one
        consistent snapshot and streamed: memory holds about ``batch`` identities at a time."""

    @abstractmethod
    def restore(self, identities: Iterable[StoredIdentity], thresholds: StoredThresholds | None = None) -> Restored:
        """Write exported identities into this gallery, which must be empty, in one transaction (all or
        nothing), keeping their enrolment times; returns the identities and images written."""

    @abstractmethod
    def destroy(self) -> None:
        """Delete this gallery and everything in it (closing the store); for a gallery that a failed
        import or re-embedding created moments ago, never a user's own."""

    @abstractmethod
    def close(self) -> None: ...

    def check_restorable(self, identity: StoredIdentity) -> str:
        """The identity's normalised name once each of its photos is fit to store here (as
        :meth:`checked_enrolment`); a gallery's own export always is."""
        items = [Enrolment(i.sha256, i.source, i.detection, i.embedding, i.face) for i in identity.images]
        return self.checked_enrolment(identity.name, items)


class SearchIndex(Protocol):
    """Identify and verify against one store (scores: cosine similarity, higher is more alike)."""

    def sync(self) -> bool:
        """Catch up with the store's changes (by other processes too); True when something was rebuilt."""
        ...

    def __len__(self) -> int:
        """Identities enrolled."""
        ...

    @property
    def n_images(self) -> int: ...

    def search(self, probe: np.ndarray, top_k: int = 5, template: str = "max") -> list[Match]:
        """The ``top_k`` best identities for a unit-length ``probe``, best first (ties by name)."""
        ...

    def score(self, probe: np.ndarray, name: str, template: str = "max") -> float:
        """The probe's score against one identity (verification); :class:`UnknownIdentityError` if absent."""
        ...

    def close(self) -> None:
        """Leave nothing unsaved (the store is closed separately)."""
        ...

    def exact_twin(self) -> SearchIndex | None:
        """An exact search of the same store, to check this index's answers against; None when this one is exact."""
        ...
