"""`facemetric serve` with a detector (dlib-resnet on ORL): concurrent clients each get the answer for their own
photo while faces are cut in worker processes and embedded in shared model calls; after ``kill -9`` the
workers leave too."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("dlib")

from facemetric.gallery.service import Gallery  # noqa: E402
from servers import start_server, stop_server  # noqa: E402

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux: read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_each_client_gets_the_answer_for_its_own_photo(shared_data: Path, tmp_path: Path) -> None:
    people = sorted((shared_data / "orl").glob("s*"), key=lambda p: int(p.name[1:]))[:16]
    photos = {p.name: (p / "1.pgm").read_bytes() for p in people}
    Gallery.create(tmp_path / "gallery", "dlib-resnet").close()
    proc, url = start_server(tmp_path / "gallery", "--workers", "2", "--batch-window-ms", "20")
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            for name, photo in photos.items():
                r = http.post("/api/enroll", data={"name": name}, files={"files": ("p.pgm", photo)})
                assert r.status_code == 200, r.text
        wrong: list[str] = []
        names = list(photos)

        def client(c: int) -> None:
            with httpx.Client(base_url=url, timeout=120) as http:
                for i in range(16):
                    name = names[(5 * c + i) % len(names)]  # each client its own order: neighbours differ
                    r = http.post("/api/identify", files={"file": ("p.pgm", photos[name])})
                    top = r.json()["candidates"][0] if r.status_code == 200 else {}
                    if top.get("name") != name or top.get("score", 0) < 0.999:  # the same photo: cosine 1
                        wrong.append(f"client {c} sent {name}, got {r.status_code} {r.text[:200]}")

        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not wrong, wrong[:5]
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, "no detection worker processes"
        if sys.platform.startswith("linux"):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            deadline = time.monotonic() + 30
            while any(_alive(p) for p in workers) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not [p for p in workers if _alive(p)], "detection workers outlived the killed server"
    finally:
        if proc.poll() is None:
            stop_server(proc)
