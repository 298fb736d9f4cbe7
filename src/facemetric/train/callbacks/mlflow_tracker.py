"""``train.loggers: [mlflow]``: the run in MLflow (``pip install 'facemetric[mlflow]'``).

The tracking URI is ``train.tracking.mlflow_uri``, else ``$MLFLOW_TRACKING_URI``, else a local store
in the current folder: ``sqlite:///mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts`` (MLflow's
plain-folder store is frozen upstream; a SQLite file is its local store now). See it with
``mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db``. Metrics go in batches, once per epoch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from facemetric.core.config import Config
from facemetric.train.callbacks.registry import register_callback
from facemetric.train.callbacks.tracking import TrackerCallback

LOCAL_STORE = Path("mlruns")
BATCH = 1000  # MLflow's most metrics per log_batch call


def tracking_uri(configured: str | None) -> str:
    """The URI a run logs to (see the module docstring); the local store's folder is made."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    LOCAL_STORE.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(LOCAL_STORE / 'mlflow.db').resolve()}"


def experiment_id(client: Any, name: str, uri: str) -> str:
    """The experiment called ``name``, created on first use (in the local store, artifacts beside the db)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///") :]).parent / "artifacts").resolve().as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:  # another process created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


@register_callback("mlflow")
class MlflowTracker(TrackerCallback):
    """Params, metrics (per step and per epoch) and artifacts of the run in MLflow."""

    name = "mlflow"
    requires = "mlflow"

    @classmethod
    def attach(cls, where: dict[str, Any], files: list[Path], folder: str, run_dir: Path) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(where["uri"])
        for path in files:
            client.log_artifact(where["run_id"], str(path), artifact_path=folder)

    def __init__(self, cfg: Config, out: str | Path) -> None:
        super().__init__(cfg, out)
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri(self.tracking.mlflow_uri)
        self.client = MlflowClient(self.uri)

    @property
    def _run(self) -> str:
        assert self.run_id is not None, "the run has not started"
        return self.run_id

    def where(self) -> dict[str, Any]:
        return {"uri": self.uri, "experiment": self.tracking.experiment}

    def _start(self, resume_id: str | None) -> str:
        if resume_id is not None:
            self.client.update_run(resume_id, status="RUNNING")
            return resume_id
        tags = {"facemetric.run_folder": str(self.out.resolve()), **self.tracking.tags}
        run = self.client.create_run(
            experiment_id(self.client, self.tracking.experiment, self.uri), run_name=self.run_name, tags=tags
        )
        return str(run.info.run_id)

    def _params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in params.items()]  # MLflow's longest parameter value
        for i in range(0, len(items), 100):  # MLflow's most parameters per log_batch call
            self.client.log_batch(self._run, params=items[i : i + 100])

    def _metrics(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for step, values in rows for k, v in values.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self._run, metrics=items[i : i + BATCH])

    def _artifacts(self, files: list[tuple[Path, str]]) -> None:
        for path, folder in files:
            self.client.log_artifact(self._run, str(path), artifact_path=folder)

    def _finish(self, status: str) -> None:
        self.client.set_terminated(self._run, status=status)
