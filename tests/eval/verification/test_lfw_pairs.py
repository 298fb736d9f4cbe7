from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.eval.errors import MissingImageError, PairsFormatError
from facemetric.eval.verification.lfw_pairs import (
    Pair,
    pair_image_path,
    parse_pairs,
    resolve_pairs,
    write_pairs,
)

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
DEVTRAIN = SHARED_DATA / "lfw-devtrain"

FOLDS_FILE = """2\t1
Alice\t1\t2
Alice\t1\tBob\t3
Carol 2 4 \r
Bob 1  Dave 2\r

"""


def _write(tmp_path: Path, text: str, name: str = "pairs.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _make_images(root: Path, names_and_indices: list[tuple[str, int]]) -> None:
    for name, index in names_and_indices:
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / f"{name}_{index:04d}.jpg").write_bytes(b"")


@pytest.fixture
def devtrain_pairs_file() -> Path:
    path = DEVTRAIN / "pairsDevTrain.txt"
    if not path.is_file():
        pytest.skip(f"LFW dev-train pairs not available at {path}")
    return path


def test_parse_real_devtrain(devtrain_pairs_file):
    pairs = parse_pairs(devtrain_pairs_file)
    assert len(pairs) == 2200
    assert sum(p.same for p in pairs) == 1100
    assert pairs[0] == Pair("Aaron_Peirsol", 1, "Aaron_Peirsol", 2, True, None, 2)
    assert all(p.same for p in pairs[:1100]) and not any(p.same for p in pairs[1100:])
    assert all(p.fold is None for p in pairs)
    assert pairs[-1].line == 2201


def test_real_devtrain_images_resolve(devtrain_pairs_file):
    images = DEVTRAIN / "images"
    if not images.is_dir():
        pytest.skip(f"LFW dev-train images not available at {images}")
    paths = resolve_pairs(parse_pairs(devtrain_pairs_file), images, devtrain_pairs_file)
    assert len(paths) == 2200
    assert paths[0] == (
        images / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg",
        images / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg",
    )


def test_parse_folds_file(tmp_path):
    # Spaces, trailing whitespace, CRLF and a trailing blank line are tolerated.
    pairs = parse_pairs(_write(tmp_path, FOLDS_FILE))
    assert pairs == [
        Pair("Alice", 1, "Alice", 2, True, 0, 2),
        Pair("Alice", 1, "Bob", 3, False, 0, 3),
        Pair("Carol", 2, "Carol", 4, True, 1, 4),
        Pair("Bob", 1, "Dave", 2, False, 1, 5),
    ]


def test_blank_lines_keep_real_line_numbers(tmp_path):
    pairs = parse_pairs(_write(tmp_path, "1\n\nA 1 2\n\nA 1 B 1\n"))
    assert [p.line for p in pairs] == [3, 5]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("pairs 300\nA 1 2\nA 1 B 1\n", r"pairs\.txt:1: bad header 'pairs 300'"),
        ("1 2 3\nA 1 2\nA 1 B 1\n", "bad header"),
        ("0\n", "bad header"),
        ("2\nA 1 2\nB 1 2\nA 1 B 1\n", r"promises \(2 matched \+ 2 mismatched\) = 4 pair lines, but the file has 3"),
        ("2 1\nA 1 2\nA 1 B 1\n", r"2 folds x \(1 matched \+ 1 mismatched\) = 4 pair lines, but the file has 2"),
        ("1\nA 1 x\nA 1 B 1\n", r":2: image index 'x' is not a positive integer"),
        ("1\nA 1 2\nA 0 B 1\n", r":3: image index '0' is not a positive integer"),
        ("1\nA 1 2\nA 1 B -1\n", r":3: image index '-1'"),
        ("1\nA 1 B 1\nA 1 2\n", r":2: matched line 1/1 must be a matched pair .* 4 fields: 'A 1 B 1'"),
        ("2 1\nA 1 2\nA 1 B 1\nA 1 B 2\nC 1 D 1\n", r":4: fold 2 matched line 1/1 must be a matched pair"),
        ("1\nA 1 2\nA 1 2\n", r":3: mismatched line 1/1 must be a mismatched pair .* 3 fields"),
        ("1\nA 1 1\nA 1 B 1\n", r":2: matched pair compares image 1 of A with itself"),
        ("1\nA 1 2\nA 1 A 3\n", r":3: mismatched pair names the same person twice"),
    ],
)
def test_parse_errors(tmp_path, text, match):
    with pytest.raises(PairsFormatError, match=match):
        parse_pairs(_write(tmp_path, text))


def test_format_error_is_a_value_error_naming_the_file(tmp_path):
    path = _write(tmp_path, "x\n")
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")):
        parse_pairs(path)


