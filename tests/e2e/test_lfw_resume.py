"""LFW dev-train through the CLI: kill training mid-epoch, resume, finish, evaluate on pairsDevTrain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facemetric.core.checkpoint import load_checkpoint
from facemetric.core.config import load_config
from facemetric.train.build import build_run

pytestmark = pytest.mark.slow

STEPS, EVERY, KILL_AT = 40, 10, 20


def _args(lfw: Path, out: Path, cache: Path) -> list[str]:
    sets = [
        "data.image_size=[48, 48]",
        "data.crop=0.6",
        "data.val_identities=50",
        f"data.cache_dir={cache}",
        f"sampler.batches_per_epoch={STEPS}",
        f"train.checkpoint_every_steps={EVERY}",
        "train.val_every=2",
        "train.progress=false",
    ]
    return ["--data", str(lfw), "--out", str(out), "--epochs", "2"] + [a for s in sets for a in ("--set", s)]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "facemetric", *args]


def test_kill_resume_and_eval(shared_data: Path, tmp_path: Path) -> None:
    lfw, out, cache = shared_data / "lfw-devtrain", tmp_path / "run", tmp_path / "cache"
    args = _args(lfw, out, cache)
    proc = subprocess.Popen(_cli("train", *args), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    killed = False
    for line in proc.stderr:  # kill as soon as the mid-epoch checkpoint at step KILL_AT is on disk
        if "last.pt" in line and f"epoch 0 step {KILL_AT} " in line:
            proc.kill()
            killed = True
            break
    proc.wait(timeout=60)
    assert killed, "training ended before the mid-epoch checkpoint"
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 0 and 0 < state["step_in_epoch"] < STEPS  # mid-epoch
    assert state["global_step"] == state["step_in_epoch"]

    # Resuming restores step counters, weights and optimizer moments exactly.
    overrides = [a for a in args[args.index("--set") :] if a != "--set"]
    cfg = load_config(None, overrides + [f"data.source={lfw}", f"train.out={out}", "train.epochs=2"])
    trainer = build_run(cfg, resume=True).trainer
    assert (trainer.epoch, trainer.step_in_epoch, trainer.global_step) == (
        0,
        state["step_in_epoch"],
        state["global_step"],
    )
    restored = trainer.optimizer.state_dict()["state"]
    assert restored.keys() == state["optimizer"]["state"].keys()
    for key, saved in state["optimizer"]["state"].items():
        assert restored[key].keys() == saved.keys() and "exp_avg" in saved  # AdamW moments
        for name, value in saved.items():
            assert torch.equal(restored[key][name], value), f"optimizer state {key}.{name} not restored"
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, state["model"][name])

    done = subprocess.run(_cli("train", *args, "--resume"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"at epoch 1, step {state['step_in_epoch']} (global step {state['global_step']})" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["global_step"] == 2 * STEPS and summary["epochs"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "train"] == [1, 2]  # each epoch logged once
    assert (out / "tensorboard").is_dir() and (out / "train.csv").exists() and (out / "val.csv").exists()

    ev = subprocess.run(
        _cli(
            "-q",
            "eval",
            "--model",
            str(out / "last.pt"),
            "--pairs",
            str(lfw / "pairsDevTrain.txt"),
            "--data",
            str(lfw / "images"),
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    report = json.loads(ev.stdout)["verification"]  # the JSON summary on stdout
    assert (
        report["num_positive"] + report["num_negative"] == 2200
        and report["folds_from_file"] is False
        and report["n_folds"] == 10
    )
    assert {"accuracy", "auc", "eer", "tar_at_far"} <= report.keys()
    assert set(report["tar_at_far"]) == {"1e-03", "1e-02"}
    assert report["auc"] > 0.55  # a sanity bound: 80 steps at 48 px are far from a trained model
