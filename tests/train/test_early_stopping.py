"""Early stopping ends a run after ``patience`` validations without improvement, and resumes where it was."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from facemetric.core.errors import ConfigError
from facemetric.train.callbacks import build_callback
from facemetric.train.callbacks.early_stopping import EarlyStopping


def _trainer(epoch: int, **val: float) -> SimpleNamespace:
    return SimpleNamespace(epoch=epoch, metrics={"val": val}, should_stop=False)


def _run(stopper: EarlyStopping, values: list[float], metric: str = "accuracy") -> int | None:
    """The epoch after which ``stopper`` stops a run whose validations give ``values`` (None: it never does)."""
    for epoch, value in enumerate(values, start=1):
        trainer = _trainer(epoch, **{metric: value})
        stopper.on_epoch_end(trainer, {})  # type: ignore[arg-type]
        if trainer.should_stop:
            return epoch
    return None


def test_stops_after_patience_validations_without_improvement() -> None:
    assert _run(EarlyStopping(patience=2), [0.70, 0.75, 0.74, 0.75, 0.90]) == 4  # 0.74, then 0.75 (not above)
    assert _run(EarlyStopping(patience=3), [0.70, 0.75, 0.74, 0.75, 0.90]) is None  # improved in time
    # an improvement smaller than min_delta does not count
    assert _run(EarlyStopping(patience=2, min_delta=0.02), [0.70, 0.71, 0.715, 0.80]) == 3


def test_eer_improves_downwards_and_epochs_without_validation_are_not_counted() -> None:
    assert _run(EarlyStopping(patience=1, metric="eer"), [0.30, 0.20, 0.25], metric="eer") == 3
    stopper = EarlyStopping(patience=1)
    for epoch in (1, 2, 3):  # no validation these epochs (train.val_every): nothing to judge
        trainer = SimpleNamespace(epoch=epoch, metrics={}, should_stop=False)
        stopper.on_epoch_end(trainer, {})  # type: ignore[arg-type]
        assert not trainer.should_stop and stopper.best is None


def test_state_survives_a_resume() -> None:
    first = EarlyStopping(patience=3)
    assert _run(first, [0.80, 0.79, 0.78]) is None
    resumed = EarlyStopping(patience=3)
    resumed.load_state_dict(first.state_dict())
    assert _run(resumed, [0.78]) == 1  # the third validation without improvement, counted across the resume


def test_options_are_checked_where_the_config_names_them() -> None:
    assert isinstance(build_callback("early_stopping", patience=2), EarlyStopping)
    with pytest.raises(ConfigError, match="patience must be >= 1"):
        build_callback("early_stopping", where="train.callbacks.0", patience=0)
    with pytest.raises(ConfigError, match="metric must be accuracy"):
        build_callback("early_stopping", where="train.callbacks.0", metric="loss")
