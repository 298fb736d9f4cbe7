from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.config import ConfigError, load_config


def test_defaults_file_and_overrides_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\nloss:\n  name: triplet\n  options: {margin: 0.3}\n")
    cfg = load_config(path, ["train.epochs=9", "data.image_size=[32, 48]", "data.cache_dir=null"])
    assert cfg.train.epochs == 9 and cfg.loss.options == {"margin": 0.3}
    assert cfg.data.image_size == [32, 48] and cfg.data.cache_dir is None
    assert cfg.model.name == "iresnet_tiny"  # untouched default
    cfg.save(tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("trian: {epochs: 3}\n", [], "unknown config section"),
        ("train: {epoch: 3}\n", [], r"train: unknown key\(s\) \['epoch'\]"),
        ("", ["epochs=3"], "expected section.key=value"),
        ("", ["optim.name=rmsprop"], "optim.name must be sgd or adamw"),
        ("- a\n- b\n", [], "top level must be a mapping"),
        ("train: [\n", [], "not valid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, overrides: list[str], message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, overrides)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/config.yaml")
