"""torchrun across two nodes on one machine: two launchers meeting at a c10d rendezvous (``--nnodes=2
--rdzv-backend=c10d --rdzv-endpoint=localhost:PORT``), one training process each. The run trains the weights of
one process on the same global batches; killing one node stops the other with facemetric's message, and the
same two commands with ``--resume`` finish the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from checkpoints import checkpoint_step
from servers import free_port

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
EPOCHS, STEPS_PER_EPOCH = 3, 9  # ORL: 30 training people x 10 photos, 8 x 4 a batch
DEADLINE_S = 300


def _train(orl: Path, out: Path, *extra: str) -> list[str]:
    """``train`` arguments of a small ORL run with a model without batch norm (``plain_cnn``), in fp32."""
    overrides = [
        "data.image_size=[32, 32]",
        "data.val_identities=10",
        "data.cache_dir=null",
        "data.workers=0",
        "model.name=test_plain_cnn",
        "model.embedding_dim=32",
        "sampler.p=8",
        "sampler.k=4",
        "augment.shift=0.08",
        "augment.saturation=0.2",
        "loss.name=multi_similarity",
        "loss.options={}",
        "train.val_every=3",
        "train.progress=false",
        "train.threads=1",
        "train.amp=false",
        "train.checkpoint_every_steps=2",
        "monitor.enabled=false",
    ]
    sets = [arg for o in overrides for arg in ("--set", o)]
    return ["train", "--data", str(orl), "--out", str(out), "--epochs", str(EPOCHS), *sets, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _node(rank: int, port: int, args: list[str]) -> subprocess.Popen:
    """One node's launcher: torchrun with one process, meeting the other node at localhost:``port``."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        f"--node_rank={rank}",
        "--nproc_per_node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=localhost:{port}",
        "--rdzv-id=facemetric-test",
        f"--rdzv-conf=is_host={int(rank == 0)}",  # node 0 holds the rendezvous store, as the endpoint's machine would
        "--max-restarts=0",
        "-m",
        "plain_cnn",
        *args,
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())


def _two_nodes(args: list[str]) -> tuple[subprocess.Popen, subprocess.Popen]:
    port = free_port()
    return _node(0, port, args), _node(1, port, args)


def _finish(*nodes: subprocess.Popen) -> list[str]:
    errors = [node.communicate(timeout=DEADLINE_S)[1] for node in nodes]
    for node, err in zip(nodes, errors):
        assert node.returncode == 0, err[-3000:]
    return errors


def test_two_nodes_train_the_weights_of_one_process(shared_data: Path, tmp_path: Path) -> None:
    orl = shared_data / "orl"
    _finish(*_two_nodes(_train(orl, tmp_path / "two")))
    one = subprocess.run(
        [sys.executable, "-m", "plain_cnn", *_train(orl, tmp_path / "one")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=DEADLINE_S,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = torch.load(tmp_path / "two" / "last.pt", map_location="cpu", weights_only=False)
    single = torch.load(tmp_path / "one" / "last.pt", map_location="cpu", weights_only=False)
    assert two["world_size"] == 2 and two["global_step"] == single["global_step"] == EPOCHS * STEPS_PER_EPOCH
    for key, value in single["model"].items():
        torch.testing.assert_close(two["model"][key], value, atol=2e-5, rtol=1e-4, msg=key)  # as the 2-process test


def test_a_killed_node_stops_the_other_and_resume_finishes(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = _train(shared_data / "orl", out, "--set", "train.distributed.timeout_s=20")
    first, second = _two_nodes(args)
    deadline = time.monotonic() + DEADLINE_S
    while checkpoint_step(out / "last.pt") < 4:
        assert first.poll() is None and second.poll() is None, "a node ended before its first checkpoints"
        assert time.monotonic() < deadline, "no checkpoint within the deadline"
        time.sleep(0.2)
    # the whole second node at once: its launcher and its training process (torchrun starts it in its own session)
    workers = Path(f"/proc/{second.pid}/task/{second.pid}/children").read_text().split()
    assert workers, "the second node has no training process"
    for pid in [second.pid, *map(int, workers)]:
        os.kill(pid, signal.SIGKILL)
    second.wait(timeout=30)
    _, err = first.communicate(timeout=DEADLINE_S)
    assert first.returncode != 0
    assert "another training process died or stopped answering" in err, err[-3000:]
    assert "--resume" in err
    killed_at = checkpoint_step(out / "last.pt")
    assert 4 <= killed_at < EPOCHS * STEPS_PER_EPOCH

    errors = _finish(*_two_nodes([*args, "--resume"]))
    assert any(f"resumed from {out / 'last.pt'}" in e for e in errors)
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["global_step"] == EPOCHS * STEPS_PER_EPOCH and state["world_size"] == 2
