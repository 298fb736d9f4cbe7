"""`torchrun --nproc_per_node=2 -m facemetric train` on ORL: it trains, validates and checkpoints; a rank
killed with SIGKILL stops the run with the last checkpoint whole, and --resume finishes it; a rank
that hangs makes the other stop after train.distributed.timeout_s with a clear message."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from checkpoints import checkpoint_step

pytestmark = pytest.mark.slow

EPOCHS, STEPS_PER_EPOCH = 4, 9  # ORL: 30 training people x 10 photos, 8 x 4 a batch
DEADLINE_S = 240


def _command(shared_data: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "--max-restarts=0",
        "-m",
        "facemetric",
        "train",
        str(Path(__file__).resolve().parents[2] / "configs" / "orl.yaml"),
        "--data",
        str(shared_data / "orl"),
        "--out",
        str(out),
        "--epochs",
        str(EPOCHS),
        "--set",
        "data.image_size=[56, 56]",
        "--set",
        "data.cache_dir=null",
        "--set",
        "train.val_every=2",
        "--set",
        "train.checkpoint_every_steps=3",
        "--set",
        "train.progress=false",
        *extra,
    ]


def _rank_pid(launcher: subprocess.Popen, rank: int) -> int | None:
    """The pid of worker ``rank`` among the launcher's children (torchrun sets RANK in its environment)."""
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
    for pid in children.read_text().split() if children.exists() else []:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return int(pid)
    return None


def _wait_for(check, what: str, proc: subprocess.Popen):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[1][-3000:]}"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no {what} within {DEADLINE_S} s")


def test_killed_rank_then_resume_finishes_the_run(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    launcher = subprocess.Popen(_command(shared_data, out), stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: checkpoint_step(out / "last.pt") >= 3, "checkpoint", launcher)
    pid = _wait_for(lambda: _rank_pid(launcher, 1), "rank 1", launcher)
    os.kill(pid, signal.SIGKILL)
    _, err = launcher.communicate(timeout=DEADLINE_S)
    assert launcher.returncode != 0
    assert "exitcode  : -9" in err  # torchrun names the killed rank and stops the other
    killed_at = checkpoint_step(out / "last.pt")
    assert 3 <= killed_at < EPOCHS * STEPS_PER_EPOCH

    done = subprocess.run(_command(shared_data, out, "--resume"), capture_output=True, text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed from {out / 'last.pt'}" in done.stderr
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["global_step"] == EPOCHS * STEPS_PER_EPOCH and state["world_size"] == 2
    assert len(state["shards"]) == 2  # ArcFace as Partial FC: both ranks' class centres
    assert (out / "val.csv").read_text().count("\n") >= 2


def test_hung_rank_stops_the_other_after_the_timeout(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        _command(shared_data, out, "--set", "train.distributed.timeout_s=10"), stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: checkpoint_step(out / "last.pt") >= 3, "checkpoint", launcher)
    pid = _wait_for(lambda: _rank_pid(launcher, 1), "rank 1", launcher)
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        _, err = launcher.communicate(timeout=DEADLINE_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert launcher.returncode != 0
    assert time.monotonic() - stopped < 10 + 60  # the timeout, then torchrun's shutdown of the hung rank
    assert "another training process died or stopped answering" in err
    assert "--resume" in err
