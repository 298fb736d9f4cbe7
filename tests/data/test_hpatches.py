"""The HPatches release layout read into a patch cache: a synthetic sequence with known patches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.data.hpatches import (
    IMAGES,
    prepare_patches,
    read_hpatches,
    read_sequence,
    sequence_names,
    write_patch_cache,
)
from facemetric.data.prepared import load_prepared, prepared_spec
from facemetric.data.sources import DatasetError


def _sequence(root: Path, name: str, n: int, base: int) -> None:
    """A sequence of ``n`` points: patch k of every image is flat grey ``base + 10 k`` (image j adds j)."""
    folder = root / name
    folder.mkdir(parents=True)
    for j, image in enumerate(IMAGES):
        stack = np.concatenate([np.full((65, 65), base + 10 * k + j, np.uint8) for k in range(n)])
        Image.fromarray(stack).save(folder / f"{image}.png")


def test_release_layout_is_read_with_one_label_per_point(tmp_path: Path) -> None:
    _sequence(tmp_path, "i_lamp", 3, 20)
    _sequence(tmp_path, "v_wall", 2, 120)
    (tmp_path / "README.md").write_text("not a sequence")
    assert sequence_names(tmp_path) == ["i_lamp", "v_wall"]
    assert sequence_names(tmp_path, "view") == ["v_wall"]
    patches = read_hpatches(tmp_path, size=32)
    assert patches.images.shape == (16 * 5, 32, 32, 1)  # 16 images x (3 + 2) points
    assert len(np.unique(patches.labels)) == 5
    ref = patches.image_names == "ref"
    # flat patches survive the resize exactly: each point's grey level, per image
    assert patches.images[ref & (patches.sequences == "i_lamp"), 0, 0, 0].tolist() == [20, 30, 40]
    t5 = (patches.image_names == "t5") & (patches.sequences == "v_wall")
    assert patches.images[t5, 5, 5, 0].tolist() == [135, 145]  # base 120 + 10 k + 15 (t5 is image 15)
    for label in np.unique(patches.labels):  # a label is one (sequence, point) in all 16 images
        rows = patches.labels == label
        assert rows.sum() == 16 and len(set(patches.sequences[rows])) == 1 and len(set(patches.patch_index[rows])) == 1


def test_patch_cache_is_a_training_source(tmp_path: Path) -> None:
    _sequence(tmp_path / "release", "i_a", 2, 10)
    _sequence(tmp_path / "release", "i_b", 2, 60)
    out = write_patch_cache(read_hpatches(tmp_path / "release"), tmp_path / "cache")
    packed, spec = load_prepared(out), prepared_spec(out)
    assert (spec.height, spec.width, spec.channels) == (32, 32, 1)
    assert packed.images.shape == (64, 32, 32, 1) and len(packed.identity_names) == 4
    assert packed.identity_names[:2] == ["i_a/0", "i_a/1"] and packed.paths[0] == "i_a/ref.png#0"


def test_bad_release_files_are_named(tmp_path: Path) -> None:
    _sequence(tmp_path, "i_ok", 2, 10)
    Image.fromarray(np.zeros((100, 65), np.uint8)).save(tmp_path / "i_ok" / "h3.png")
    with pytest.raises(DatasetError, match=r"h3.png: 65x100 pixels is not a vertical stack"):
        read_sequence(tmp_path / "i_ok")
    _sequence(tmp_path, "v_short", 2, 10)
    (tmp_path / "v_short" / "e2.png").unlink()
    with pytest.raises(DatasetError, match="missing e2.png"):
        read_sequence(tmp_path / "v_short")
    Image.fromarray(np.zeros((65 * 3, 65), np.uint8)).save(tmp_path / "i_ok" / "h3.png")
    with pytest.raises(DatasetError, match="different numbers of patches"):
        read_sequence(tmp_path / "i_ok")
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"a": {"train": ["i_ok"], "test": ["v_short", "v_gone"]}}))
    assert sequence_names(tmp_path, "a", "train", splits) == ["i_ok"]
    with pytest.raises(DatasetError, match="not there"):
        sequence_names(tmp_path, "a", "test", splits)
    with pytest.raises(DatasetError, match="give hpatches-benchmark's splits.json"):
        sequence_names(tmp_path, "a")


def test_prepare_patches_packs_a_split_and_knows_a_finished_cache(tmp_path: Path) -> None:
    from facemetric.cli import main
    from facemetric.data.prepare import PrepareError

    release = tmp_path / "release"
    for name, base in (("i_a", 10), ("i_b", 60), ("v_c", 110)):
        _sequence(release, name, 2, base)
    (release / "splits.json").write_text(json.dumps({"a": {"train": ["i_a", "v_c"], "test": ["i_b"]}}))
    assert (
        main(["prepare", "--data", str(release), "--out", str(tmp_path / "train"), "--patches", "--patch-split", "a"])
        == 0
    )
    packed = load_prepared(tmp_path / "train")
    assert packed.identity_names == ["i_a/0", "i_a/1", "v_c/0", "v_c/1"] and len(packed) == 4 * 16
    summary = json.loads((tmp_path / "train" / "summary.json").read_text())
    assert (summary["sequences"], summary["illumination"], summary["viewpoint"]) == (2, 1, 1)
    before = (tmp_path / "train" / "images.npy").stat().st_mtime_ns
    assert prepare_patches(release, tmp_path / "train", "a", "train").up_to_date is True
    assert (tmp_path / "train" / "images.npy").stat().st_mtime_ns == before  # nothing redone
    with pytest.raises(PrepareError, match="already holds a prepared cache"):  # another part into the same folder
        prepare_patches(release, tmp_path / "train", "a", "test")
    test = prepare_patches(release, tmp_path / "train", "a", "test", overwrite=True)
    assert test.summary["sequences"] == 1 and load_prepared(tmp_path / "train").identity_names == ["i_b/0", "i_b/1"]


def test_val_group_holds_out_whole_sequences(tmp_path: Path) -> None:
    from facemetric.core.config import DataConfig
    from facemetric.data.dataset import load_dataset
    from facemetric.data.split import split_identities

    # by hand: identities 0-5 in groups a a b b c c; holding out one group takes both of its identities
    labels = np.repeat(np.arange(6), 3)
    train, val = split_identities(labels, 1, seed=0, groups=np.array([0, 0, 1, 1, 2, 2]))
    held = set(labels[val].tolist())
    assert held in ({0, 1}, {2, 3}, {4, 5}) and not held & set(labels[train].tolist())
    with pytest.raises(DatasetError, match="cannot hold out 3 validation groups"):
        split_identities(labels, 3, groups=np.array([0, 0, 1, 1, 2, 2]))

    for name, base in (("i_a", 10), ("i_b", 60), ("v_c", 110), ("v_d", 160)):
        _sequence(tmp_path / "release", name, 3, base)
    cache = str(prepare_patches(tmp_path / "release", tmp_path / "cache").out)
    split = load_dataset(
        DataConfig(
            source=cache, channels=1, image_size=[32, 32], val_identities=0.5, val_group="^([^/]+)/", cache_dir=None
        ),
        False,
    )
    assert split.val is not None
    seqs = {
        side: {n.split("/")[0] for n in part.identity_names} for side, part in (("t", split.train), ("v", split.val))
    }
    assert len(seqs["v"]) == 2 and len(seqs["t"]) == 2 and not seqs["t"] & seqs["v"]  # whole sequences, disjoint
    assert len(split.val.identity_names) == 6  # all 3 points of each held-out sequence
    with pytest.raises(DatasetError, match=r"does not match 12 identity name"):
        load_dataset(
            DataConfig(source=cache, channels=1, image_size=[32, 32], val_group=r"^(x)_", cache_dir=None), False
        )