def test_pair_image_path_prefers_jpg_then_other_extensions(tmp_path):
    assert pair_image_path(tmp_path, "Ann", 7) == tmp_path / "Ann" / "Ann_0007.jpg"
    (tmp_path / "Ann").mkdir()
    (tmp_path / "Ann" / "Ann_0007.png").write_bytes(b"")
    assert pair_image_path(tmp_path, "Ann", 7) == tmp_path / "Ann" / "Ann_0007.png"
    (tmp_path / "Ann" / "Ann_0007.jpg").write_bytes(b"")
    assert pair_image_path(tmp_path, "Ann", 7) == tmp_path / "Ann" / "Ann_0007.jpg"


def test_resolve_pairs_finds_all_images(tmp_path):
    pairs_path = _write(tmp_path, FOLDS_FILE)
    root = tmp_path / "images"
    _make_images(root, [("Alice", 1), ("Alice", 2), ("Bob", 3), ("Carol", 2), ("Carol", 4), ("Bob", 1), ("Dave", 2)])
    paths = resolve_pairs(parse_pairs(pairs_path), root, pairs_path)
    assert paths[1] == (root / "Alice" / "Alice_0001.jpg", root / "Bob" / "Bob_0003.jpg")


def test_resolve_pairs_missing_image_names_line_and_path(tmp_path):
    pairs_path = _write(tmp_path, FOLDS_FILE)
    root = tmp_path / "images"
    _make_images(
        root, [("Alice", 1), ("Alice", 2), ("Carol", 2), ("Carol", 4), ("Bob", 1), ("Dave", 2)]
    )  # Bob_0003 (line 3) is missing
    with pytest.raises(MissingImageError) as info:
        resolve_pairs(parse_pairs(pairs_path), root, pairs_path)
    message = str(info.value)
    assert "line 3: " + str(root / "Bob" / "Bob_0003.jpg") in message
    assert str(pairs_path) in message
    assert "1 of 4 pairs" in message
    assert "--data should point at the folder" in message
    assert isinstance(info.value, FileNotFoundError)


def test_resolve_pairs_wrong_root_lists_first_lines_and_count(tmp_path):
    pairs = [Pair(f"P{i}", 1, f"P{i}", 2, True, None, i + 2) for i in range(8)]
    with pytest.raises(MissingImageError) as info:
        resolve_pairs(pairs, tmp_path / "nowhere")
    message = str(info.value)
    assert "8 of 8 pairs" in message
    assert "line 2: " in message and "line 6: " in message and "line 7: " not in message
    assert "and 3 more line(s)" in message
    assert "does not exist" in message


def test_write_parse_round_trip_with_folds(tmp_path):
    pairs = parse_pairs(_write(tmp_path, FOLDS_FILE))
    out = tmp_path / "out.txt"
    write_pairs(out, pairs, folds=2)
    assert out.read_text().splitlines()[0] == "2\t1"
    assert parse_pairs(out) == [
        Pair(p.name1, p.index1, p.name2, p.index2, p.same, p.fold, line) for p, line in zip(pairs, [2, 3, 4, 5])
    ]


def test_write_parse_round_trip_without_folds_reorders_blocks(tmp_path):
    pairs = [
        Pair("A", 1, "B", 2, False, None, 0),
        Pair("C", 1, "C", 3, True, None, 0),
        Pair("D", 2, "E", 1, False, None, 0),
        Pair("F", 4, "F", 5, True, None, 0),
    ]
    out = tmp_path / "val_pairs.txt"
    write_pairs(out, pairs)
    parsed = parse_pairs(out)
    key = [(p.name1, p.index1, p.name2, p.index2, p.same, p.fold) for p in parsed]
    assert key == [
        ("C", 1, "C", 3, True, None),
        ("F", 4, "F", 5, True, None),
        ("A", 1, "B", 2, False, None),
        ("D", 2, "E", 1, False, None),
    ]


def test_write_real_devtrain_round_trip(devtrain_pairs_file, tmp_path):
    pairs = parse_pairs(devtrain_pairs_file)
    out = tmp_path / "copy.txt"
    write_pairs(out, pairs)
    assert parse_pairs(out) == pairs


@pytest.mark.parametrize(
    ("pairs", "folds", "match"),
    [
        ([Pair("A", 1, "A", 2, True, None, 0)], None, "same positive number N"),
        ([Pair("A", 1, "A", 2, True, 0, 0), Pair("A", 1, "B", 1, False, 0, 0)], 2, "same positive number N"),
        ([Pair("A", 1, "A", 2, True, None, 0)], 1, "fold must be in 0..0"),
        ([Pair("A", 1, "B", 2, True, None, 0)], None, "one name and two images"),
        ([Pair("A", 1, "A", 2, False, None, 0)], None, "two different names"),
        ([Pair("A B", 1, "A B", 2, True, None, 0)], None, "no whitespace"),
    ],
)
def test_write_pairs_rejects_unwritable_sets(tmp_path, pairs, folds, match):
    with pytest.raises(ValueError, match=match):
        write_pairs(tmp_path / "x.txt", pairs, folds=folds)
