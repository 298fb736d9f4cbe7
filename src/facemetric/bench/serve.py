"""Benchmark: ``facemetric serve`` under concurrent clients, and a check that nothing was lost.

    python -m facemetric.bench.serve [--model dlib-resnet] [--data ../shared/data/orl]
                                     [--clients 8] [--requests 500] [--enroll-every 4]

A fresh gallery with ``--model`` is served from a child process (``facemetric serve``, as a
user runs it). ``--clients`` threads each send ``--requests`` requests over HTTP: every
``--enroll-every``-th enrols a new person with one photo of ``--data``, the others identify a
photo. Reported: requests/s over the whole run, p50/p99 latency per operation, the errors; then
the server is stopped and the gallery checked: every acknowledged enrolment present (lost = 0),
``PRAGMA integrity_check`` ok, the saved FAISS index at the store's generation with as many
images. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = np.array(values) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "count": len(values),
    }


def run(embedder: str, data: Path, clients: int, requests: int, enroll_every: int) -> dict:
    import httpx

    from facemetric.bench.server_process import start_server, stop_server
    from facemetric.data.sources import scan_source
    from facemetric.gallery.index import GalleryIndex
    from facemetric.gallery.service import Gallery
    from facemetric.gallery.store import GalleryStore

    photos = [Path(p).read_bytes() for p in scan_source(data).paths]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gallery"
        Gallery.create(folder, embedder).close()
        proc, url = start_server(folder)
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
        stop_server(proc)

        store = GalleryStore(folder / "gallery.db")
        integrity = store.integrity_check()
        index = GalleryIndex(store, folder)
        stored_images = sum(i["images"] for i in store.identities())
        in_sync = index.rebuilds == 0 and index.generation == store.generation and index.n_images == stored_images
        store.close()
    total = clients * requests
    return {
        "benchmark": "serve",
        "embedder": embedder,
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
        "integrity_check": integrity,
        "index_in_sync_without_rebuild": in_sync,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", "--embedder", dest="model", default="dlib-resnet", help="dlib-resnet or a checkpoint / .onnx path"
    )
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "orl"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="requests per client")
    parser.add_argument("--enroll-every", type=int, default=4, help="every N-th request of a client enrols")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.model, Path(args.data), args.clients, args.requests, args.enroll_every), indent=1))


if __name__ == "__main__":
    main()
