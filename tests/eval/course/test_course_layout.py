"""``facemetric protocol course``: the CMU 11-785 HW2P2 layout as a split of labels and as files on disk."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.cli import main
from facemetric.data.prepare import PrepareOptions, prepare
from facemetric.eval.course.layout import CourseLayoutError, safe_name, write_course_layout
from facemetric.eval.course.split import COURSE_SUBSETS, CourseSplit, build_course_split
from facemetric.eval.errors import ProtocolError

VERIFICATION = ("known", "unknown_dev", "unknown_test")


def _labels(sizes: list[int]) -> np.ndarray:
    return np.concatenate([np.full(n, f"id{k:03d}") for k, n in enumerate(sizes)])


def _people(y: np.ndarray, split: CourseSplit, part: str) -> set[str]:
    return set(y[split.subset == part].tolist())


def _check_rules(y: np.ndarray, split: CourseSplit) -> None:
    """The invariants of every course split (module docstring of course_split)."""
    assert split.subset.shape == y.shape and set(split.subset.tolist()) <= set(COURSE_SUBSETS)
    assert sum(split.counts().values()) == len(y)  # every item in exactly one subset
    classes, known, absent = set(split.classes), set(split.known), set(split.absent)
    assert not classes & known and not classes & absent and not known & absent
    assert classes | known | absent == set(y.tolist())
    in_class = _people(y, split, "train") | _people(y, split, "dev") | _people(y, split, "test")
    in_verif = set().union(*(_people(y, split, p) for p in VERIFICATION))
    assert in_class == classes and in_verif == known | absent and not in_class & in_verif
    for p in classes:  # every class has train, dev and test images
        assert all(np.sum((y == p) & (split.subset == s)) >= 1 for s in ("train", "dev", "test"))
    assert _people(y, split, "known") == known and not absent & _people(y, split, "known")
    dev_strangers = _people(y, split, "unknown_dev") & absent
    test_strangers = _people(y, split, "unknown_test") & absent
    assert dev_strangers and test_strangers and not dev_strangers & test_strangers
    assert dev_strangers | test_strangers == absent
    for part in ("unknown_dev", "unknown_test"):
        probed_known = _people(y, split, part) - absent
        assert probed_known and probed_known <= known  # every known probe's person is enrolled


def test_uniform_people_give_the_documented_counts() -> None:
    # 20 people x 10 images: 6 verification people (round(0.3 * 20)), 14 classes of 6 train / 2 dev / 2 test
    # (round(1.5) = 2); round(0.3 * 6) = 2 absent people (10 probes each, one per unknown set), 4 known people
    # enrolling 1 image each and dealing their other 9 as 5 + 4
    y = _labels([10] * 20)
    split = build_course_split(y, seed=0)
    _check_rules(y, split)
    c = split.counts()
    assert (c["train"], c["dev"], c["test"], c["known"]) == (84, 28, 28, 4)
    assert c["unknown_dev"] + c["unknown_test"] == 56  # 2 x 10 strangers + 4 x 9 known probes
    assert (len(split.classes), len(split.known), len(split.absent)) == (14, 4, 2)
    assert not split.notes
    for p in split.absent:
        assert np.sum(y == p) == 10 and len(set(split.subset[y == p].tolist())) == 1
    for p in split.known:
        parts = Counter(split.subset[y == p].tolist())
        assert parts["known"] == 1 and sorted([parts["unknown_dev"], parts["unknown_test"]]) == [4, 5]


# (train, dev, test) of a classification person with n images, by hand from round(fraction * n) (half to even)
HAND_015 = {3: (1, 1, 1), 4: (2, 1, 1), 7: (5, 1, 1), 10: (6, 2, 2), 13: (9, 2, 2), 20: (14, 3, 3)}
# dev 0.45, test 0.45: dev + test would leave no train image for n = 4 (2 + 2), 10 (4 + 4: round(4.5) = 4) or 13
# (6 + 6 = 12 leaves 1); the larger of dev/test (dev on a tie) gives one back until train has one
HAND_045 = {3: (1, 1, 1), 4: (1, 1, 2), 7: (1, 3, 3), 10: (2, 4, 4), 13: (1, 6, 6), 20: (2, 9, 9)}


@pytest.mark.parametrize(("fraction", "hand"), [(0.15, HAND_015), (0.45, HAND_045)])
def test_classification_images_follow_the_rounding_rule(fraction: float, hand: dict) -> None:
    sizes = [3, 4, 7, 10, 13, 20] * 6 + [1, 2, 2]  # the last three are too small for a class
    y = _labels(sizes)
    split = build_course_split(y, seed=5, dev_fraction=fraction, test_fraction=fraction)
    _check_rules(y, split)
    size_of = {f"id{k:03d}": n for k, n in enumerate(sizes)}
    small = {p for p, n in size_of.items() if n < 3}
    assert small and small <= set(split.known) | set(split.absent)  # strangers / distractors, never a class
    # 39 people: round(0.3 * 39) = 12 drawn for verification, plus the small people not drawn
    n_verif = len(split.known) + len(split.absent)
    assert 12 <= n_verif <= 15 and len(split.classes) == 39 - n_verif
    assert len(split.absent) == 4  # round(0.3 * n): 3.6, 3.9, 4.2 and 4.5 (half to even) all round to 4
    for p in split.classes:
        got = tuple(int(np.sum((y == p) & (split.subset == s))) for s in ("train", "dev", "test"))
        assert got == hand[size_of[p]], p
    assert any("fewer than 3 images" in n for n in split.notes)


def test_known_per_identity_and_distractors() -> None:
    # verification people with 2 images and 2 enrolled: known-only distractors, noted
    y = _labels([6] * 10 + [2] * 4)
    split = build_course_split(y, seed=3, known_per_identity=2, verification_fraction=0.5)
    _check_rules(y, split)
    for p in split.known:
        assert np.sum((y == p) & (split.subset == "known")) == 2
    distractors = [p for p in split.known if np.sum(y == p) == 2]
    assert distractors  # with seed 3 some 2-image people are known: enrolled, never probed
    assert all(set(split.subset[y == p].tolist()) == {"known"} for p in distractors)
    assert any(f"{len(distractors)} known people have no image beyond their 2" in n for n in split.notes)


def test_absent_people_at_least_two_and_not_all() -> None:
    y = _labels([5] * 12)  # 4 verification people (round(3.6)); round(0.3 * 4) = 1, raised to 2
    split = build_course_split(y, seed=0)
    assert (len(split.classes), len(split.known), len(split.absent)) == (8, 2, 2)
    split = build_course_split(y, seed=0, absent_fraction=0.9)  # round(3.6) = 4 is every one: 3 absent, 1 known
    assert (len(split.known), len(split.absent)) == (1, 3)
    _check_rules(y, split)


def test_same_seed_same_split_other_seed_other_split() -> None:
    y = _labels([8] * 30)
    a, b, c = build_course_split(y, seed=1), build_course_split(y, seed=1), build_course_split(y, seed=2)
    assert np.array_equal(a.subset, b.subset) and a.absent == b.absent
    assert not np.array_equal(a.subset, c.subset)


@pytest.mark.parametrize(
    ("sizes", "options", "message"),
    [
        ([5] * 4, {}, "classification needs at least 2"),
        ([2] * 10, {}, "classification needs at least 2"),
        ([5] * 12, {"known_per_identity": 5}, "no known person has an image for unknown_dev"),
        ([5] * 12, {"dev_fraction": 0.5, "test_fraction": 0.5}, "must be below 1"),
        ([5] * 12, {"absent_fraction": 0.0}, "absent_fraction must be between 0 and 1"),
        ([5] * 12, {"min_class_images": 2}, "min_class_images must be an integer >= 3"),
        ([5] * 12, {"known_per_identity": 0}, "known_per_identity must be an integer >= 1"),
    ],
)
def test_impossible_layouts_are_refused(sizes: list[int], options: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        build_course_split(_labels(sizes), **options)


# ------------------------------------------------------------------ files


def _colour(person: int) -> tuple[int, int, int]:
    return (20 * person, 255 - 20 * person, (90 * person) % 256)


def _photos(root: Path, people: int = 12, per_person: int = 5) -> Path:
    """``root/person_XX/img_Y.jpg``: one flat colour per person, so a crop tells whose it is."""
    for k in range(people):
        folder = root / f"person_{k:02d}"
        folder.mkdir(parents=True)
        for j in range(per_person):
            Image.new("RGB", (24, 28), _colour(k)).save(folder / f"img_{j}.jpg", quality=95)
    return root


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _layout_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if not p.is_dir() and p.suffix not in (".csv", ".json"))


def test_folder_dataset_written_as_the_course_tree(tmp_path: Path) -> None:
    src = _photos(tmp_path / "photos")
    out = tmp_path / "course"
    summary = write_course_layout(src, out, seed=4).model_dump()
    # 12 people: 4 verification people (round(3.6)), 8 classes of 5 images: 3 train / 1 dev / 1 test (round(0.75));
    # 2 absent people (5 probes each), 2 known people enrolling 1 and dealing 4 as 2 + 2
    assert summary["counts"] == {
        "train": 24,
        "dev": 8,
        "test": 8,
        "known": 2,
        "unknown_dev": 9,
        "unknown_test": 9,
    }
    assert summary["identities"] == {"classes": 8, "known": 2, "absent": 2}
    assert summary["no_match_probes"] == {"unknown_dev": 5, "unknown_test": 5}
    assert summary["skipped"] == [] and "classification/train" in summary["usage"]
    for folder in ("classification/train", "classification/dev", "classification/test", "verification/known"):
        assert (out / folder).is_dir()
    for folder in ("verification/unknown_dev", "verification/unknown_test", "answers"):
        assert (out / folder).is_dir()
    assert json.loads((out / "course.json").read_text())["counts"] == summary["counts"]

    # every source photo lands in exactly one place, linked by absolute path
    files = _layout_files(out)
    assert all(p.is_symlink() and Path(os.readlink(p)).is_absolute() for p in files)
    targets = Counter(str(p.resolve()) for p in files)
    assert set(targets) == {str(p.resolve()) for p in src.rglob("*.jpg")} and set(targets.values()) == {1}

    # the split of the same labels tells where each photo must be
    photos = sorted(src.rglob("*.jpg"))
    split = build_course_split(np.array([p.parent.name for p in photos]), seed=4)
    subset_of = {str(p.resolve()): s for p, s in zip(photos, split.subset)}
    where = {
        "train": "classification/train",
        "dev": "classification/dev",
        "test": "classification/test",
        "known": "verification/known",
        "unknown_dev": "verification/unknown_dev",
        "unknown_test": "verification/unknown_test",
    }
    for p in files:
        rel = p.relative_to(out).as_posix()
        assert rel.startswith(where[subset_of[str(p.resolve())]] + "/"), rel
        if subset_of[str(p.resolve())] in ("train", "dev", "known"):  # folder per person, original file name
            assert p.parent.name == p.resolve().parent.name and p.name == p.resolve().name

    # flat folders: numbered names that do not reveal the person; the CSVs label every file
    absent = set(split.absent)
    for folder, csv_path in (
        ("classification/test", "answers/classification_test.csv"),
        ("verification/unknown_dev", "verification/verification_dev.csv"),
        ("verification/unknown_test", "answers/verification_test.csv"),
    ):
        names = sorted(p.name for p in (out / folder).iterdir())
        assert all(re.fullmatch(r"\d{6}\.jpg", n) for n in names)
        assert names == [f"{k:06d}.jpg" for k in range(len(names))]
        rows = _read(out / csv_path)
        assert [r["image"] for r in rows] == names
        for r in rows:
            person = (out / folder / r["image"]).resolve().parent.name
            assert r["label"] == ("n000000" if person in absent else person)
    dev_labels = Counter(r["label"] for r in _read(out / "verification/verification_dev.csv"))
    assert dev_labels["n000000"] == 5 and set(dev_labels) - {"n000000"} <= set(split.known)
    assert {r["label"] for r in _read(out / "answers/classification_test.csv")} == set(split.classes)

    # an output folder in use is refused, by name; --overwrite rebuilds the same layout
    with pytest.raises(CourseLayoutError, match=re.escape(str(out))):
        write_course_layout(src, out, seed=4)
    again = write_course_layout(src, out, seed=4, overwrite=True).model_dump()
    assert again["counts"] == summary["counts"] and _layout_files(out) == files


def test_copy_and_hardlink(tmp_path: Path) -> None:
    src = _photos(tmp_path / "photos")
    for link in ("copy", "hardlink"):
        out = tmp_path / link
        write_course_layout(src, out, seed=1, link=link)
        files = _layout_files(out)
        assert len(files) == 60 and not any(p.is_symlink() for p in files)
        if link == "hardlink":
            assert all(p.stat().st_nlink == 2 for p in files)
    with pytest.raises(CourseLayoutError, match="link must be one of"):
        write_course_layout(src, tmp_path / "x", link="move")
    # --overwrite never deletes the source: here the source is the copy's own train folder
    with pytest.raises(CourseLayoutError, match="holds the source"):
        write_course_layout(tmp_path / "copy/classification/train", tmp_path / "copy", overwrite=True)
    assert len(_layout_files(tmp_path / "copy")) == 60


def test_csv_source_with_unsafe_names_and_clashing_file_names(tmp_path: Path) -> None:
    """A CSV may give one person several files of one name (in other folders) and names with a slash."""
    rows = []
    for k in range(12):
        for j in range(5):
            path = tmp_path / "data" / f"batch{j}" / f"p{k}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), _colour(k)).save(path)
            rows.append(f"batch{j}/p{k}.jpg,team/{k:02d}")
    (tmp_path / "data" / "labels.csv").write_text("image,identity\n" + "\n".join(rows) + "\n")
    out = tmp_path / "course"
    summary = write_course_layout(tmp_path / "data" / "labels.csv", out, seed=2).model_dump()
    assert summary["renamed_identities"] == {f"team/{k:02d}": f"team_{k:02d}" for k in range(12)}
    assert len(_layout_files(out)) == 60
    train = sorted((out / "classification/train").iterdir())
    assert len(train) == 8
    for person in train:
        k = int(person.name.split("_")[1])
        assert sorted(p.name for p in person.iterdir()) == [f"p{k}.jpg", f"p{k}_2.jpg", f"p{k}_3.jpg"]
    labels = {r["label"] for r in _read(out / "answers/classification_test.csv")}
    assert labels == {p.name for p in train}
    assert safe_name(".hidden/a:b") == "_hidden_a_b" and safe_name("") == "_"


def test_prepared_cache_source_writes_png_crops(tmp_path: Path) -> None:
    src = _photos(tmp_path / "photos")
    cache = tmp_path / "cache"
    prepare(src, cache, PrepareOptions(size=20, align="none"), workers=0, progress=False)
    out = tmp_path / "course"
    summary = write_course_layout(cache, out, seed=4).model_dump()
    assert summary["source_kind"] == "prepared" and summary["options"]["link"] == "png"
    # the same labels in the same order as the photo folder: the same split, the same counts
    assert summary["counts"] == write_course_layout(src, tmp_path / "course2", seed=4).counts
    files = _layout_files(out)
    assert len(files) == 60 and all(p.suffix == ".png" and not p.is_symlink() for p in files)
    palette = np.array([_colour(k) for k in range(12)], dtype=np.float64)

    def person_of(path: Path) -> str:
        with Image.open(path) as im:
            assert im.size == (20, 20)
            mean = np.asarray(im.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)
        return f"person_{int(np.argmin(((palette - mean) ** 2).sum(axis=1))):02d}"

    for person in (out / "classification/train").iterdir():
        assert all(person_of(p) == person.name for p in person.iterdir())
    absent = set(json.loads((out / "course.json").read_text())["people"]["absent"])
    for folder, csv_path in (
        ("classification/test", "answers/classification_test.csv"),
        ("verification/unknown_dev", "verification/verification_dev.csv"),
        ("verification/unknown_test", "answers/verification_test.csv"),
    ):
        for r in _read(out / csv_path):
            person = person_of(out / folder / r["image"])
            assert r["label"] == ("n000000" if person in absent else person)


def test_orl_course_layout(shared_data: Path, tmp_path: Path) -> None:
    orl = shared_data / "orl"
    if not orl.is_dir():
        pytest.skip(f"ORL not found at {orl}")
    summary = write_course_layout(orl, tmp_path / "orl", seed=0).model_dump()
    # 40 people x 10: 12 verification people; 28 classes of 6 / 2 / 2; round(3.6) = 4 absent people (40 probes,
    # 2 people per unknown set), 8 known enrolling 1 and dealing 9 each (72 probes)
    c = summary["counts"]
    assert (c["train"], c["dev"], c["test"], c["known"]) == (168, 56, 56, 8)
    assert c["unknown_dev"] + c["unknown_test"] == 112
    assert summary["no_match_probes"] == {"unknown_dev": 20, "unknown_test": 20}
    assert summary["identities"] == {"classes": 28, "known": 8, "absent": 4}
    assert [s["source"] for s in summary["skipped"]] == [str(orl / "README")]
    assert len(list((tmp_path / "orl/classification/train").iterdir())) == 28
    assert all(p.suffix == ".pgm" for p in (tmp_path / "orl/classification/test").iterdir())


def test_cli_protocol_course(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _photos(tmp_path / "photos")
    out = tmp_path / "course"
    assert (
        main(["-q", "protocol", "course", "--data", str(src), "--out", str(out), "--seed", "3", "--link", "copy"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"]["train"] == 24 and printed["options"]["link"] == "copy" and "usage" not in printed
    assert len(_read(out / "verification/verification_dev.csv")) == printed["counts"]["unknown_dev"]
    assert main(["-q", "protocol", "course", "--data", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "protocol: error:" in err and str(out) in err and "not empty" in err and "Traceback" not in err
