"""A third kind of store, defined and registered in this file for ``memory://``, is reached through
``--gallery memory://...`` (the command line, export and import, the service) with no change anywhere
else: the store registry (facemetric.gallery.stores) is keyed by URL scheme."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from facemetric.cli import main
from facemetric.gallery.interface import (
    EmbedderInfo,
    Enrolment,
    GalleryError,
    Match,
    Restored,
    SearchIndex,
    Snapshot,
    Store,
    StoredIdentity,
    StoredImage,
    UnknownIdentityError,
    validate_name,
)
from facemetric.gallery.location import GalleryLocation
from facemetric.gallery.photos import Photo
from facemetric.gallery.schemas import EnrollResult, Identity
from facemetric.gallery.service import Gallery
from facemetric.gallery.stores import STORES, StoreBackend, register_store
from facemetric.gallery.thresholds import StoredThresholds
from gallery_fakes import ColourEmbedder, person_photo


@dataclass
class _Contents:
    """One in-memory gallery: what a database would hold."""

    embedder: EmbedderInfo
    keep_faces: bool
    generation: int = 0
    people: dict[str, StoredIdentity] = field(default_factory=dict)
    thresholds: StoredThresholds = field(default_factory=StoredThresholds)


GALLERIES: dict[str, _Contents] = {}  # by the name after memory://
_LOCK = threading.Lock()


def _name(target: str) -> str:
    return target.split("://", 1)[1]


class MemoryStore(Store):
    """A gallery in this process's memory: every change under one lock, whole or not at all."""

    def __init__(self, target: str) -> None:
        if _name(target) not in GALLERIES:
            raise GalleryError(f"{target}: no gallery here; create one with `facemetric gallery init`")
        self.location, self._g = target, GALLERIES[_name(target)]
        self.embedder, self.keep_faces = self._g.embedder, self._g.keep_faces

    @property
    def generation(self) -> int:
        return self._g.generation

    def thresholds(self) -> StoredThresholds:
        return self._g.thresholds

    def identities(self) -> list[Identity]:
        people = sorted(self._g.people.values(), key=lambda p: p.name)
        return [Identity(name=p.name, images=len(p.images), created=p.created) for p in people]

    def has_identity(self, name: str) -> bool:
        return name in self._g.people

    def enrolled_hashes(self) -> set[str]:
        return {i.sha256 for p in self._g.people.values() for i in p.images}

    def snapshot(self) -> Snapshot:
        rows = [(p.name, i.embedding) for p in self._g.people.values() for i in p.images]
        vectors = np.array([v for _, v in rows], np.float32).reshape(len(rows), self.embedder.dim)
        return Snapshot(self._g.generation, np.arange(len(rows)), [n for n, _ in rows], vectors)

    def integrity_check(self) -> str:
        return "ok" if all(p.images for p in self._g.people.values()) else "an identity without images"

    def enroll(self, name: str, items: list[Enrolment]) -> EnrollResult:
        name = self.checked_enrolment(name, items)
        with _LOCK:
            person = self._g.people.get(name, StoredIdentity(name, time.time(), []))
            known = {i.sha256 for i in person.images}
            new = [i for i in items if i.sha256 not in known]
            images = [StoredImage(i.sha256, i.source, i.detection, i.embedding, time.time(), i.face) for i in new]
            self._g.people[name] = replace(person, images=person.images + images)
            self._g.generation += 1
        return EnrollResult(name=name, added=len(new), duplicates=len(items) - len(new))

    def remove(self, name: str) -> int:
        name = validate_name(name)
        with _LOCK:
            if name not in self._g.people:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.location}")
            self._g.generation += 1
            return len(self._g.people.pop(name).images)

    def set_thresholds(self, thresholds: StoredThresholds) -> None:
        with _LOCK:
            self._g.thresholds, self._g.generation = thresholds, self._g.generation + 1

    def export(self, batch: int = 1000) -> Iterator[StoredIdentity]:
        yield from sorted(self._g.people.values(), key=lambda p: p.name)

    def restore(self, identities: Iterable[StoredIdentity], thresholds: StoredThresholds | None = None) -> Restored:
        if self._g.people:
            raise GalleryError(f"{self.location} already holds people: a gallery is restored into an empty one")
        people = {self.check_restorable(p): p for p in identities}  # everything checked before anything lands
        with _LOCK:
            self._g.people = {name: replace(p, name=name) for name, p in people.items()}
            self._g.thresholds = thresholds or self._g.thresholds
            self._g.generation += 1
        return Restored(len(people), sum(len(p.images) for p in people.values()))

    def destroy(self) -> None:
        GALLERIES.pop(_name(self.location), None)

    def close(self) -> None:
        pass


