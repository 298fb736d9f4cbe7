"""The embedded gallery store: identities, enrolled images and their embeddings in SQLite (WAL).

One SQLite file holds everything that must never be lost or half-written:

* ``meta``: the format, the embedder (name, fingerprint, dimension, how to load it), the
  calibrated thresholds, and a ``generation`` counter bumped by every change (the FAISS
  index compares it to know whether it is stale);
* ``identities``: one row per enrolled person (unique name);
* ``images``: one row per enrolled photo: its content hash (the same photo is not enrolled
  twice for a person), where it came from, the face detection record, and the embedding.

Every change is one transaction (``BEGIN IMMEDIATE``): a crash, even ``kill -9``, leaves the
state before or after it, never between. Embeddings of another model are refused: scores
between two models' embeddings mean nothing. The promises are those of
:class:`~facemetric.gallery.interface.Store`; :mod:`facemetric.gallery.postgres` keeps them in PostgreSQL.
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
from typing import Any

import numpy as np

from facemetric.core.atomic import atomic_path
from facemetric.gallery.interface import (
    EmbedderInfo,
    EmbedderMismatchError,
    Enrolment,
    GalleryError,
    InvalidNameError,
    Store,
    StoredIdentity,
    StoredImage,
    UnknownIdentityError,
    validate_name,
)

__all__ = [  # the shared names stay importable from here, where facemetric 0.x defined them
    "EmbedderInfo",
    "EmbedderMismatchError",
    "Enrolment",
    "GalleryError",
    "GalleryStore",
    "InvalidNameError",
    "SQLiteStore",
    "UnknownIdentityError",
    "validate_name",
]

FORMAT = "facemetric-gallery/1"

# the change log: which image rows each generation added or deleted, so the FAISS index catches up by
# reading only those (its cost is the change's, not the gallery's). Complete from meta 'changes_from' on.
CHANGES = """
CREATE TABLE IF NOT EXISTS changes (
    generation INTEGER NOT NULL, image_id INTEGER NOT NULL, added INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS changes_generation ON changes(generation);
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL, source TEXT NOT NULL, detection TEXT NOT NULL,
    embedding BLOB NOT NULL, created REAL NOT NULL, face BLOB,
    UNIQUE (identity_id, sha256));
CREATE INDEX IF NOT EXISTS images_identity ON images(identity_id);
"""
    + CHANGES
)


class SQLiteStore(Store):
    """The SQLite file of a gallery. Thread-safe (one connection, serialised by a lock); several
    processes may open it (SQLite's WAL locking, 30 s busy timeout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        if not self.path.is_file():
            raise GalleryError(f"{self.path}: no gallery here; create one with `facemetric gallery init`")
        self._lock = threading.RLock()
        self._db = self._connect(self.path)
        fmt = self._meta_value("format")
        if fmt != FORMAT:
            raise GalleryError(f"{self.path} is not a facemetric gallery (format {fmt!r}, expected {FORMAT!r})")
        info = json.loads(self._meta_value("embedder"))
        self.embedder = EmbedderInfo(
            info["name"], info["fingerprint"], int(info["dim"]), info["spec"]
        )  # "spec": the 0.1 key
        self._upgrade()
        self.keep_faces = self._meta_value("keep_faces") == "1"

    def _upgrade(self) -> None:
        """Bring a gallery made by an earlier facemetric up to this schema (same format): the ``face``
        column, the change log (complete from the present generation on) and the keep-faces setting."""
        with self._lock:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(images)")}
            keys = {row[0] for row in self._db.execute("SELECT key FROM meta")}
            if "face" in columns and {"keep_faces", "changes_from"} <= keys:
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if "face" not in {row[1] for row in self._db.execute("PRAGMA table_info(images)")}:
                    self._db.execute("ALTER TABLE images ADD COLUMN face BLOB")
                for statement in CHANGES.strip().split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('keep_faces', '0')")
                self._db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) "
                    "SELECT 'changes_from', value FROM meta WHERE key = 'generation'"
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed enrolment survives a power cut too
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(cls, path: str | Path, embedder: EmbedderInfo, keep_faces: bool = False) -> SQLiteStore:
        """Create an empty gallery for ``embedder`` (keeping each enrolled face when ``keep_faces``);
        refuses to touch an existing file."""
        path = Path(path)
        if path.exists():
            raise GalleryError(f"{path} already exists; open it, or choose another folder")
        with atomic_path(path, fsync=True) as tmp:  # built aside, then renamed: never half-created
            db = cls._connect(tmp)
            try:
                db.executescript(SCHEMA)
                values = {
                    "format": FORMAT,
                    "generation": "0",
                    "changes_from": "0",
                    "keep_faces": "1" if keep_faces else "0",
                    "thresholds": "{}",
                    "embedder": json.dumps(
                        {
                            "name": embedder.name,
                            "fingerprint": embedder.fingerprint,
                            "dim": embedder.dim,
                            "spec": embedder.reference,
                        }
                    ),
                }
                db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", values.items())
                db.execute("PRAGMA journal_mode=DELETE")  # everything in the one file before it is renamed
            finally:
                db.close()
            for leftover in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                leftover.unlink(missing_ok=True)
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

    def thresholds(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(self._meta_value("thresholds"))

    def identities(self) -> list[dict[str, Any]]:
        """Every identity with its number of images and enrolment time, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT i.name, COUNT(m.id), i.created FROM identities i LEFT JOIN images m ON m.identity_id = i.id "
                "GROUP BY i.id ORDER BY i.name"
            ).fetchall()
        return [{"name": n, "images": c, "created": t} for n, c, t in rows]

    def has_identity(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM identities WHERE name = ?", (name,)).fetchone() is not None

    def enrolled_hashes(self) -> set[str]:
        """Content hashes of every enrolled photo (to keep them out of a calibration)."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT sha256 FROM images")}

    def snapshot(self) -> tuple[int, np.ndarray, list[str], np.ndarray]:
        """(generation, image ids, identity name per image, embeddings (N, D) float32), read consistently."""
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
        return generation, ids, [r[1] for r in rows], vectors

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" when sound)."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # ------------------------------------------------------------------ writes

    def enroll(self, name: str, items: list[Enrolment]) -> dict[str, Any]:
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
        return {"name": name, "added": len(added), "duplicates": len(items) - len(added)}

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

    def set_thresholds(self, thresholds: dict[str, Any]) -> None:
        """Store the calibrated thresholds (replacing the previous ones)."""
        with self._write() as (db, _):
            db.execute("UPDATE meta SET value = ? WHERE key = 'thresholds'", (json.dumps(thresholds),))

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
            reader = self._connect(self.path)  # its own connection: one snapshot, without holding the lock
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

    def restore(self, identities: Iterable[StoredIdentity], thresholds: dict[str, Any] | None = None) -> dict[str, int]:
        counts = {"identities": 0, "images": 0}
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
                counts["identities"] += 1
                counts["images"] += len(identity.images)
            if thresholds is not None:
                db.execute("UPDATE meta SET value = ? WHERE key = 'thresholds'", (json.dumps(thresholds),))
            # an index built before this (of the empty gallery) rebuilds: cheaper than logging every row
            db.execute("UPDATE meta SET value = ? WHERE key = 'changes_from'", (str(generation),))
            db.execute("DELETE FROM changes")
        return counts

    def destroy(self) -> None:
        self.close()
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            path.unlink(missing_ok=True)
        for derived in ("index.faiss", "index.json"):
            (self.path.parent / derived).unlink(missing_ok=True)
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


GalleryStore = SQLiteStore  # its name in facemetric 0.x
