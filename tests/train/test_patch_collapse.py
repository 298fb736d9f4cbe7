"""The shipped patch recipes on a small synthetic release: the collapsing one (configs/patches/collapse.yaml:
large batch, plain batch-hard, no normalisation) is caught by the collapse monitor with its warning; the
recommended one (configs/patches/hardnet.yaml: S x K batches, semi-hard then batch-hard, batch norm and unit
descriptors) keeps its descriptors spread out."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from facemetric.core.config import load_config
from facemetric.data.hpatches import read_hpatches, write_patch_cache
from facemetric.train.build import build_run
from hpatches_fakes import write_release

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "patches"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("patches")
    release = write_release(root / "release", n_seq=6, n_points=12)
    return write_patch_cache(read_hpatches(release, size=16), root / "cache")


def _train(config: str, cache: Path, out: Path, caplog: pytest.LogCaptureFixture) -> tuple[list[dict], list[str]]:
    cfg = load_config(
        CONFIGS / config,
        [
            f"data.source={cache}",
            "data.image_size=[16, 16]",
            "data.val_identities=2",  # whole sequences (data.val_group): 2 of 6
            "sampler.p=32",  # 48 training points: a batch of two thirds of them is this data's "large batch"
            "sampler.batches_per_epoch=15",
            "train.epochs=4",
            "train.val_every=4",
            "train.amp=false",
            "train.loggers=[]",
            "train.progress=false",
            "monitor.window=10",
            f"train.out={out}",
        ],
    )
    with caplog.at_level(logging.WARNING, logger="facemetric"):
        build_run(cfg).fit()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    warnings = [r.getMessage() for r in caplog.records if "embedding collapse" in r.getMessage()]
    return [r for r in rows if r["kind"] == "train"], warnings


@pytest.mark.slow
def test_collapsing_recipe_is_caught_and_recommended_recipe_is_not(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    epochs, warnings = _train("collapse.yaml", cache, tmp_path / "collapse", caplog)
    assert len(warnings) == 1 and "miner.schedule" in warnings[0]  # once, with the advice
    last = epochs[-1]
    assert last["spread/mean_distance"] < 0.1 and last["spread/at_margin"] > 0.75  # one point, triplets at the margin
    assert last["loss"] == pytest.approx(1.0, abs=0.05)  # stuck at the margin

    caplog.clear()
    epochs, warnings = _train("hardnet.yaml", cache, tmp_path / "hardnet", caplog)
    assert warnings == []
    assert min(e["spread/mean_distance"] for e in epochs) > 0.8  # random directions: about 1.4
    assert max(e["spread/at_margin"] for e in epochs) < 0.5
