"""``--param KEY=SPACE``: what each kind means, its grid, and a clear error for every bad string."""

from __future__ import annotations

import optuna
import pytest

from facemetric.tune.space import SpaceError, parse_param, parse_space


def test_kinds_and_their_values() -> None:
    gamma = parse_param("loss.options.gamma=log(8,1024)")
    assert (gamma.key, gamma.kind, gamma.low, gamma.high, gamma.step) == (
        "loss.options.gamma",
        "log",
        8.0,
        1024.0,
        None,
    )
    assert parse_param("sampler.k=int(2,8)").grid() == [2, 3, 4, 5, 6, 7, 8]
    assert parse_param("sampler.k=int(2,8,3)").grid() == [2, 5, 8]
    assert parse_param("loss.options.m=float(0.15,0.35,0.05)").grid() == [0.15, 0.2, 0.25, 0.3, 0.35]
    name = parse_param("loss.name=choice(arcface, cosface, circle)")
    assert name.grid() == ["arcface", "cosface", "circle"]
    size = parse_param("data.image_size=choice([64, 64], [96, 80])")
    assert size.grid() == ["[64, 64]", "[96, 80]"]  # stored by Optuna as text ...
    assert size.config_value("[96, 80]") == [96, 80]  # ... and given to the config as the list


def test_suggested_values_stay_in_the_space() -> None:
    params = parse_space(
        [
            "loss.options.gamma=log(8,1024)",
            "sampler.k=int(2,8)",
            "loss.options.m=float(0.15,0.35,0.05)",
            "data.image_size=choice([64,64],[32,32])",
        ]
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        gamma, k, m, size = (p.suggest(trial) for p in params)
        assert 8 <= gamma <= 1024 and 2 <= k <= 8 and isinstance(k, int)
        assert m in (0.15, 0.2, 0.25, 0.3, 0.35)  # exactly, not 0.30000000000000004
        assert size in ([64, 64], [32, 32])
        study.tell(trial, 0.0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("loss.options.gamma", "expected KEY=KIND(ARGS)"),
        ("loss.options.gamma=log(8)", "log takes log(low, high)"),
        ("loss.options.gamma=log(0,10)", "low > 0"),
        ("loss.options.gamma=uniform(1,2)", "unknown kind 'uniform'"),
        ("sampler.k=int(8,2)", "must be below high"),
        ("sampler.k=int(2.5,8)", "whole numbers"),
        ("optim.lr=float(a,1)", "'a' is not a number"),
        ("optim.lr=float(0,1,0)", "step must be > 0"),
        ("optim.lr=float(0,1,1e-9)", "steps"),
        ("lr=log(1e-4,1e-2)", "not a config key"),
        ("loss.name=choice()", "at least one value"),
        ("loss.name=choice(a,a)", "listed twice"),
        ("loss.name=choice([1,2)", "cannot be read"),
    ],
)
def test_bad_space_strings_are_clear_errors(text: str, says: str) -> None:
    with pytest.raises(SpaceError, match=says.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_param(text)
    assert text in str(caught.value)  # the message quotes what the user wrote


def test_space_errors() -> None:
    with pytest.raises(SpaceError, match="no --param"):
        parse_space([])
    with pytest.raises(SpaceError, match="sampler.k given more than once"):
        parse_space(["sampler.k=int(2,4)", "sampler.k=int(4,8)"])
    with pytest.raises(SpaceError, match="a grid search needs a finite set"):
        parse_param("optim.lr=log(1e-4,1e-2)").grid()
