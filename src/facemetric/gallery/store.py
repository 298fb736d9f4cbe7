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
from collections.abc import Iterator
from contextlib import contextmanager
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL, source TEXT NOT NULL, detection TEXT NOT NULL,
    embedding BLOB NOT NULL, created REAL NOT NULL,
    UNIQUE (identity_id, sha256));
CREATE INDEX IF NOT EXISTS images_identity ON images(identity_id);
"""


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

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed enrolment survives a power cut too
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(cls, path: str | Path, embedder: EmbedderInfo) -> SQLiteStore:
        """Create an empty gallery for ``embedder``; refuses to touch an existing file."""
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
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that also bumps the generation; rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
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
        added, duplicates = 0, 0
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO identities(name, created) VALUES (?, ?)", (name, now))
            identity = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()[0]
            for item in items:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO images(identity_id, sha256, source, detection, embedding, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        identity,
                        item.sha256,
                        item.source,
                        json.dumps(item.detection),
                        np.asarray(item.embedding, dtype=np.float32).tobytes(),
                        now,
                    ),
                )
                added += cursor.rowcount
                duplicates += 1 - cursor.rowcount
        return {"name": name, "added": added, "duplicates": duplicates}

    def remove(self, name: str) -> int:
        """Delete ``name`` and its images; returns how many images went. :class:`UnknownIdentityError` if absent."""
        name = validate_name(name)
        with self._write() as db:
            row = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.path}")
            count = db.execute("SELECT COUNT(*) FROM images WHERE identity_id = ?", (row[0],)).fetchone()[0]
            db.execute("DELETE FROM identities WHERE id = ?", (row[0],))
        return int(count)

    def set_thresholds(self, thresholds: dict[str, Any]) -> None:
        """Store the calibrated thresholds (replacing the previous ones)."""
        with self._write() as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'thresholds'", (json.dumps(thresholds),))


GalleryStore = SQLiteStore  # its name in facemetric 0.x
