"""The ablation benchmark: variants of a base config, seeds per variant, mirror-at-test accuracy, the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablations import markdown, parse_seeds_of, parse_variant, run


def test_variant_and_seed_parsing() -> None:
    assert parse_variant("baseline=") == ("baseline", [])
    expected = ("a", ["augment.shift=0.05", "model.name=iresnet"])
    assert parse_variant("a=augment.shift=0.05; model.name=iresnet") == expected
    assert parse_seeds_of(["baseline=0,1", "x=3"]) == {"baseline": [0, 1], "x": [3]}
    with pytest.raises(SystemExit, match="NAME=SEED"):
        parse_seeds_of(["baseline"])
    with pytest.raises(SystemExit, match="NAME=SEED"):
        parse_seeds_of(["baseline=a"])


def test_markdown_puts_each_variant_against_the_first() -> None:
    summary = {
        "baseline": {
            "accuracy_last_mean": 0.80,
            "accuracy_last_spread": 0.02,
            "accuracy_flip_mean": 0.81,
            "minutes_mean": 5.0,
            "seeds": 2,
            "overrides": [],
        },
        "shift": {
            "accuracy_last_mean": 0.75,
            "accuracy_last_spread": 0.0,
            "accuracy_flip_mean": 0.76,
            "minutes_mean": 5.1,
            "seeds": 1,
            "overrides": ["augment.shift=0.08"],
        },
    }
    lines = markdown(summary).splitlines()
    assert lines[2] == "| baseline | (the base) | 0.8000 | +0.0 | 2 (2.0) | 0.8100 | 5.0 |"
    assert lines[3] == "| shift | `augment.shift=0.08` | 0.7500 | -5.0 | 1 | 0.7600 | 5.1 |"


def test_run_trains_each_variant_and_seed_on_its_overrides(synthetic_faces: Path, tmp_path: Path) -> None:
    common = [
        f"data.source={synthetic_faces}",
        "data.image_size=[48, 48]",
        "data.val_identities=4",
        "data.cache_dir=null",
        "sampler.p=4",
    ]
    report = run(
        None,
        [("baseline", []), ("short", ["train.epochs=1", "augment.flip=false"])],
        seeds=[0],
        epochs=2,
        work=tmp_path,
        common=common,
        seeds_of={"baseline": [0, 1]},
    )
    runs = report["runs"]
    assert [(r["variant"], r["seed"]) for r in runs] == [("baseline", 0), ("baseline", 1), ("short", 0)]
    # the variant's own length wins over --epochs; each run leaves its checkpoint where it says
    assert (tmp_path / "short-seed0" / "last.pt").is_file()
    import torch

    assert torch.load(tmp_path / "short-seed0" / "last.pt", weights_only=False)["epoch"] == 1
    assert torch.load(tmp_path / "baseline-seed1" / "last.pt", weights_only=False)["epoch"] == 2
    for r in runs:
        assert 0.0 <= r["accuracy_last"] <= 1.0 and 0.0 <= r["accuracy_flip"] <= 1.0
        assert r["held_out_people"] == 4 and r["train_loss_last"] > 0
    s = report["summary"]
    assert s["baseline"]["seeds"] == 2 and s["short"]["seeds"] == 1
    accs = [r["accuracy_last"] for r in runs[:2]]
    assert s["baseline"]["accuracy_last_spread"] == pytest.approx(max(accs) - min(accs), abs=1e-4)


def test_translation_bench_shifts_each_photo_by_whole_pixels_within_the_bound() -> None:
    import numpy as np

    from translation import shifted

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 25, 25, 3), dtype=np.uint8)
    np.testing.assert_array_equal(shifted(images, 0.0), images)
    moved = shifted(images, 0.08)  # up to 2 px
    np.testing.assert_array_equal(moved, shifted(images, 0.08))  # the same shifted photos for every model
    for img, out in zip(images, moved):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(
                out[max(dy, 0) : 25 + min(dy, 0), max(dx, 0) : 25 + min(dx, 0)],
                img[max(-dy, 0) : 25 + min(-dy, 0), max(-dx, 0) : 25 + min(-dx, 0)],
            )
        ]
        assert found, "each output is its photo translated by at most 2 whole pixels"
    assert not np.array_equal(moved, images)
