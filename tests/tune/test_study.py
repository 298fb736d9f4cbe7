"""A tiny study end to end: grid mode visits exactly the grid, pruning stops trials, an interrupted study
resumes without repeating finished trials, a diverging trial is failed with its reason, bad keys are clear."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import optuna
import pytest

from facemetric.cli import main
from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError
from facemetric.train.trainer import Trainer
from facemetric.tune import TuneSettings, parse_space, tune
from tiny_run import tiny_overrides


def _base(data: Path, **changes: object) -> dict:
    overrides = [
        *tiny_overrides(data, batches=2),
        "data.workers=0",
        "train.val_every=1",
        "train.loggers=[]",
        "model.embedding_dim=32",
    ] + [f"{k}={json.dumps(v)}" for k, v in changes.items()]
    return load_config(None, overrides).to_dict()


def _settings(data: Path, study: Path, params: list[str], **kwargs: object) -> TuneSettings:
    base = kwargs.pop("base", None) or _base(data)
    return TuneSettings(base=base, params=parse_space(params), study_dir=study, progress=False, **kwargs)  # type: ignore[arg-type]


def _trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="facemetric", storage=f"sqlite:///{study / 'study.db'}").get_trials()


def test_grid_visits_exactly_the_grid(synthetic_faces: Path, tmp_path: Path) -> None:
    params = ["optim.lr=choice(0.001, 0.003)", "sampler.k=int(2,3)"]
    result = tune(_settings(synthetic_faces, tmp_path / "grid", params, sampler="grid", pruner="none", seed=1))
    trials = _trials(tmp_path / "grid")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    visited = sorted((t.params["optim.lr"], t.params["sampler.k"]) for t in trials)
    assert visited == sorted(itertools.product([0.001, 0.003], [2, 3]))
    for t in trials:  # each trial is a normal run folder trained with its values
        cfg = load_config(Path(t.user_attrs["run"]) / "config.yaml")
        assert (cfg.optim.lr, cfg.sampler.k) == (t.params["optim.lr"], t.params["sampler.k"])
    best = load_config(result.best_config)  # ready for `facemetric train`
    winner = max(trials, key=lambda t: t.value)
    assert (best.optim.lr, best.sampler.k) == (winner.params["optim.lr"], winner.params["sampler.k"])
    assert result.best_value == pytest.approx(winner.value)
    summary = json.loads((tmp_path / "grid" / "tune.json").read_text())
    assert summary["counts"] == {"COMPLETE": 4}
    assert all(t["cpu_seconds"] > 0 and t["seconds"] > 0 for t in summary["trials"])
    page = (tmp_path / "grid" / "report.html").read_text()
    assert "optimisation history" in page and page.count("data:image/png;base64,") >= 4
    # the study is complete: running the command again trains nothing more
    again = tune(_settings(synthetic_faces, tmp_path / "grid", params, sampler="grid", pruner="none", seed=1))
    assert len(_trials(tmp_path / "grid")) == 4 and again.best_trial == result.best_trial


def test_pruned_trials_stop_after_the_epoch_the_pruner_judged(synthetic_faces: Path, tmp_path: Path) -> None:
    pruner = optuna.pruners.ThresholdPruner(lower=2.0)  # no accuracy reaches 2: every trial is pruned at once
    tune(_settings(synthetic_faces, tmp_path / "p", ["optim.lr=log(1e-3,1e-2)"], trials=2, pruner=pruner, seed=0))
    trials = _trials(tmp_path / "p")
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    for t in trials:
        assert t.user_attrs["pruned_at_epoch"] == 1
        rows = (Path(t.user_attrs["run"]) / "train.csv").read_text().splitlines()
        assert len(rows) == 2  # header + epoch 1 of 2: the run stopped, its logs and checkpoint written
        assert (Path(t.user_attrs["run"]) / "last.pt").is_file()
        assert list(t.intermediate_values) == [1]


def test_interrupted_study_resumes_without_repeating_finished_trials(
    synthetic_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "s"
    settings = _settings(synthetic_faces, study, ["optim.lr=log(1e-3,1e-2)"], trials=3, pruner="none", seed=0)
    original, fits = Trainer.train_step, []

    def step(self: Trainer, x, y):  # Ctrl-C in the middle of the second trial
        if self.global_step == 0:
            fits.append(1)
        if len(fits) == 2 and self.global_step == 1:
            raise KeyboardInterrupt
        return original(self, x, y)

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(KeyboardInterrupt):
        tune(settings)
    monkeypatch.setattr(Trainer, "train_step", original)
    first = _trials(study)
    assert [t.state.name for t in first] == ["COMPLETE", "FAIL"]
    done = Path(first[0].user_attrs["run"]) / "summary.json"
    stamp = done.stat().st_mtime_ns

    tune(_settings(synthetic_faces, study, ["optim.lr=log(1e-3,1e-2)"], trials=3, pruner="none", seed=0))
    trials = _trials(study)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert done.stat().st_mtime_ns == stamp  # the finished trial was not trained again
    assert trials[0].value == first[0].value
    assert trials[2].user_attrs["retry_of"] == 1  # the interrupted trial again, with its values
    assert trials[2].params == first[1].params


def test_a_diverging_trial_is_failed_with_its_reason(synthetic_faces: Path, tmp_path: Path) -> None:
    params = ["optim.lr=choice(0.002, 1e30)"]
    tune(_settings(synthetic_faces, tmp_path / "d", params, sampler="grid", pruner="none", seed=0))
    by_lr = {t.params["optim.lr"]: t for t in _trials(tmp_path / "d")}
    assert by_lr[0.002].state.name == "COMPLETE"
    assert by_lr[1e30].state.name == "FAIL"
    assert "loss became nan" in by_lr[1e30].user_attrs["failed_reason"].lower()
    summary = json.loads((tmp_path / "d" / "tune.json").read_text())
    assert summary["best"]["params"] == {"optim.lr": 0.002}


def test_a_key_the_config_does_not_take_is_refused_before_training(synthetic_faces: Path, tmp_path: Path) -> None:
    base = _base(synthetic_faces, **{"loss.name": "circle", "loss.options": {}})
    with pytest.raises(ConfigError, match=r"--param 'loss.options.gama=log\(8,1024\)'.*gama"):
        tune(_settings(synthetic_faces, tmp_path / "k", ["loss.options.gama=log(8,1024)"], base=base, trials=2))
    with pytest.raises(ConfigError, match="sampler.k"):
        tune(_settings(synthetic_faces, tmp_path / "k", ["sampler.k=int(0,3)"], trials=2))
    assert not (tmp_path / "k" / "trials").exists()


def test_a_study_folder_is_not_reused_for_another_search(synthetic_faces: Path, tmp_path: Path) -> None:
    tune(_settings(synthetic_faces, tmp_path / "s", ["optim.lr=choice(0.002)"], sampler="grid", pruner="none"))
    with pytest.raises(ConfigError, match="different space"):
        tune(_settings(synthetic_faces, tmp_path / "s", ["optim.lr=choice(0.003)"], sampler="grid", pruner="none"))


def test_cli_reports_a_bad_space_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["tune", "--out", str(tmp_path / "x"), "--param", "optim.lr=log(1e-4)"]) == 2
    err = capsys.readouterr().err
    assert "optim.lr=log(1e-4)" in err and "log takes" in err and "Traceback" not in err
