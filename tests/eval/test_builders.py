"""Protocol builders: identity-disjoint balanced pair folds, open-set splits, and their files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facemetric.eval.errors import PairsFormatError, ProtocolError
from facemetric.eval.identification.files import read_open_set_csv, write_open_set_csv
from facemetric.eval.identification.protocol import build_open_set_split
from facemetric.eval.verification.files import read_pairs_csv, write_pairs_csv, write_pairs_lfw
from facemetric.eval.verification.lfw_pairs import parse_pairs
from facemetric.eval.verification.protocol import build_pair_protocol


def _labels(sizes: list[int]) -> np.ndarray:
    return np.concatenate([np.full(n, f"id{k:03d}") for k, n in enumerate(sizes)])


def test_pair_folds_are_balanced_identity_disjoint_and_distinct() -> None:
    rng = np.random.default_rng(1)
    y = _labels(list(rng.integers(1, 15, size=120)))
    p = build_pair_protocol(y, n_folds=10, pairs_per_class=40, seed=0)
    assert p.pairs_per_class == 40 and len(p) == 10 * 80 and not p.notes
    people_of_fold = []
    for f in range(10):
        in_fold = p.fold == f
        assert p.same[in_fold].sum() == 40 and (1 - p.same[in_fold]).sum() == 40
        people_of_fold.append(set(y[p.i[in_fold]]) | set(y[p.j[in_fold]]))
    for a in range(10):
        for b in range(a + 1, 10):
            assert not people_of_fold[a] & people_of_fold[b], "a person must be in one fold only"
    genuine = p.same == 1
    assert np.all(y[p.i[genuine]] == y[p.j[genuine]]) and np.all(p.i[genuine] != p.j[genuine])
    assert np.all(y[p.i[~genuine]] != y[p.j[~genuine]])
    keys = {(min(a, b), max(a, b)) for a, b in zip(p.i, p.j)}
    assert len(keys) == len(p), "no pair may repeat"


def test_pairs_are_reproducible_and_seeded() -> None:
    y = _labels([5] * 40)
    a, b = build_pair_protocol(y, 4, 20, seed=3), build_pair_protocol(y, 4, 20, seed=3)
    c = build_pair_protocol(y, 4, 20, seed=4)
    assert np.array_equal(a.i, b.i) and np.array_equal(a.j, b.j) and np.array_equal(a.fold, b.fold)
    assert not (np.array_equal(a.i, c.i) and np.array_equal(a.j, c.j))


def test_genuine_pairs_are_spread_over_people() -> None:
    # one person with 300 photos and 19 with 4: the big one must not supply most genuine pairs
    y = _labels([300] + [4] * 19)
    p = build_pair_protocol(y, n_folds=2, pairs_per_class=40, seed=0)
    genuine = p.same == 1
    from_big = np.sum(y[p.i[genuine]] == "id000")
    # water-filling: the 9-10 small people of the big one's fold give 6 pairs each at most
    assert from_big <= 40 - 9 * 3, from_big
    big_fold = p.fold[genuine][y[p.i[genuine]] == "id000"][0]
    people = set(y[p.i[genuine & (p.fold == big_fold)]])
    assert len(people) >= 8


def test_too_few_genuine_pairs_reduce_every_fold_equally() -> None:
    y = _labels([2] * 12)  # 4 folds of 3 people with 2 photos: 3 genuine pairs per fold at most
    p = build_pair_protocol(y, n_folds=4, pairs_per_class=50, seed=0)
    assert p.pairs_per_class == 3 and "50 pairs per class asked, 3 per fold" in p.notes[0]
    assert all(np.sum((p.fold == f) & (p.same == 1)) == 3 for f in range(4))


def test_pair_builder_errors_are_clear() -> None:
    with pytest.raises(ProtocolError, match="use fewer folds"):
        build_pair_protocol(_labels([4] * 5), n_folds=10)
    with pytest.raises(ProtocolError, match="no genuine pair"):
        build_pair_protocol(_labels([1] * 40), n_folds=2)
    with pytest.raises(ProtocolError, match="n_folds"):
        build_pair_protocol(_labels([4] * 40), n_folds=1)


def _lfw_paths(root: Path, y: np.ndarray) -> list[str]:
    count: dict[str, int] = {}
    out = []
    for name in y:
        count[name] = count.get(name, 0) + 1
        out.append(str(root / name / f"{name}_{count[name]:04d}.jpg"))
    return out


def test_pairs_round_trip_through_lfw_format_and_csv(tmp_path: Path) -> None:
    y = _labels([6] * 24)
    paths = _lfw_paths(tmp_path / "images", y)
    p = build_pair_protocol(y, n_folds=4, pairs_per_class=15, seed=0)
    write_pairs_lfw(tmp_path / "pairs.txt", p, paths, list(y))
    parsed = parse_pairs(tmp_path / "pairs.txt")
    assert len(parsed) == len(p)
    # the LFW file orders genuine before impostor pairs per fold, as the protocol does
    for pair, a, b, s, f in zip(parsed, p.i, p.j, p.same, p.fold):
        assert (pair.same, pair.fold, pair.name1, pair.name2) == (bool(s), f, y[a], y[b])
        assert Path(paths[a]).name == f"{pair.name1}_{pair.index1:04d}.jpg"
    write_pairs_csv(tmp_path / "pairs.csv", p, paths, tmp_path / "images")
    assert (tmp_path / "pairs.csv").read_text().startswith("path1,path2,same,fold\nid")
    back = read_pairs_csv(tmp_path / "pairs.csv", tmp_path / "images")
    assert [str(x) for x in back.path1] == [paths[k] for k in p.i]
    assert [str(x) for x in back.path2] == [paths[k] for k in p.j]
    assert np.array_equal(back.same, p.same) and np.array_equal(back.fold, p.fold)


def test_lfw_format_refuses_other_file_names(tmp_path: Path) -> None:
    y = _labels([4] * 8)
    paths = [str(tmp_path / n / f"photo{k}.jpg") for k, n in enumerate(y)]
    with pytest.raises(ValueError, match="write the protocol as .csv"):
        write_pairs_lfw(tmp_path / "p.txt", build_pair_protocol(y, 2, 5), paths, list(y))


def test_pairs_csv_errors_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("path1,path2,same\na.jpg,b.jpg,1\na.jpg,c.jpg,yes\n")
    with pytest.raises(PairsFormatError, match="line 3: same must be 1 or 0"):
        read_pairs_csv(f)
    f.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(PairsFormatError, match="lacks the column"):
        read_pairs_csv(f)
    f.write_text("path1,path2,same\na.jpg,b.jpg,1\n")
    assert read_pairs_csv(f).fold is None and read_pairs_csv(f).path1 == [tmp_path / "a.jpg"]


def test_open_set_split_keeps_unknown_people_out_of_the_gallery() -> None:
    y = _labels([6] * 30 + [1] * 3)
    split = build_open_set_split(y, unknown_fraction=0.3, gallery_per_identity=2, seed=0)
    s = split.subset
    gallery = set(y[s == "gallery"])
    val_unknown, test_unknown = set(y[s == "val_unknown"]), set(y[s == "test_unknown"])
    assert not (val_unknown | test_unknown) & gallery
    assert not val_unknown & test_unknown, "validation and test unknowns must be different people"
    assert len(val_unknown | test_unknown) == round(0.3 * 33)
    for name in gallery:
        assert np.sum((y == name) & (s == "gallery")) == min(2, np.sum(y == name))
    assert set(y[(s == "val_known") | (s == "test_known")]) <= gallery
    counts = split.counts()
    assert sum(counts.values()) == len(y) and counts["val_known"] > 30 and counts["test_known"] > 30
    assert abs(counts["val_known"] - counts["test_known"]) <= 24  # each person deals its probes alternately
    again = build_open_set_split(y, 0.3, 2, seed=0).subset
    assert np.array_equal(again, s)


def test_open_set_split_csv_round_trip_and_checks(tmp_path: Path) -> None:
    y = _labels([4] * 10)
    paths = [str(tmp_path / f"{n}_{k}.jpg") for k, n in enumerate(y)]
    split = build_open_set_split(y, 0.3, 1, seed=1)
    write_open_set_csv(tmp_path / "split.csv", split, paths, list(y), tmp_path)
    back = read_open_set_csv(tmp_path / "split.csv")
    assert [str(p) for p in back.paths] == paths
    assert np.array_equal(back.subset, split.subset) and np.array_equal(back.identities, y)
    rows = (tmp_path / "split.csv").read_text().splitlines()
    leaked = next(r for r in rows if r.endswith(",val_unknown")).replace(",val_unknown", ",gallery")
    (tmp_path / "bad.csv").write_text("\n".join(rows + [leaked.replace(".jpg", "x.jpg")]) + "\n")
    with pytest.raises(PairsFormatError, match="also listed as unknown probes"):
        read_open_set_csv(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("path,identity,subset\na.jpg,a,probe\n")
    with pytest.raises(PairsFormatError, match="line 2: subset 'probe'"):
        read_open_set_csv(tmp_path / "bad.csv")
    with pytest.raises(ProtocolError, match="too few"):
        build_open_set_split(_labels([3, 3]), 0.5)
