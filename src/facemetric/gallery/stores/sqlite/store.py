"""The store of a gallery folder: identities, enrolled images and their embeddings in SQLite (WAL).

Every change is one transaction (``BEGIN IMMEDIATE``): a crash, even ``kill -9``, leaves the state
before or after it, never between. Embeddings of another model are refused: scores between two
models' embeddings mean nothing. The promises are those of :class:`~facemetric.gallery.interface.Store`;
the file's tables are in :mod:`facemetric.gallery.stores.sqlite.database`, and every change is logged
there for the FAISS index (:meth:`SQLiteStore.changes_since`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facemetric.gallery.interface import (
    EmbedderInfo,
    Enrolment,
    GalleryError,
    Restored,
    Snapshot,
    Store,
    StoredIdentity,
    StoredImage,
    UnknownIdentityError,
    validate_name,
)
from facemetric.gallery.schemas import EnrollResult, Identity
from facemetric.gallery.stores.sqlite.database import FORMAT, INDEX_FILE, connect, create_file
from facemetric.gallery.stores.sqlite.image_vectors import IndexSettings
from facemetric.gallery.thresholds import StoredThresholds


class SQLiteStore(Store):
    """The SQLite file of a gallery. Thread-safe (one connection, serialised by a lock); several
    processes may open it (SQLite's WAL locking, 30 s busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        if not self.path.is_file():
            raise GalleryError(f"{self.path}: no gallery here; create one with `facemetric gallery init`")
        self._lock = threading.RLock()
        self._db = connect(self.path)
        try:
            fmt = self._meta_value("format")
            if fmt != FORMAT:
                raise GalleryError(f"{self.path} is not a facemetric gallery (format {fmt!r}, expected {FORMAT!r})")
            self.embedder = EmbedderInfo.from_dict(json.loads(self._meta_value("embedder")), self.location)
            self.keep_faces = self._meta_value("keep_faces") == "1"
        except BaseException:
            self._db.close()  # a refused open leaves no connection behind
            raise

    @classmethod
    def create(cls, path: str | Path, embedder: EmbedderInfo, keep_faces: bool = False) -> SQLiteStore:
        """Create an empty gallery for ``embedder`` (keeping each enrolled face when ``keep_faces``);
        refuses to touch an existing file."""
        create_file(Path(path), embedder, keep_faces)
        return cls(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ internals

    def _meta_value(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise GalleryError(f"{self.path}: the gallery lacks its {key!r} record; it is damaged")
        return row[0]

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """One write transaction, yielding the connection and the generation it commits (bumped first);
        rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                yield self._db, int(self._meta_value("generation"))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ reads

    @property
    def generation(self) -> int:
        """Bumped by every committed change: equal generations mean equal contents."""
        with self._lock:
            return int(self._meta_value("generation"))

    def thresholds(self) -> StoredThresholds:
        with self._lock:
            return StoredThresholds.from_json(self._meta_value("thresholds"), self.location)

    @property
    def index_settings(self) -> IndexSettings:
        """How the gallery's index searches (exact unless set: :meth:`set_index_settings`)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'index'").fetchone()
        return IndexSettings() if row is None else IndexSettings.from_json(row[0])

    def identities(self) -> list[Identity]:
        """Every identity with its number of images and enrolment time, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT i.name, COUNT(m.id), i.created FROM identities i LEFT JOIN images m ON m.identity_id = i.id "
                "GROUP BY i.id ORDER BY i.name"
            ).fetchall()
        return [Identity(name=n, images=c, created=t) for n, c, t in rows]

    def has_identity(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM identities WHERE name = ?", (name,)).fetchone() is not None

    def enrolled_hashes(self) -> set[str]:
        """Content hashes of every enrolled photo (to keep them out of a calibration)."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT sha256 FROM images")}

    def snapshot(self) -> Snapshot:
        """Every image's id, identity and embedding, with the generation they are of, read consistently."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                generation = int(self._meta_value("generation"))
                rows = self._db.execute(
                    "SELECT m.id, i.name, m.embedding FROM images m JOIN identities i ON i.id = m.identity_id "
                    "ORDER BY m.id"
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), self.embedder.dim)
        return Snapshot(generation, ids, [r[1] for r in rows], vectors)

    def sample_images(self, count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
        """As the store interface says: the image ids are read, then only the rows drawn."""
        with self._lock:
            ids = np.array([r[0] for r in self._db.execute("SELECT id FROM images ORDER BY id")], np.int64)
            drawn = np.random.default_rng(seed).permutation(ids)[: max(0, int(count))].tolist()
            rows = self._db.execute(
                "SELECT i.name, m.embedding FROM images m JOIN identities i ON i.id = m.identity_id "
                f"WHERE m.id IN ({','.join('?' * len(drawn))})",
                drawn,
            ).fetchall()
        vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.embedder.dim)
        return [r[0] for r in rows], vectors

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" when sound)."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # ------------------------------------------------------------------ writes

    def enroll(self, name: str, items: list[Enrolment]) -> EnrollResult:
        """Add ``items`` to ``name`` (created if new) in one transaction; a photo already enrolled for
        that person (same content hash) is skipped. Returns the name and added/duplicate counts."""
        name = self.checked_enrolment(name, items)
        now = time.time()
        added = []
        with self._write() as (db, generation):
            db.execute("INSERT OR IGNORE INTO identities(name, created) VALUES (?, ?)", (name, now))
            identity = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()[0]
            for item in items:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO images(identity_id, sha256, source, detection, embedding, created, face) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        identity,
                        item.sha256,
                        item.source,
                        json.dumps(item.detection),
                        np.asarray(item.embedding, dtype=np.float32).tobytes(),
                        now,
                        item.face if self.keep_faces else None,
                    ),
                )
                if cursor.rowcount:
                    added.append(cursor.lastrowid)
            db.executemany(
                "INSERT INTO changes(generation, image_id, added) VALUES (?, ?, 1)", [(generation, i) for i in added]
            )
        return EnrollResult(name=name, added=len(added), duplicates=len(items) - len(added))

    def remove(self, name: str) -> int:
        """Delete ``name`` and its images; returns how many images went. :class:`UnknownIdentityError` if absent."""
        name = validate_name(name)
        with self._write() as (db, generation):
            row = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.path}")
            gone = [r[0] for r in db.execute("SELECT id FROM images WHERE identity_id = ?", (row[0],))]
            db.execute("DELETE FROM identities WHERE id = ?", (row[0],))
            db.executemany(
                "INSERT INTO changes(generation, image_id, added) VALUES (?, ?, 0)", [(generation, i) for i in gone]
            )
        return len(gone)

    def set_thresholds(self, thresholds: StoredThresholds) -> None:
        """Store the calibrated thresholds (replacing the previous ones)."""
        with self._write() as (db, _):
            db.execute("UPDATE meta SET value = ? WHERE key = 'thresholds'", (thresholds.to_json(),))

    def set_index_settings(self, settings: IndexSettings) -> None:
        """Search exactly or by HNSW from now on; every process's index follows on its next sync (a change of
        kind or build rebuilds it there, ``ef_search`` alone does not)."""
        with self._write() as (db, _):
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('index', ?)", (settings.to_json(),))

    # ------------------------------------------------------------------ the change log (for the FAISS index)

    def changes_since(self, generation: int) -> Changes | None:
        """What changed after ``generation``: image ids deleted, and the rows added that still exist, read
        in one snapshot; None when the log no longer reaches back that far (rebuild from :meth:`snapshot`)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                now = int(self._meta_value("generation"))
                if generation < int(self._meta_value("changes_from")) or generation > now:
                    return None
                removed = [
                    r[0]
                    for r in self._db.execute(
                        "SELECT image_id FROM changes WHERE generation > ? AND added = 0", (generation,)
                    )
                ]
                rows = self._db.execute(
                    "SELECT m.id, i.name, m.embedding FROM images m JOIN identities i ON i.id = m.identity_id "
                    "WHERE m.id IN (SELECT image_id FROM changes WHERE generation > ? AND added = 1) ORDER BY m.id",
                    (generation,),
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), self.embedder.dim)
        return Changes(now, np.array(removed, dtype=np.int64), ids, [r[1] for r in rows], vectors)

    def forget_changes(self, upto: int) -> None:
        """Drop the log up to generation ``upto`` (a saved index reflects it); an index older than that
        rebuilds from the store instead. Not a change of contents: the generation stays."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if upto > int(self._meta_value("changes_from")):
                    self._db.execute("DELETE FROM changes WHERE generation <= ?", (upto,))
                    self._db.execute("UPDATE meta SET value = ? WHERE key = 'changes_from'", (str(upto),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ export, restore

    def export(self, batch: int = 1000) -> Iterator[StoredIdentity]:
        dim = self.embedder.dim
        with self._lock:
            reader = connect(self.path)  # its own connection: one snapshot, without holding the lock
        try:
            reader.execute("BEGIN")
            people = reader.execute("SELECT id, name, created FROM identities ORDER BY name").fetchall()
            for start in range(0, len(people), batch):
                chunk = people[start : start + batch]
                images: dict[int, list[StoredImage]] = {p[0]: [] for p in chunk}
                marks = ",".join("?" * len(chunk))
                for row in reader.execute(
                    f"SELECT identity_id, sha256, source, detection, embedding, created, face FROM images "
                    f"WHERE identity_id IN ({marks}) ORDER BY id",
                    [p[0] for p in chunk],
                ):
                    vector = np.frombuffer(row[4], dtype=np.float32).reshape(dim).copy()
                    images[row[0]].append(StoredImage(row[1], row[2], json.loads(row[3]), vector, row[5], row[6]))
                for key, name, created in chunk:
                    yield StoredIdentity(name, created, images[key])
            reader.execute("COMMIT")
        finally:
            reader.close()

    def restore(self, identities: Iterable[StoredIdentity], thresholds: StoredThresholds | None = None) -> Restored:
        people = images = 0
        with self._write() as (db, generation):
            if db.execute("SELECT 1 FROM identities LIMIT 1").fetchone() is not None:
                raise GalleryError(f"{self.path} already holds people: a gallery is restored into an empty one")
            for identity in identities:
                name = self.check_restorable(identity)
                key = db.execute(
                    "INSERT INTO identities(name, created) VALUES (?, ?)", (name, identity.created)
                ).lastrowid
                db.executemany(
                    "INSERT OR IGNORE INTO images(identity_id, sha256, source, detection, embedding, created, face) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            key,
                            i.sha256,
                            i.source,
                            json.dumps(i.detection),
                            np.asarray(i.embedding, np.float32).tobytes(),
                            i.created,
                            i.face if self.keep_faces else None,
                        )
                        for i in identity.images
                    ],
                )
                people += 1
                images += len(identity.images)
            if thresholds is not None:
                db.execute("UPDATE meta SET value = ? WHERE key = 'thresholds'", (thresholds.to_json(),))
            # an index built before this (of the empty gallery) rebuilds: cheaper than logging every row
            db.execute("UPDATE meta SET value = ? WHERE key = 'changes_from'", (str(generation),))
            db.execute("DELETE FROM changes")
        return Restored(people, images)

    def destroy(self) -> None:
        self.close()
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            path.unlink(missing_ok=True)
        (self.path.parent / INDEX_FILE).unlink(missing_ok=True)  # derived from the store: goes with it
        with suppress(OSError):
            self.path.parent.rmdir()  # the folder too, when nothing else is in it


@dataclass(frozen=True)
class Changes:
    """What :meth:`SQLiteStore.changes_since` found: the generation now, image ids deleted, and the
    rows added since (ids, identity names, embeddings) that still exist."""

    generation: int
    removed: np.ndarray
    ids: np.ndarray
    names: list[str]
    vectors: np.ndarray
