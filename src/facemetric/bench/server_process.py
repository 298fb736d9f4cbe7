"""``facemetric serve`` in a child process, for benchmarks and tests that need a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


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
