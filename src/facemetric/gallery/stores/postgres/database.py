"""The tables of a PostgreSQL gallery, and the few ways facemetric talks to the database.

A gallery is the schema ``facemetric`` of one database:

* ``gallery``: one row with the format, the embedder (name, fingerprint, dimension, how to load it),
  the calibrated thresholds, a ``generation`` counter bumped by every change, the counts of
  identities and images (kept in the same transactions, so no request counts rows) and whether
  faces are kept;
* ``identities``: one row per person (unique name), their image count and ``template``, the mean of
  their embeddings (cosine ignores its length, so it needs no normalising);
* ``images``: one row per enrolled photo: content hash (unique per person), source, detection record,
  the embedding as a pgvector ``vector(d)`` and the kept face.

Both vector columns carry an HNSW index with cosine distance (``vector_cosine_ops``). psycopg is
imported only when a connection is made: ``pip install 'facemetric[postgres]'``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from facemetric.core.errors import require
from facemetric.gallery.interface import EmbedderInfo, GalleryError
from facemetric.gallery.thresholds import StoredThresholds

if TYPE_CHECKING:
    import psycopg

FORMAT = "facemetric-gallery-postgresql/1"
SCHEMA = "facemetric"
MAX_DIM = 2000  # pgvector's HNSW indexes vectors of at most 2,000 dimensions
MIN_PGVECTOR = (0, 5, 0)  # HNSW arrived in pgvector 0.5.0

# the two vector indexes (dropped while a restore loads many rows, built once after: far faster)
HNSW_INDEXES = {"images_hnsw": ("images", "embedding"), "identities_hnsw": ("identities", "template")}
BUILD_MEMORY_CAP = 8 << 30  # bytes: the most maintenance_work_mem a build raises itself to


def hnsw_statements(m: int, ef_construction: int) -> list[str]:
    """``CREATE INDEX`` of both HNSW indexes, built with ``m`` links per node and a candidate list of
    ``ef_construction`` (kept by PostgreSQL in each index's options: :func:`hnsw_settings` reads them back)."""
    return [
        f"CREATE INDEX {name} ON {SCHEMA}.{table} USING hnsw ({column} vector_cosine_ops) "
        f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        for name, (table, column) in HNSW_INDEXES.items()
    ]


def hnsw_settings(db: psycopg.Connection) -> tuple[int, int]:
    """(m, ef_construction) the gallery's image index was built with (pgvector's 16 / 64 where the index
    records none: galleries made before these settings existed)."""
    row = db.execute(f"SELECT reloptions FROM pg_class WHERE oid = '{SCHEMA}.images_hnsw'::regclass").fetchone()
    options = dict(item.split("=", 1) for item in (row[0] if row and row[0] else []))
    return int(options.get("m", 16)), int(options.get("ef_construction", 64))


def build_hnsw(db: psycopg.Connection, m: int, ef_construction: int, rows: int, dim: int) -> None:
    """Build both HNSW indexes (inside the caller's transaction) with enough ``maintenance_work_mem`` for the
    graph of ``rows`` vectors to stay in memory (pgvector builds many times slower once it spills), up to
    :data:`BUILD_MEMORY_CAP` and never below the server's own setting; parallel workers as the server allows
    (``max_parallel_maintenance_workers``)."""
    graph = rows * (4 * dim + 16 * m + 64) * 1.3  # vectors, both layers' links, tuple overhead, slack
    current = one(db, "SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'")[0]
    memory = int(min(max(graph, current), max(BUILD_MEMORY_CAP, current)))
    db.execute("SELECT set_config('maintenance_work_mem', %s, true)", (f"{memory // 1024}kB",))
    for statement in hnsw_statements(m, ef_construction):
        db.execute(statement)


def psycopg_module() -> Any:
    """psycopg, or :class:`~facemetric.core.errors.MissingDependencyError` naming the extra to install."""
    return require("psycopg", "postgres", "a postgresql:// gallery")


def vector_text(vector: np.ndarray) -> str:
    """A float32 vector as pgvector's text form; ``repr`` of each value reads back to the same float32."""
    return "[" + ",".join(repr(x) for x in np.asarray(vector, np.float32).tolist()) + "]"


def vector_of(text: str) -> np.ndarray:
    """The float32 vector of pgvector's text form (``[0.1,0.2]``)."""
    return np.array(text[1:-1].split(","), dtype=np.float32)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def connect(conninfo: str, location: str) -> psycopg.Connection:
    """An autocommit connection to ``conninfo`` (printed as ``location``); :class:`GalleryError` if none."""
    psycopg = psycopg_module()
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, application_name="facemetric")
    except psycopg.Error as exc:
        raise GalleryError(
            f"{location}: cannot connect to PostgreSQL ({first_line(exc)}); check the URL "
            "(postgresql://user[:password]@host[:port]/database) and that the server runs and accepts this user"
        ) from None


