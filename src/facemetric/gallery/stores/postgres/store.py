"""The gallery store in PostgreSQL with pgvector: one database, any number of API servers.

Chosen by a URL (``postgresql://user[:password]@host[:port]/database``, or ``postgres://``), it
keeps the promises of :class:`~facemetric.gallery.interface.Store` as the SQLite store does, in the
schema ``facemetric`` of that database (its tables: :mod:`facemetric.gallery.stores.postgres.database`).
Searches use the HNSW indexes of both vector columns; ``?search=exact`` in the URL scans exactly
instead (see :mod:`facemetric.gallery.stores.postgres.pgvector_index`).

Every change is one transaction that starts by bumping the generation: that row lock serialises
writers as SQLite's ``BEGIN IMMEDIATE`` does, and a failed request rolls back whole.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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
from facemetric.gallery.stores.postgres.database import (
    FORMAT,
    MAX_DIM,
    SCHEMA,
    build_hnsw,
    connect,
    create_tables,
    enable_pgvector,
    has_gallery,
    hnsw_settings,
    one,
    pgvector_version,
    psycopg_module,
    vector_of,
    vector_text,
)
from facemetric.gallery.stores.postgres.url import split_url
from facemetric.gallery.stores.registry import redact_url
from facemetric.gallery.thresholds import StoredThresholds

if TYPE_CHECKING:
    import psycopg


class PostgresStore(Store):
    """A gallery in a PostgreSQL database (pgvector). One connection per store, serialised by a lock
    and opened again if the server dropped it; any number of processes may open the same gallery."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conninfo, self.search = split_url(url)
        self.location = redact_url(url)
        self._lock = threading.RLock()
        self._db = connect(self.conninfo, self.location)
        try:
            if not has_gallery(self._db):
                raise GalleryError(f"{self.location}: no gallery here; create one with `facemetric gallery init`")
            fmt, embedder, keep_faces = one(self._db, f"SELECT format, embedder, keep_faces FROM {SCHEMA}.gallery")
            if fmt != FORMAT:
                raise GalleryError(f"{self.location} is not a facemetric gallery (format {fmt!r}, expected {FORMAT!r})")
            self.pgvector = pgvector_version(self._db)
            self.keep_faces = bool(keep_faces)
            self.embedder = EmbedderInfo.from_dict(json.loads(embedder), self.location)
            self.hnsw = hnsw_settings(self._db)
            asked = (self.search.m or self.hnsw[0], self.search.ef_construction or self.hnsw[1])
            if asked != self.hnsw:
                raise GalleryError(
                    f"{self.location}: its HNSW index was built with m={self.hnsw[0]}, "
                    f"ef_construction={self.hnsw[1]}, not the URL's m={asked[0]}, ef_construction={asked[1]}; "
                    "the build settings are chosen when a gallery is made: drop them from the URL, or export the "
                    "gallery and import it into a new one made with them"
                )
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def exists(cls, url: str) -> bool:
        """Whether the database of ``url`` holds a gallery."""
        conninfo, _ = split_url(url)
        with connect(conninfo, redact_url(url)) as db:
            return has_gallery(db)

    @classmethod
    def create(cls, url: str, embedder: EmbedderInfo, keep_faces: bool = False) -> PostgresStore:
        """Create an empty gallery for ``embedder`` in the database of ``url`` (pgvector enabled there if
        it is not; each enrolled face kept when ``keep_faces``); refuses a database that holds one already.
        All of it or nothing: one transaction."""
        psycopg = psycopg_module()
        location = redact_url(url)
        if not 1 <= embedder.dim <= MAX_DIM:
            raise GalleryError(
                f"{embedder.name} makes {embedder.dim}-d embeddings; a PostgreSQL gallery indexes at most "
                f"{MAX_DIM} dimensions (pgvector's HNSW): use a folder (SQLite) gallery for this model"
            )
        exists = GalleryError(f"{location}: a gallery already exists in this database; open it, or choose another")
        with connect(split_url(url)[0], location) as db:
            try:
                with db.transaction():
                    if has_gallery(db):
                        raise exists
                    enable_pgvector(db, location)
                    create_tables(db, embedder, keep_faces, *split_url(url)[1].build())
            except (psycopg.errors.DuplicateTable, psycopg.errors.UniqueViolation):  # created meanwhile by another
                raise exists from None
        return cls(url)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ internals

    def _connection(self) -> psycopg.Connection:
        """The connection, opened again when the server dropped it (a restart, an idle timeout)."""
        if self._db.closed or self._db.broken:
            self._db = connect(self.conninfo, self.location)
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

    def thresholds(self) -> StoredThresholds:
        return StoredThresholds.from_json(self._value("thresholds"), self.location)

    def identities(self) -> list[Identity]:
        with self._lock:
            rows = (
                self._connection()
                .execute(f'SELECT name, images, created FROM {SCHEMA}.identities ORDER BY name COLLATE "C"')
                .fetchall()
            )
        return [Identity(name=n, images=c, created=t) for n, c, t in rows]

    def has_identity(self, name: str) -> bool:
        with self._lock:
            found = self._connection().execute(f"SELECT 1 FROM {SCHEMA}.identities WHERE name = %s", (name,))
            return found.fetchone() is not None

    def enrolled_hashes(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._connection().execute(f"SELECT sha256 FROM {SCHEMA}.images")}

    def snapshot(self) -> Snapshot:
        with self.reading() as db:
            generation = int(one(db, f"SELECT generation FROM {SCHEMA}.gallery")[0])
            rows = db.execute(
                f"SELECT m.id, i.name, m.embedding::text FROM {SCHEMA}.images m "
                f"JOIN {SCHEMA}.identities i ON i.id = m.identity_id ORDER BY m.id"
            ).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.zeros((len(rows), self.embedder.dim), np.float32)
        for k, row in enumerate(rows):
            vectors[k] = vector_of(row[2])
        return Snapshot(generation, ids, [r[1] for r in rows], vectors)

    def sample_images(self, count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
        """As the store interface says: the image ids are read, then only the rows drawn."""
        with self.reading() as db:
            ids = np.array([r[0] for r in db.execute(f"SELECT id FROM {SCHEMA}.images ORDER BY id")], np.int64)
            drawn = np.random.default_rng(seed).permutation(ids)[: max(0, int(count))].tolist()
            rows = db.execute(
                f"SELECT i.name, m.embedding::text FROM {SCHEMA}.images m "
                f"JOIN {SCHEMA}.identities i ON i.id = m.identity_id WHERE m.id = ANY(%s)",
                (drawn,),
            ).fetchall()
        vectors = np.array([vector_of(r[1]) for r in rows], np.float32).reshape(len(rows), self.embedder.dim)
        return [r[0] for r in rows], vectors

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

    def enroll(self, name: str, items: list[Enrolment]) -> EnrollResult:
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
        return EnrollResult(name=name, added=added, duplicates=len(items) - added)

    def remove(self, name: str) -> int:
        name = validate_name(name)
        with self._write() as db:
            row = db.execute(f"SELECT id, images FROM {SCHEMA}.identities WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise UnknownIdentityError(f"{name!r} is not enrolled in {self.location}")
            db.execute(f"DELETE FROM {SCHEMA}.identities WHERE id = %s", (row[0],))  # its images go with it
            db.execute(f"UPDATE {SCHEMA}.gallery SET identities = identities - 1, images = images - %s", (row[1],))
        return int(row[1])

    def set_thresholds(self, thresholds: StoredThresholds) -> None:
        with self._write() as db:
            db.execute(f"UPDATE {SCHEMA}.gallery SET thresholds = %s", (thresholds.to_json(),))

    # ------------------------------------------------------------------ export, restore

    def export(self, batch: int = 1000) -> Iterator[StoredIdentity]:
        dim = self.embedder.dim
        with connect(self.conninfo, self.location) as reader, reader.transaction():  # own snapshot, no lock
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
                    vector = vector_of(row[4]).reshape(dim)
                    face = None if row[6] is None else bytes(row[6])
                    images[row[0]].append(StoredImage(row[1], row[2], json.loads(row[3]), vector, row[5], face))
                for key, name, created in chunk:
                    yield StoredIdentity(name, created, images[key])

    def restore(self, identities: Iterable[StoredIdentity], thresholds: StoredThresholds | None = None) -> Restored:
        """As the store interface says; rows are streamed with COPY and the HNSW indexes built once at the end."""
        people = images = 0
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
                    people += 1
                    images += len(identity.images)
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
            db.execute(f"UPDATE {SCHEMA}.gallery SET identities = %s, images = %s", (people, images))
            if thresholds is not None:
                db.execute(f"UPDATE {SCHEMA}.gallery SET thresholds = %s", (thresholds.to_json(),))
            build_hnsw(db, *self.hnsw, images + people, self.embedder.dim)  # as the gallery was made
        return Restored(people, images)

    def destroy(self) -> None:
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        self.close()