class MemoryIndex:
    """Brute-force search over a :class:`MemoryStore`, read fresh on every call."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def sync(self) -> bool:
        return False

    def __len__(self) -> int:
        return len(self.store.identities())

    @property
    def n_images(self) -> int:
        return len(self.store.snapshot().ids)

    def _scores(self, probe: np.ndarray, template: str) -> dict[str, float]:
        _, _, names, vectors = self.store.snapshot()
        owner, sims = np.array(names), vectors @ np.asarray(probe, np.float32)
        scores = {}
        for name in set(names):
            if template == "max":
                scores[name] = float(sims[owner == name].max())
            else:
                mean = vectors[owner == name].mean(0)
                scores[name] = float(mean @ probe / np.linalg.norm(mean))
        return scores

    def search(self, probe: np.ndarray, top_k: int = 5, template: str = "max") -> list[Match]:
        found = [Match(n, s) for n, s in self._scores(probe, template).items()]
        return sorted(found, key=lambda m: (-m.score, m.name))[:top_k]

    def score(self, probe: np.ndarray, name: str, template: str = "max") -> float:
        scores = self._scores(probe, template)
        if name not in scores:
            raise UnknownIdentityError(f"{name!r} is not enrolled")
        return scores[name]

    def close(self) -> None:
        pass


@register_store("memory")
class MemoryBackend(StoreBackend):
    name = "memory"
    described = "a memory://NAME (this process's memory)"

    def exists(self, target: str) -> bool:
        return _name(target) in GALLERIES

    def open(self, target: str) -> Store:
        return MemoryStore(target)

    def create(self, target: str, embedder: EmbedderInfo, keep_faces: bool) -> Store:
        with _LOCK:
            if _name(target) in GALLERIES:
                raise GalleryError(f"{target}: a gallery already exists here; open it, or choose another")
            GALLERIES[_name(target)] = _Contents(embedder, keep_faces)
        return MemoryStore(target)

    def index(self, target: str, store: Store) -> SearchIndex:
        assert isinstance(store, MemoryStore)
        return MemoryIndex(store)


@pytest.fixture(autouse=True)
def _empty_memory() -> Iterator[None]:
    yield
    GALLERIES.clear()


def _answers(gallery: Gallery) -> list[dict]:
    """Identify answers for a few probes, enrolled people and strangers, scores rounded (FAISS and numpy
    differ in the last bits)."""
    out = []
    for person in (0, 2, 5, 77):
        answer = gallery.identify(Photo(person_photo(person, 9), "probe.png"), top_k=3).model_dump(mode="json")
        answer["score"] = round(answer["score"], 5)
        answer["far_at_score"] = round(answer["far_at_score"], 3)
        answer["candidates"] = [(c["name"], round(c["score"], 5)) for c in answer["candidates"]]
        out.append(answer)
    return out


def test_a_store_registered_for_a_scheme_is_what_that_scheme_names(tmp_path: Path) -> None:
    assert STORES.get("memory") is MemoryBackend and STORES.get("").name == "sqlite"
    location = GalleryLocation.parse("MEMORY://team")  # schemes are case-insensitive, as before
    assert location == GalleryLocation("memory", "MEMORY://team") and location.folder is None
    assert not location.exists()
    with pytest.raises(GalleryError, match="not a http:// URL") as refused:
        GalleryLocation.parse("http://team")
    assert "a memory://NAME (this process's memory)" in str(refused.value)  # the refusal lists every store
    with pytest.raises(ValueError, match="registered twice"):
        register_store("postgres")(MemoryBackend)  # a scheme has one store

    gallery = Gallery.create("memory://team", ColourEmbedder())
    assert isinstance(gallery.store, MemoryStore) and isinstance(gallery.index, MemoryIndex)
    assert gallery.enroll("Ana", [Photo(person_photo(1, 0), "a.png")]).added == 1
    assert gallery.verify("Ana", Photo(person_photo(1, 3), "v.png")).score > 0.9
    assert [i.name for i in Gallery("memory://team", ColourEmbedder()).identities()] == ["Ana"]


def test_the_command_line_exports_to_and_imports_from_a_registered_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = Gallery.create(tmp_path / "folder", ColourEmbedder())
    for person in range(6):
        original.enroll(f"person {person}", [Photo(person_photo(person, k), f"{k}.png") for k in range(2)])
    vectors = [original.embed(Photo(person_photo(p, s), "c"))[0] for p in range(6) for s in range(3, 6)]
    original.calibrate(np.array(vectors), [f"person {p}" for p in range(6) for _ in range(3)], 0.1, "test")
    expected = _answers(original)
    original.close()

    file = tmp_path / "team.fmgallery"
    assert main(["-q", "gallery", "--gallery", str(tmp_path / "folder"), "export", "-o", str(file)]) == 0
    capsys.readouterr()
    assert main(["-q", "gallery", "--gallery", "memory://copy", "import", "--data", str(file)]) == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["destination"] == "memory://copy" and imported["people"] == 6 and imported["photos"] == 12
    assert GALLERIES["copy"].generation == 1 and GALLERIES["copy"].thresholds.calibrated

    in_memory = Gallery("memory://copy", ColourEmbedder())
    assert _answers(in_memory) == expected  # the same people, decisions and thresholds
    assert main(["-q", "gallery", "--gallery", "memory://copy", "export", "-o", str(tmp_path / "back.fmgallery")]) == 0
    assert (
        main(
            ["-q", "gallery", "--gallery", str(tmp_path / "back"), "import", "--data", str(tmp_path / "back.fmgallery")]
        )
        == 0
    )
    assert _answers(Gallery(tmp_path / "back", ColourEmbedder())) == expected
    assert (
        main(["-q", "gallery", "--gallery", "memory://copy", "import", "--data", str(file)]) == 2
    )  # a gallery is there
    assert "a gallery is already there" in capsys.readouterr().err