def one(db: psycopg.Connection, query: str, params: Any = None) -> tuple[Any, ...]:
    """The one row ``query`` gives (of the ``gallery`` table, or an aggregate)."""
    row = db.execute(query, params).fetchone()
    if row is None:
        raise GalleryError(
            f"the gallery's {SCHEMA}.gallery row is missing: the database is damaged; restore it from a backup"
        )
    return row


def has_gallery(db: psycopg.Connection) -> bool:
    return db.execute(f"SELECT to_regclass('{SCHEMA}.gallery')").fetchone() != (None,)


def pgvector_version(db: psycopg.Connection) -> tuple[int, ...]:
    row = db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return tuple(int(p) for p in re.findall(r"\d+", row[0])[:3]) if row else ()


def enable_pgvector(db: psycopg.Connection, location: str) -> None:
    """``CREATE EXTENSION vector`` if it may, and refuse a pgvector without HNSW; :class:`GalleryError` says
    what a superuser must do."""
    psycopg = psycopg_module()
    try:
        with db.transaction():  # a savepoint: the error below is ours to word
            db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise GalleryError(
            f"{location}: the pgvector extension cannot be enabled ({first_line(exc)}); install pgvector on "
            "the server (https://github.com/pgvector/pgvector) and run `CREATE EXTENSION vector;` in this "
            "database as a superuser, or use a database where it is enabled"
        ) from None
    version = pgvector_version(db)
    if version < MIN_PGVECTOR:
        raise GalleryError(
            f"{location}: pgvector {'.'.join(map(str, version))} has no HNSW index; update it to 0.5.0 or later "
            "(`ALTER EXTENSION vector UPDATE;` once the server has the new version)"
        )


def create_tables(
    db: psycopg.Connection, embedder: EmbedderInfo, keep_faces: bool, m: int = 16, ef_construction: int = 64
) -> None:
    """The schema, its tables and indexes (HNSW built with ``m`` and ``ef_construction``), and the gallery
    row of an empty gallery for ``embedder`` (inside the caller's transaction)."""
    dim = embedder.dim
    statements = [
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"""CREATE TABLE {SCHEMA}.gallery (
            one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), format TEXT NOT NULL, embedder TEXT NOT NULL,
            thresholds TEXT NOT NULL, generation BIGINT NOT NULL,
            identities BIGINT NOT NULL, images BIGINT NOT NULL, keep_faces BOOLEAN NOT NULL DEFAULT FALSE)""",
        f"""CREATE TABLE {SCHEMA}.identities (
            id BIGSERIAL PRIMARY KEY, name TEXT UNIQUE NOT NULL, created DOUBLE PRECISION NOT NULL,
            images INTEGER NOT NULL DEFAULT 0, template vector({dim}))""",
        f"""CREATE TABLE {SCHEMA}.images (
            id BIGSERIAL PRIMARY KEY,
            identity_id BIGINT NOT NULL REFERENCES {SCHEMA}.identities(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL, source TEXT NOT NULL, detection TEXT NOT NULL,
            embedding vector({dim}) NOT NULL, created DOUBLE PRECISION NOT NULL, face BYTEA,
            UNIQUE (identity_id, sha256))""",
        f"CREATE INDEX identities_by_images ON {SCHEMA}.identities (images)",  # the largest identity, for search depth
        *hnsw_statements(m, ef_construction),
    ]
    for statement in statements:
        db.execute(statement)
    db.execute(
        f"INSERT INTO {SCHEMA}.gallery (format, embedder, thresholds, generation, identities, images, keep_faces) "
        "VALUES (%s, %s, %s, 0, 0, 0, %s)",
        (FORMAT, json.dumps(embedder.as_dict()), StoredThresholds().to_json(), keep_faces),
    )
