"""The SQLite file of a gallery folder: its tables, how it is opened, and how a new one is made.

One file, ``gallery.db``, holds everything that must never be lost or half-written:

* ``meta``: the format, the embedder (name, fingerprint, dimension, how to load it), whether faces
  are kept, the calibrated thresholds, and a ``generation`` counter bumped by every change;
* ``identities``: one row per enrolled person (unique name);
* ``images``: one row per enrolled photo: its content hash (the same photo is not enrolled twice for
  a person), where it came from, the face detection record, the embedding and the kept face;
* ``changes``: which image rows each generation added or deleted, so the FAISS index catches up by
  reading only those (its cost is the change's, not the gallery's); complete from meta
  ``changes_from`` on.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from facemetric.core.atomic import atomic_path
from facemetric.gallery.interface import EmbedderInfo, GalleryError
from facemetric.gallery.thresholds import StoredThresholds

FORMAT = "facemetric-gallery/1"
DB_NAME = "gallery.db"  # the store: the truth
INDEX_FILE = "index.faiss"  # the FAISS index: derived from the store, rebuilt when missing

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE identities (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL, source TEXT NOT NULL, detection TEXT NOT NULL,
    embedding BLOB NOT NULL, created REAL NOT NULL, face BLOB,
    UNIQUE (identity_id, sha256));
CREATE INDEX images_identity ON images(identity_id);
CREATE TABLE changes (generation INTEGER NOT NULL, image_id INTEGER NOT NULL, added INTEGER NOT NULL);
CREATE INDEX changes_generation ON changes(generation);
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, synchronous, with foreign keys."""
    db = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed enrolment survives a power cut too
    db.execute("PRAGMA foreign_keys=ON")
    return db


def create_file(path: Path, embedder: EmbedderInfo, keep_faces: bool) -> None:
    """Write an empty gallery file for ``embedder`` at ``path`` (built aside, then renamed: never
    half-created); refuses to touch an existing file."""
    if path.exists():
        raise GalleryError(f"{path} already exists; open it, or choose another folder")
    with atomic_path(path, fsync=True) as tmp:
        db = connect(tmp)
        try:
            db.executescript(SCHEMA)
            values = {
                "format": FORMAT,
                "generation": "0",
                "changes_from": "0",
                "keep_faces": "1" if keep_faces else "0",
                "thresholds": StoredThresholds().to_json(),
                "embedder": json.dumps(embedder.as_dict()),
            }
            db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", values.items())
            db.execute("PRAGMA journal_mode=DELETE")  # everything in the one file before it is renamed
        finally:
            db.close()
        for leftover in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
