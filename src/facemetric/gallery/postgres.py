"""The gallery store in PostgreSQL with pgvector: one database, any number of API servers.

Chosen by a URL (``postgresql://user[:password]@host[:port]/database``, or ``postgres://``), it
keeps the promises of :class:`~facemetric.gallery.interface.Store` as the SQLite store does, in the
schema ``facemetric`` of that database:

* ``gallery``: one row with the format, the embedder (name, fingerprint, dimension, how to load it),
  the calibrated thresholds, a ``generation`` counter bumped by every change, and the counts of
  identities and images (kept in the same transactions, so no request counts rows);
* ``identities``: one row per person (unique name), their image count and ``template``, the mean of
  their embeddings (cosine ignores its length, so it needs no normalising);
* ``images``: one row per enrolled photo: content hash (unique per person), source, detection record
  and the embedding as a pgvector ``vector(d)``.

Both vector columns carry an HNSW index with cosine distance (``vector_cosine_ops``): searches are
sub-linear in the gallery's size; ``?search=exact`` in the URL scans exactly instead (see
:mod:`facemetric.gallery.pgvector_index`).

Every change is one transaction that starts by bumping the generation: that row lock serialises
writers as SQLite's ``BEGIN IMMEDIATE`` does, and a failed request rolls back whole. psycopg is
imported only here, when a PostgreSQL gallery is opened: ``pip install 'facemetric[postgres]'``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import numpy as np

from facemetric.core.errors import require
from facemetric.gallery.interface import (
    EmbedderInfo,
    Enrolment,
    GalleryError,
    Store,
    StoredIdentity,
    StoredImage,
    UnknownIdentityError,
    validate_name,
)

if TYPE_CHECKING:
    import psycopg

FORMAT = "facemetric-gallery-postgresql/1"
SCHEMA = "facemetric"
MAX_DIM = 2000  # pgvector's HNSW indexes vectors of at most 2,000 dimensions
MIN_PGVECTOR = (0, 5, 0)  # HNSW arrived in pgvector 0.5.0
SEARCH_MODES = ("hnsw", "exact")
EF_SEARCH_RANGE = (1, 1000)  # pgvector's limits of hnsw.ef_search
# the smallest HNSW candidate list a search uses (deeper searches use more). Not pgvector's 40: face
# embeddings of different people are nearly orthogonal, where HNSW needs long lists to find the nearest
# (recall@1 against exact search at 100,000 people, 128-d: 0.56 at 40, 0.77 at 100, 0.99 at 400; 512-d: 0.37,
# 0.61, 0.94; BENCHMARKS.md)
EF_SEARCH_DEFAULT = 400


def _psycopg() -> Any:
    return require("psycopg", "postgres", "a postgresql:// gallery")


def redact(url: str) -> str:
    """``url`` fit to print: its password (in the user part or a ``password=`` parameter) hidden."""
    url = re.sub(r"(://[^:/@?#]*:)[^/?#]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url)


@dataclass(frozen=True)
class SearchOptions:
    """facemetric's own URL parameters: ``search=hnsw|exact`` and ``ef_search=N`` (HNSW's candidate list:
    larger finds the true nearest more often, and costs more; at least :data:`EF_SEARCH_DEFAULT`)."""

    exact: bool = False
    ef_search: int | None = None


def split_url(url: str) -> tuple[str, SearchOptions]:
    """(the URL libpq is given, the search options): facemetric's own parameters taken out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    mine = {key: value for key, value in query if key in ("search", "ef_search")}
    mode = mine.get("search", "hnsw")
    if mode not in SEARCH_MODES:
        raise GalleryError(
            f"{redact(url)}: search={mode!r} is not a search mode; use search=hnsw (approximate, the default) "
            "or search=exact"
        )
    ef = mine.get("ef_search")
    if ef is not None and (not ef.isdigit() or not EF_SEARCH_RANGE[0] <= int(ef) <= EF_SEARCH_RANGE[1]):
        raise GalleryError(
            f"{redact(url)}: ef_search={ef!r} must be a whole number from {EF_SEARCH_RANGE[0]} to "
            f"{EF_SEARCH_RANGE[1]} (pgvector's limits; default {EF_SEARCH_DEFAULT})"
        )
    options = SearchOptions(mode == "exact", None if ef is None else int(ef))
    if not mine:
        return url, options
    rest = urlencode([(k, v) for k, v in query if k not in mine], safe="/", quote_via=quote)  # spaces as %20
    return urlunsplit(parts._replace(query=rest)), options


