"""``train.loggers: [mlflow, wandb]``: a real run's params, metrics and artifacts, read back with each
library's own API (MLflow's client on a local SQLite store; W&B's offline run file through its datastore)."""

from __future__ import annotations

import csv
import glob
import json
from pathlib import Path

import pytest

from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
from facemetric.train.build import build_run
from facemetric.train.callbacks.tracking import flat_params, metric_name, tracked_runs
from tiny_run import tiny_overrides


def _cfg(data: Path, out: Path, store: Path, loggers: str):
    return load_config(
        None,
        [
            *tiny_overrides(data, out),
            f"train.loggers={loggers}",
            f"train.tracking.mlflow_uri=sqlite:///{store / 'mlflow.db'}",
            "train.tracking.experiment=test-tracking",
            "train.tracking.wandb_mode=offline",
            "loss.options={scale: 16.0, margin: 0.3}",
        ],
    )


@pytest.fixture
def quiet_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B's caches and staging under the test's folder, nothing in the home folder, no network."""
    for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_helpers() -> None:
    assert flat_params({"loss": {"name": "arcface", "options": {"scale": 32}}, "train": {"loggers": ["mlflow"]}}) == {
        "loss.name": "arcface",
        "loss.options.scale": "32",
        "train.loggers": '["mlflow"]',
    }
    assert metric_name("val", "tar@far=1e-03") == "val/tar_at_far_1e-03"


def test_mlflow_run_has_params_metrics_and_artifacts(synthetic_faces: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    cfg = _cfg(synthetic_faces, tmp_path / "run", tmp_path / "mlruns", "[tensorboard, mlflow]")
    result = build_run(cfg).fit()
    where = tracked_runs(tmp_path / "run")["mlflow"]
    client = MlflowClient(where["uri"])
    run = client.get_run(where["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"
    assert run.data.params["loss.name"] == "arcface"
    assert run.data.params["loss.options.margin"] == "0.3"
    assert run.data.params["sampler.p"] == "4"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/step_loss")]
    assert steps == list(range(1, result.global_step + 1))  # every step's loss
    with open(tmp_path / "run" / "train.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    epoch_losses = [m.value for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert epoch_losses == pytest.approx(losses)  # the same numbers as the run folder's log
    accuracy = client.get_metric_history(run.info.run_id, "val/accuracy")
    assert result.val is not None and result.val.verification is not None
    assert accuracy[-1].value == pytest.approx(result.val.verification.accuracy)
    assert accuracy[-1].step == result.global_step
    assert "val/map_at_r" in run.data.metrics and "val/tar_at_far_1e-03" in run.data.metrics
    files = {a.path for folder in ("checkpoint", "run") for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"checkpoint/best.pt", "run/config.yaml", "run/train.csv", "run/val.csv"} <= files
    local = client.download_artifacts(run.info.run_id, "checkpoint/best.pt", str(tmp_path / "down"))
    assert Path(local).read_bytes() == (tmp_path / "run" / "best.pt").read_bytes()


def test_resumed_run_continues_the_same_mlflow_run(synthetic_faces: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    cfg = _cfg(synthetic_faces, tmp_path / "run", tmp_path / "mlruns", "[mlflow]")
    cfg.train.epochs = 1
    build_run(cfg).fit()
    first = tracked_runs(tmp_path / "run")["mlflow"]["run_id"]
    cfg.train.epochs = 2
    result = build_run(cfg, resume=True).fit()
    where = tracked_runs(tmp_path / "run")["mlflow"]
    assert where["run_id"] == first
    client = MlflowClient(where["uri"])
    steps = [m.step for m in client.get_metric_history(first, "train/step_loss")]
    assert steps == list(range(1, result.global_step + 1))  # one run, both parts, no step twice
    assert client.get_run(first).info.status == "FINISHED"


def _wandb_records(run_dir: Path) -> dict[str, list]:
    (path,) = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    return _records(path)


def _records(path: str) -> dict[str, list]:
    """The records of a W&B run file, read with W&B's own datastore reader and protobuf messages."""
    from wandb.proto import wandb_internal_pb2 as pb
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    store.open_for_scan(path)
    records: dict[str, list] = {}
    while (data := store.scan_data()) is not None:
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        records.setdefault(kind, []).append(getattr(record, kind))
    return records


def test_wandb_offline_run_has_config_metrics_and_artifacts(
    synthetic_faces: Path, tmp_path: Path, quiet_wandb: None
) -> None:
    cfg = _cfg(synthetic_faces, tmp_path / "run", tmp_path / "mlruns", "[wandb]")
    result = build_run(cfg).fit()
    where = tracked_runs(tmp_path / "run")["wandb"]
    assert where["mode"] == "offline"
    records = _wandb_records(tmp_path / "run")
    (run,) = records["run"]
    assert run.run_id == where["run_id"] and run.project == "test-tracking" and run.display_name == "run"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["loss"]["name"] == "arcface" and config["sampler"]["p"] == 4
    history = [
        {i.nested_key[0] if i.nested_key else i.key: json.loads(i.value_json) for i in h.item}
        for h in records["history"]
    ]
    step_losses = [h["train/step_loss"] for h in history if "train/step_loss" in h]
    assert len(step_losses) == result.global_step
    accuracy = [h["val/accuracy"] for h in history if "val/accuracy" in h]
    assert result.val is not None and result.val.verification is not None
    assert accuracy[-1] == pytest.approx(result.val.verification.accuracy)
    artifacts = {a.type: {c.path for c in a.manifest.contents} for a in records["artifact"]}
    assert artifacts["model"] == {"best.pt"}
    assert {"config.yaml", "train.csv", "val.csv"} <= artifacts["run-files"]
    assert records["exit"][0].exit_code == 0


def test_a_missing_tracker_library_is_a_clear_error(synthetic_faces: Path, tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"wandb is not installed.*pip install 'facemetric\[wandb\]'"):
        build_run(_cfg(synthetic_faces, tmp_path / "run", tmp_path / "mlruns", "[wandb]"))
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_report_files_reach_both_tracked_runs(synthetic_faces: Path, tmp_path: Path, quiet_wandb: None) -> None:
    """What ``facemetric report RUN`` does after writing the report: the page goes to the run's trackers."""
    from mlflow.tracking import MlflowClient

    from facemetric.train.callbacks.tracking import attach_files

    cfg = _cfg(synthetic_faces, tmp_path / "run", tmp_path / "mlruns", "[mlflow, wandb]")
    cfg.train.epochs = 1
    build_run(cfg).fit()
    page = tmp_path / "report.html"
    page.write_text("<html>report</html>")
    assert attach_files(tmp_path / "run", [page]) == ["mlflow", "wandb"]
    where = tracked_runs(tmp_path / "run")
    client = MlflowClient(where["mlflow"]["uri"])
    assert [a.path for a in client.list_artifacts(where["mlflow"]["run_id"], "report")] == ["report/report.html"]
    reopened = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*"))
    assert len(reopened) == 2  # the run, and its reopening (same id) that carries the report
    found = []
    for folder in reopened:
        (path,) = glob.glob(f"{folder}/run-*.wandb")
        for artifact in _records(path).get("artifact", []):
            found.append((artifact.run_id, artifact.type, [c.path for c in artifact.manifest.contents]))
    assert (where["wandb"]["run_id"], "report", ["report.html"]) in found
