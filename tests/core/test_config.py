"""Typed config: defaults, file and overrides round-trip; every malformed config or override is one line
naming the key (exit status 2 from the CLI, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from facemetric.cli import main
from facemetric.core.config import load_config
from facemetric.core.errors import ConfigError


def test_defaults_file_and_overrides_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\nloss:\n  name: triplet\n  options: {margin: 0.3}\nminer: {name: semi_hard}\n")
    cfg = load_config(
        path,
        [
            "train.epochs=9",
            "data.image_size=[32, 48]",
            "data.cache_dir=null",
            "loss.options.soft_margin=true",
            "optim.options={momentum: 0.8}",
        ],
    )
    assert cfg.train.epochs == 9 and cfg.loss.options == {"margin": 0.3, "soft_margin": True}
    assert cfg.data.image_size == [32, 48] and cfg.data.cache_dir is None and cfg.miner.name == "semi_hard"
    assert cfg.model.name == "iresnet_tiny" and cfg.scheduler.name == "warmup_cosine"  # untouched defaults
    cfg.save(tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


# (config file text, overrides, the key the one-line message must name, and what it must say)
MALFORMED = [
    pytest.param(
        "", ["train.epochs=five"], r"train\.epochs: 'five' is not valid: expected a valid integer", id="wrong type"
    ),
    pytest.param(
        "", ["optim.lr=fast"], r"optim\.lr: 'fast' is not valid: expected a valid number", id="wrong type float"
    ),
    pytest.param(
        "", ["sampler.p=2.5"], r"sampler\.p: 2\.5 is not valid: expected a valid integer", id="fractional count"
    ),
    pytest.param(
        "", ["train.epochs=0"], r"train\.epochs: 0 is not valid: expected greater than or equal to 1", id="out of range"
    ),
    pytest.param(
        "",
        ["augment.shift=0.7"],
        r"augment\.shift: 0\.7 is not valid: expected less than 0\.5",
        id="out of range float",
    ),
    pytest.param(
        "",
        ["data.val_identities=1.5"],
        r"data\.val_identities: 1\.5 is not valid: a fraction must be",
        id="count or fraction",
    ),
    pytest.param("", ["train.amp=maybe"], r"train\.amp: 'maybe' is not valid: expected auto, true or false", id="amp"),
    pytest.param(
        "", ["data.layout=tree"], r"data\.layout: 'tree' is not valid: expected 'auto', 'folders'", id="not a choice"
    ),
    pytest.param(
        "trian: {epochs: 3}\n", [], r"unknown config section 'trian'; valid sections: data, model", id="unknown section"
    ),
    pytest.param(
        "train: {epoch: 3}\n", [], r"train: unknown key 'epoch'; valid keys: epochs, val_every", id="unknown key"
    ),
    pytest.param(
        "",
        ["loss.options.marginn=0.3"],
        r"loss\.options: loss 'arcface' has no option 'marginn'; its options: scale, margin, subcenters",
        id="unknown loss option",
    ),
    pytest.param(
        "",
        ["loss.options.margin=big"],
        r"loss\.options\.margin: 'big' is not valid for loss 'arcface'",
        id="wrong type of a loss option",
    ),
    pytest.param(
        "",
        ["model.options={widht: 2}"],
        r"model\.options: model 'iresnet_tiny' has no option 'widht'; "
        "its options: layers, widths",
        id="unknown model option",
    ),
    pytest.param(
        "",
        ["model.options.dropout=high"],
        r"model\.options\.dropout: 'high' is not valid for model",
        id="wrong type of a model option",
    ),
    pytest.param(
        "",
        ["scheduler.options.warmup=2"],
        r"scheduler\.options: scheduler 'warmup_cosine' has no option "
        "'warmup'; its options: warmup_epochs, min_lr_ratio",
        id="unknown scheduler option",
    ),
    pytest.param(
        "", ["loss.name=arcfase"], r"loss\.name: unknown loss 'arcfase'; available: arcface", id="unknown loss"
    ),
    pytest.param(
        "",
        ["optim.name=rmsprop"],
        r"optim\.name: unknown optimizer 'rmsprop'; available: adamw",
        id="unknown optimizer",
    ),
    pytest.param(
        "",
        ["train.callbacks=[{name: earlystop}]"],
        r"train\.callbacks\.0\.name: unknown callback "
        "'earlystop'; available: early_stopping",
        id="unknown callback",
    ),
    pytest.param(
        "",
        ["miner.name=batch_hard"],
        r"miner: loss 'arcface' does not learn from mined pairs",
        id="miner for a classifier",
    ),
    pytest.param(
        "",
        ["loss.name=triplet", "miner.name=multi_similarity"],
        r"miner\.name: 'multi_similarity' does "
        "not mine triplets",
        id="pair miner for the triplet loss",
    ),
    pytest.param("train: [\n", [], r"c\.yaml: not valid YAML at line 2, column 1", id="bad YAML"),
    pytest.param("- a\n- b\n", [], r"c\.yaml: the top level must be a mapping of sections", id="not a mapping"),
    pytest.param("", ["epochs=3"], r"override 'epochs=3': expected section\.key=value", id="bad override"),
    pytest.param(
        "", ["train.epochs=[1"], r"override 'train\.epochs=\[1': the value is not valid YAML", id="bad override value"
    ),
]


@pytest.mark.parametrize("text, overrides, message", MALFORMED)
def test_malformed_config_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, overrides: list[str], message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code = main(["config", str(path), *(a for o in overrides for a in ("--set", o))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("facemetric config: error: ") and err.count("\n") == 1, err
    import re

    assert re.search(message, err), err


def test_train_refuses_the_same_before_reading_any_data(tmp_path: Path) -> None:
    """The real console script: one line on stderr, exit status 2, no traceback, nothing trained (the data
    exists, as the command line's check needs, but holds no image: reading it would fail otherwise)."""
    (tmp_path / "none" / "ada").mkdir(parents=True)
    (tmp_path / "none" / "ada" / "1.jpg").write_text("not an image")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facemetric",
            "train",
            "--data",
            str(tmp_path / "none"),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "loss.options.marginn=0.3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "facemetric train: error: loss.options: loss 'arcface' has no option 'marginn'; its options: scale, margin, "
        "subcenters"
    ]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/config.yaml")


def test_exponent_numbers_are_numbers_on_the_command_line_and_in_files(tmp_path: Path) -> None:
    """YAML 1.1 reads 3e-5 as a string; a learning rate written that way must still be a number."""
    assert load_config(None, ["optim.lr=3e-5"]).optim.lr == pytest.approx(3e-5)
    path = tmp_path / "c.yaml"
    path.write_text("optim: {lr: 2E-4, weight_decay: 1e-4}\nmodel: {name: mobilefacenet}\n")
    cfg = load_config(path, [])
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (pytest.approx(2e-4), pytest.approx(1e-4))
    assert cfg.model.name == "mobilefacenet"  # words stay words