def vector_text(vector: np.ndarray) -> str:
    """A float32 vector as pgvector's text form; ``repr`` of each value reads back to the same float32."""
    return "[" + ",".join(repr(x) for x in np.asarray(vector, np.float32).tolist()) + "]"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _connect(conninfo: str, location: str) -> psycopg.Connection:
    psycopg = _psycopg()
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, application_name="facemetric")
    except psycopg.Error as exc:
        raise GalleryError(
            f"{location}: cannot connect to PostgreSQL ({_first_line(exc)}); check the URL "
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


def _has_gallery(db: psycopg.Connection) -> bool:
    return db.execute(f"SELECT to_regclass('{SCHEMA}.gallery')").fetchone() != (None,)


def _pgvector_version(db: psycopg.Connection) -> tuple[int, ...]:
    row = db.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return tuple(int(p) for p in re.findall(r"\d+", row[0])[:3]) if row else ()


def _tables(dim: int) -> list[str]:
    return [
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
        *_HNSW,
    ]


# the two vector indexes (dropped while a restore loads many rows, built once after: far faster)
_HNSW = [
    f"CREATE INDEX images_hnsw ON {SCHEMA}.images USING hnsw (embedding vector_cosine_ops)",
    f"CREATE INDEX identities_hnsw ON {SCHEMA}.identities USING hnsw (template vector_cosine_ops)",
]
_UPGRADE = [  # a gallery of the first PostgreSQL store (facemetric 0.4 development) gains what came since
    f"ALTER TABLE {SCHEMA}.gallery ADD COLUMN IF NOT EXISTS keep_faces BOOLEAN NOT NULL DEFAULT FALSE",
    f"ALTER TABLE {SCHEMA}.images ADD COLUMN IF NOT EXISTS face BYTEA",
]


class PostgresStore(Store):
    """A gallery in a PostgreSQL database (pgvector). One connection per store, serialised by a lock
    and opened again if the server dropped it; any number of processes may open the same gallery."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conninfo, self.search = split_url(url)
        self.location = redact(url)
        self._lock = threading.RLock()
        self._db = _connect(self.conninfo, self.location)
        try:
            if not _has_gallery(self._db):
                raise GalleryError(f"{self.location}: no gallery here; create one with `facemetric gallery init`")
            fmt, embedder = one(self._db, f"SELECT format, embedder FROM {SCHEMA}.gallery")
            if fmt != FORMAT:
                raise GalleryError(f"{self.location} is not a facemetric gallery (format {fmt!r}, expected {FORMAT!r})")
            self.pgvector = _pgvector_version(self._db)
            self._upgrade()
            self.keep_faces = bool(one(self._db, f"SELECT keep_faces FROM {SCHEMA}.gallery")[0])
        except BaseException:
            self._db.close()
            raise
        info = json.loads(embedder)
        self.embedder = EmbedderInfo(info["name"], info["fingerprint"], int(info["dim"]), info["reference"])

    def _upgrade(self) -> None:
        """Add the columns a gallery made before them lacks (checked first: ALTER TABLE locks the table)."""
        found = {
            r[0]
            for r in self._db.execute(
                "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = %s",
                (SCHEMA,),
            )
        }
        if {"gallery.keep_faces", "images.face"} <= found:
            self._db.commit()
            return
        with self._db.transaction():
            for statement in _UPGRADE:
                self._db.execute(statement)

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether the database of ``url`` holds a gallery."""
        conninfo, _ = split_url(url)
        with _connect(conninfo, redact(url)) as db:
            return _has_gallery(db)

    @classmethod
    def create(cls, url: str, embedder: EmbedderInfo, keep_faces: bool = False) -> PostgresStore:
        """Create an empty gallery for ``embedder`` in the database of ``url`` (pgvector enabled there if
        it is not; each enrolled face kept when ``keep_faces``); refuses a database that holds one already.
        All of it or nothing: one transaction."""
        psycopg = _psycopg()
        location = redact(url)
        if not 1 <= embedder.dim <= MAX_DIM:
            raise GalleryError(
                f"{embedder.name} makes {embedder.dim}-d embeddings; a PostgreSQL gallery indexes at most "
                f"{MAX_DIM} dimensions (pgvector's HNSW): use a folder (SQLite) gallery for this model"
            )
        exists = GalleryError(f"{location}: a gallery already exists in this database; open it, or choose another")
        with _connect(split_url(url)[0], location) as db:
            try:
                with db.transaction():
                    if _has_gallery(db):
                        raise exists
                    cls._enable_pgvector(db, location)
                    for statement in _tables(embedder.dim):
                        db.execute(statement)
                    meta = {
                        "name": embedder.name,
                        "fingerprint": embedder.fingerprint,
                        "dim": embedder.dim,
                        "reference": embedder.reference,
                    }
                    db.execute(
                        f"INSERT INTO {SCHEMA}.gallery "
                        "(format, embedder, thresholds, generation, identities, images, keep_faces) "
                        "VALUES (%s, %s, '{}', 0, 0, 0, %s)",
                        (FORMAT, json.dumps(meta), keep_faces),
                    )
            except (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation):  # created meanwhile by another
                raise exists from None
        return cls(url)

    @staticmethod
    def _enable_pgvector(db: psycopg.Connection, location: str) -> None:
        psycopg = _psycopg()
        try:
            with db.transaction():  # a savepoint: the error below is ours to word
                db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            raise GalleryError(
                f"{location}: the pgvector extension cannot be enabled ({_first_line(exc)}); install pgvector on "
                "the server (https://github.com/pgvector/pgvector) and run `CREATE EXTENSION vector;` in this "
                "database as a superuser, or use a database where it is enabled"
            ) from None
        version = _pgvector_version(db)
        if version < MIN_PGVECTOR:
            raise GalleryError(
                f"{location}: pgvector {'.'.join(map(str, version))} has no HNSW index; update it to 0.5.0 or later "
                "(`ALTER EXTENSION vector UPDATE;` once the server has the new version)"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ internals

    def _connection(self) -> psycopg.Connection:
        """The connection, opened again when the server dropped it (a restart, an idle timeout)."""
        if self._db.closed or self._db.broken:
            self._db = _connect(self.conninfo, self.location)
        return self._db

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        """One read-only transaction that sees a single snapshot (REPEATABLE READ), holding the lock."""
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield db

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection]:
        """One write transaction; its first statement bumps the generation, whose row lock queues other
        writers (of every process) until it commits or rolls back."""
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute(f"UPDATE {SCHEMA}.gallery SET generation = generation + 1")
                yield db

    def _value(self, column: str) -> Any:
        with self._lock:
            return one(self._connection(), f"SELECT {column} FROM {SCHEMA}.gallery")[0]

    # ------------------------------------------------------------------ reads

    @property
    def generation(self) -> int:
        return int(self._value("generation"))

    def counts(self) -> tuple[int, int]:
        """(identities, images) enrolled, from the counters kept with every change."""
        with self._lock:
            row = one(self._connection(), f"SELECT identities, images FROM {SCHEMA}.gallery")
        return int(row[0]), int(row[1])

    def thresholds(self) -> dict[str, Any]:
        return json.loads(self._value("thresholds"))

    def identities(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = (
                self._connection()
                .execute(f'SELECT name, images, created FROM {SCHEMA}.identities ORDER BY name COLLATE "C"')
                .fetchall()
            )
        return [{"name": n, "images": c, "created": t} for n, c, t in rows]

    def has_identity(self, name: str) -> bool:
        with self._lock:
            found = self._connection().execute(f"SELECT 1 FROM {SCHEMA}.identities WHERE name = %s", (name,))
            return found.fetchone() is not None

    def enrolled_hashes(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._connection().execute(f"SELECT sha256 FROM {SCHEMA}.images")}

    def snapshot(self) -> tuple[int, np.ndarray, list[str], np.ndarray]:
        with self.reading() as db:
            generation = int(one(db, f"SELECT generation FROM {SCHEMA}.gallery")[0])
            rows = db.execute(
                f"SELECT m.id, i.name, m.embedding::text FROM {SCHEMA}.images m "
                f"JOIN {SCHEMA}.identities i ON i.id = m.identity_id ORDER BY m.id"
            ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.zeros((len(rows), self.embedder.dim), np.float32)
        for k, row in enumerate(rows):
            vectors[k] = np.array(row[2][1:-1].split(","), dtype=np.float32)
        return generation, ids, [r[1] for r in rows], vectors

    def integrity_check(self) -> str:
        """``"ok"``, or which kept count or template disagrees with the rows."""
        problems = []
        with self.reading() as db:
            identities, images = one(db, f"SELECT identities, images FROM {SCHEMA}.gallery")
            real_identities = one(db, f"SELECT count(*) FROM {SCHEMA}.identities")[0]
            real_images = one(db, f"SELECT count(*) FROM {SCHEMA}.images")[0]
            wrong = one(
                db,
                f"SELECT count(*) FROM {SCHEMA}.identities i WHERE template IS NULL OR images < 1 OR images <> "
                f"(SELECT count(*) FROM {SCHEMA}.images m WHERE m.identity_id = i.id)",
            )[0]
        if (identities, images) != (real_identities, real_images):
            problems.append(
                f"counted {identities} identities and {images} images, hold {real_identities} and {real_images}"
            )
        if wrong:
            problems.append(f"{wrong} identities with a wrong image count or no template")
        return "; ".join(problems) or "ok"

    # ------------------------------------------------------------------ writes

    def enroll(self, name: str, items: list[Enrolment]) -> dict[str, Any]:
        name = self.checked_enrolment(name, items)
        now = time.time()
        added = 0
        with self._write() as db:
            row = db.execute(
                f"INSERT INTO {SCHEMA}.identities (name, created) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING "
                "RETURNING id",
                (name, now),
            ).fetchone()
            new = row is not None
            if row is None:  # enrolled before
                row = one(db, f"SELECT id FROM {SCHEMA}.identities WHERE name = %s", (name,))
            identity = row[0]
            for item in items:
                cursor = db.execute(
                    f"INSERT INTO {SCHEMA}.images (identity_id, sha256, source, detection, embedding, created, face) "
                    "VALUES (%s, %s, %s, %s, %s::vector, %s, %s) ON CONFLICT (identity_id, sha256) DO NOTHING",
                    (
                        identity,
                        item.sha256,
                        item.source,
                        json.dumps(item.detection),
                        vector_text(item.embedding),
                        now,
                        item.face if self.keep_faces else None,
                    ),
                )
                added += cursor.rowcount
            if added:
                db.execute(
                    f"UPDATE {SCHEMA}.identities SET images = images + %s, "
                    f"template = (SELECT avg(embedding) FROM {SCHEMA}.images WHERE identity_id = %s) WHERE id = %s",
                    (added, identity, identity),
                )
            db.execute(
                f"UPDATE {SCHEMA}.gallery SET identities = identities + %s, images = images + %s",
                (1 if new else 0, added),
            )
        return {"name": name, "added": added, "duplicates": len(items) - added}

    def remove(self, name: str) -> int:
        name = validate_name(name)
        with self._write() as db:
            row = db.execute(f"SELECT id, images FROM {SCHEMA}.identities WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.location}")
            db.execute(f"DELETE FROM {SCHEMA}.identities WHERE id = %s", (row[0],))  # its images go with it
            db.execute(f"UPDATE {SCHEMA}.gallery SET identities = identities - 1, images = images - %s", (row[1],))
        return int(row[1])

    def set_thresholds(self, thresholds: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(f"UPDATE {SCHEMA}.gallery SET thresholds = %s", (json.dumps(thresholds),))

    # ------------------------------------------------------------------ export, restore

    def export(self, batch: int = 1000) -> Iterator[StoredIdentity]:
        dim = self.embedder.dim
        with _connect(self.conninfo, self.location) as reader, reader.transaction():  # own snapshot, no lock
            reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            people = reader.execute(
                f'SELECT id, name, created FROM {SCHEMA}.identities ORDER BY name COLLATE "C"'
            ).fetchall()
            for start in range(0, len(people), batch):
                chunk = people[start : start + batch]
                images: dict[int, list[StoredImage]] = {p[0]: [] for p in chunk}
                rows = reader.execute(
                    f"SELECT identity_id, sha256, source, detection, embedding::text, created, face "
                    f"FROM {SCHEMA}.images WHERE identity_id = ANY(%s) ORDER BY id",
                    ([p[0] for p in chunk],),
                )
                for row in rows:
                    vector = np.array(row[4][1:-1].split(","), dtype=np.float32).reshape(dim)
                    face = None if row[6] is None else bytes(row[6])
                    images[row[0]].append(StoredImage(row[1], row[2], json.loads(row[3]), vector, row[5], face))
                for key, name, created in chunk:
                    yield StoredIdentity(name, created, images[key])

    def restore(self, identities: Iterable[StoredIdentity], thresholds: dict[str, Any] | None = None) -> dict[str, int]:
        """As the store interface says; rows are streamed with COPY and the HNSW indexes built once at the end."""
        counts = {"identities": 0, "images": 0}
        with self._write() as db:
            if one(db, f"SELECT identities FROM {SCHEMA}.gallery")[0]:
                raise GalleryError(f"{self.location} already holds people: a gallery is restored into an empty one")
            db.execute(f"DROP INDEX {SCHEMA}.images_hnsw")
            db.execute(f"DROP INDEX {SCHEMA}.identities_hnsw")
            db.execute(
                f"CREATE TEMP TABLE restore_images (name TEXT, person_created DOUBLE PRECISION, sha256 TEXT, "
                f"source TEXT, detection TEXT, embedding vector({self.embedder.dim}), created DOUBLE PRECISION, "
                "face BYTEA) ON COMMIT DROP"
            )
            with db.cursor().copy("COPY restore_images FROM STDIN") as photos:  # one COPY per connection at a time
                for identity in identities:
                    name = self.check_restorable(identity)
                    for i in identity.images:
                        photos.write_row(
                            (
                                name,
                                identity.created,
                                i.sha256,
                                i.source,
                                json.dumps(i.detection),
                                vector_text(i.embedding),
                                i.created,
                                i.face if self.keep_faces else None,
                            )
                        )
                    counts["identities"] += 1
                    counts["images"] += len(identity.images)
            db.execute(
                f"INSERT INTO {SCHEMA}.identities (name, created) SELECT name, min(person_created) "
                'FROM restore_images GROUP BY name ORDER BY name COLLATE "C"'
            )
            db.execute(
                f"INSERT INTO {SCHEMA}.images (identity_id, sha256, source, detection, embedding, created, face) "
                f"SELECT i.id, r.sha256, r.source, r.detection, r.embedding, r.created, r.face "
                f"FROM restore_images r JOIN {SCHEMA}.identities i ON i.name = r.name ORDER BY i.id"
            )
            db.execute(
                f"UPDATE {SCHEMA}.identities i SET images = s.n, template = s.mean FROM (SELECT identity_id, "
                f"count(*) AS n, avg(embedding) AS mean FROM {SCHEMA}.images GROUP BY identity_id) s "
                "WHERE s.identity_id = i.id"
            )
            db.execute(
                f"UPDATE {SCHEMA}.gallery SET identities = %s, images = %s", (counts["identities"], counts["images"])
            )
            if thresholds is not None:
                db.execute(f"UPDATE {SCHEMA}.gallery SET thresholds = %s", (json.dumps(thresholds),))
            for statement in _HNSW:
                db.execute(statement)
        return counts

    def destroy(self) -> None:
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        self.close()
