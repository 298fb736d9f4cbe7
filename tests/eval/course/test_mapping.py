"""The known-or-nobody task (CMU 11-785 HW2P2): threshold rules on hand-made scores, then the whole task on
generated photos embedded by a colour-pattern stand-in model, and the messages of bad inputs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.core.errors import FacemetricError
from facemetric.eval.course.mapping import MappingOptions, map_unknowns
from facemetric.eval.course.mapping_files import MappingError, problems_path, write_submission
from facemetric.eval.course.mapping_scores import (
    best_accuracy_threshold,
    calibrate,
    cross_validated_accuracy,
    decide_labels,
    fmr_threshold,
    fold_assignment,
    mapping_accuracy,
    mapping_correct,
)
from gallery_fakes import ColourEmbedder, person_photo

# --------------------------------------------------------------------------- pure functions


def probes(*groups: tuple[str, list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, top_correct, is_known) from groups: "KC" known, top right; "KW" known, top wrong; "U" no-match."""
    scores, correct, known = [], [], []
    for kind, values in groups:
        scores += values
        correct += [kind == "KC"] * len(values)
        known += [kind != "U"] * len(values)
    return np.array(scores), np.array(correct), np.array(known)


def test_accepted_at_the_threshold_itself():
    # score >= threshold: accepted (right for a known person with the right top identity); -inf: never
    s, c, k = probes(("KC", [0.5]), ("U", [0.5]), ("KC", [-math.inf]), ("U", [-math.inf]))
    assert mapping_correct(s, c, k, 0.5).tolist() == [True, False, False, True]
    assert mapping_accuracy(s, c, k, 0.5) == 0.5
    assert decide_labels(["a", "b", "", ""], s, 0.5, "n000000") == ["a", "b", "n000000", "n000000"]
    assert decide_labels(["a", "b", "", ""], s, 0.6, "n000000") == ["n000000"] * 4


def test_best_threshold_separable():
    # reject 0.2 and 0.4, accept 0.7 and 0.9: every cut in (0.4, 0.7] is right for all four
    t, acc = best_accuracy_threshold(*probes(("KC", [0.9, 0.7]), ("U", [0.2, 0.4])))
    assert t == pytest.approx(0.55)
    assert acc == 1.0


def test_best_threshold_ties_take_the_lowest_run_and_its_midpoint():
    # sorted: .3U .4U .6KW .7KC .75U .8KC .9KC; right per cut (accepting from group j on):
    # j=0:3 j=1:4 j=2:5 j=3:5 j=4:4 j=5:5 j=6:4 j=7:3 -> best 5/7 in runs {2,3} and {5};
    # the lower run {2,3} covers thresholds (0.4, 0.7], midpoint 0.55
    s, c, k = probes(("KC", [0.9, 0.8, 0.7]), ("U", [0.3, 0.4, 0.75]), ("KW", [0.6]))
    t, acc = best_accuracy_threshold(s, c, k)
    assert t == pytest.approx(0.55)
    assert acc == pytest.approx(5 / 7)
    assert mapping_accuracy(s, c, k, t) == pytest.approx(5 / 7)
    assert mapping_accuracy(s, c, k, 0.77) == pytest.approx(5 / 7)  # the other best run
    assert mapping_accuracy(s, c, k, 0.72) == pytest.approx(4 / 7)


def test_best_threshold_accept_all_and_reject_all():
    t, acc = best_accuracy_threshold(*probes(("KC", [0.5, 0.6])))
    assert (t, acc) == (pytest.approx(-0.25), 1.0)  # halfway between -1 and the lowest score
    t, acc = best_accuracy_threshold(*probes(("U", [0.2, 0.6])))
    assert (t, acc) == (pytest.approx(0.8), 1.0)  # halfway between the highest score and 1


def test_best_threshold_probes_not_embedded():
    # -inf: never accepted, so right only for a no-match probe; accepting 0.9 gives 2 of 3
    s, c, k = probes(("KC", [0.9]), ("U", [-math.inf]), ("KW", [-math.inf]))
    t, acc = best_accuracy_threshold(s, c, k)
    assert t == pytest.approx(-0.05)
    assert acc == pytest.approx(2 / 3)


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        s = np.round(rng.uniform(-1, 1, n), 1)  # rounded: many ties
        c, k = rng.random(n) < 0.6, rng.random(n) < 0.5
        t, acc = best_accuracy_threshold(s, c, k)
        candidates = np.concatenate([[-2.0, 2.0], s, s + 0.05])
        assert acc == pytest.approx(max(mapping_accuracy(s, c, k, x) for x in candidates))
        assert mapping_accuracy(s, c, k, t) == pytest.approx(acc)


def test_fmr_threshold():
    no_match = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert fmr_threshold(no_match, 0.1) == 0.95  # 1 of 10 may be accepted: only 0.95
    assert fmr_threshold(no_match, 0.25) == 0.9  # floor(2.5) = 2: 0.9 and 0.95
    strict = fmr_threshold(no_match, 0.05)  # none may be accepted
    assert 0.95 < strict < 0.95 + 1e-9
    assert fmr_threshold([0.5, 0.8, 0.8, 0.9], 0.5) == 0.9  # 2 allowed, but 0.8 is tied: only 0.9
    assert fmr_threshold([-math.inf, -math.inf, 0.3, 0.6], 0.5) == 0.3  # the unembedded count, never accepted
    with pytest.raises(ValueError, match="no-match"):
        fmr_threshold([], 0.1)
    s, c, k = probes(("KC", [0.99, 0.97]), ("U", no_match))
    assert calibrate(s, c, k, "fmr", 0.1) == 0.95


def test_cross_validation_hand_computed():
    # in-sample: sorted .3U .75KC .8U .9KC -> best 3/4 (reject .3, threshold 0.525)
    s, c, k = probes(("KC", [0.9, 0.75]), ("U", [0.3, 0.8]))
    assert best_accuracy_threshold(s, c, k) == (pytest.approx(0.525), 0.75)
    # leave-one-out (folds = n whatever the seed):
    #   without .9KC: t = 0.525, .9 accepted, right;  without .75KC: t = 0.85, .75 rejected, wrong;
    #   without .3U: accept all (t = -0.125), .3 accepted, wrong;  without .8U: t = 0.525, .8 accepted, wrong
    assert cross_validated_accuracy(s, c, k, folds=4, seed=0) == 0.25
    assert cross_validated_accuracy(s, c, k, folds=4, seed=123) == 0.25


def test_cross_validation_is_not_above_in_sample_on_noisy_scores():
    rng = np.random.default_rng(0)
    known = np.r_[np.ones(60, bool), np.zeros(40, bool)]
    scores = np.where(known, rng.normal(0.6, 0.15, 100), rng.normal(0.4, 0.15, 100))
    correct = known & (rng.random(100) < 0.9)
    in_sample = best_accuracy_threshold(scores, correct, known)[1]
    cv = cross_validated_accuracy(scores, correct, known, folds=5, seed=0)
    assert 0.5 < cv < in_sample


def test_fold_assignment_is_stratified_and_seeded():
    known = np.r_[np.ones(10, bool), np.zeros(5, bool)]
    fold = fold_assignment(known, 5, seed=1)
    for f in range(5):
        assert (fold[known] == f).sum() == 2 and (fold[~known] == f).sum() == 1
    assert (fold == fold_assignment(known, 5, seed=1)).all()
    assert not (fold == fold_assignment(known, 5, seed=2)).all()
    with pytest.raises(ValueError, match="folds"):
        fold_assignment(known, 16)


def test_write_submission(tmp_path: Path):
    path = write_submission(tmp_path / "s.csv", ["b.jpg", "a.jpg"], ["n1", "n000000"], ["image", "label"])
    assert path.read_text() == "image,label\nb.jpg,n1\na.jpg,n000000\n"
    with pytest.raises(ValueError, match="unique"):
        write_submission(tmp_path / "t.csv", [0, 0], ["a", "b"], ["id", "label"])
    assert not (tmp_path / "t.csv").exists()
    assert problems_path(tmp_path / "sub.csv") == tmp_path / "sub.problems.csv"


# --------------------------------------------------------------------------- the task on generated photos

KNOWN = {f"n{p:06d}": p for p in (1, 2, 3, 4)}  # identity folder -> generated "person"


def write_photo(path: Path, person: int, shot: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(person_photo(person, shot))


def make_layout(root: Path, positional: bool = False) -> tuple[Path, dict[str, str], dict[str, str]]:
    """``verification/`` with 4 known people (2 photos each) and an identity folder without photos; dev:
    the 4 known people twice and 4 others twice, listed in shuffled order; test: the known people, 3
    others, an undecodable file and a flat grey photo (no "face"). Returns (folder, dev truth, test truth)."""
    v = root / "verification"
    for name, person in KNOWN.items():
        for shot in (0, 1):
            write_photo(v / "known" / name / f"{shot}.png", person, shot)
    (v / "known" / "n000099").mkdir()
    (v / "known" / "n000099" / "readme.txt").write_text("no photos here")
    rng = np.random.default_rng(3)
    dev_people = [(p, name) for name, p in KNOWN.items()] + [(p, "n000000") for p in (11, 12, 13, 14)]
    dev_items = [(p, shot, label) for p, label in dev_people for shot in (2, 3)]
    dev = {}
    for k, (p, shot, label) in zip(rng.permutation(len(dev_items)), dev_items):
        write_photo(v / "unknown_dev" / f"img_{k:03d}.png", p, shot)
        dev[f"img_{k:03d}.png"] = label
    rows = list(dev.items())
    rng.shuffle(rows)
    if positional:
        order = sorted(dev)
        rows = [(str(order.index(name)), label) for name, label in rows]
    with (v / "verification_dev.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["id" if positional else "image", "label"], *rows])
    test = {}
    for k, (p, label) in enumerate([(p, name) for name, p in KNOWN.items()] + [(21, "n000000"), (22, "n000000")]):
        write_photo(v / "unknown_test" / f"t{k:02d}.jpg", p, 4)
        test[f"t{k:02d}.jpg"] = label
    write_photo(v / "unknown_test" / "t99.jpg", 23, 4)
    test["t99.jpg"] = "n000000"
    (v / "unknown_test" / "broken.jpg").write_bytes(b"\x00garbage, not a JPEG" * 10)
    test["broken.jpg"] = "n000000"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(v / "unknown_test" / "grey.png")
    test["grey.png"] = "n000000"
    return v, dev, test


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def embedder() -> ColourEmbedder:
    return ColourEmbedder()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], dict[str, str]]:
    return make_layout(tmp_path_factory.mktemp("hw2p2"))


def run(embedder: ColourEmbedder, v: Path, submission: Path | None = None, **options):
    return map_unknowns(
        embedder,
        v / "known",
        None,
        v / "verification_dev.csv",
        v / "unknown_test",
        submission,
        MappingOptions(**options),
        progress=False,
    )


def test_map_unknowns_end_to_end(embedder, layout, tmp_path: Path):
    v, dev, test = layout
    result = run(embedder, v, tmp_path / "submission.csv")
    report = result.report.model_dump()
    assert report["rule"] == "accuracy" and report["image_ids"] == "names"
    assert report["dev_images"] == 16 and report["dev_accuracy"] == 1.0 and report["cv_accuracy"] == 1.0
    assert report["known_probes"] == {"n": 8, "correct": 8, "wrong_identity": 0, "wrongly_rejected": 0, "flagged": 0}
    assert report["no_match_probes"]["correctly_rejected"] == 8 and report["no_match_probes"]["falsely_accepted"] == 0
    assert report["rank1"] == 1.0
    assert report["test_predictions"] == {"n": 9, "mapped": 4, "no_match": 3, "flagged": 2}
    assert report["known"]["identities_without_image"] == ["n000099"]
    assert any("n000099" in note for note in report["notes"])

    rows = read_rows(tmp_path / "submission.csv")
    assert rows[0] == ["image", "label"]  # the dev CSV's header
    assert rows[1:] == [[name, test[name]] for name in sorted(test)]  # every test image, sorted, right
    assert result.test_images == sorted(test) and result.test_labels == [test[n] for n in sorted(test)]

    flagged = read_rows(tmp_path / "submission.problems.csv")
    assert flagged[0] == ["image", "reason"]
    assert [r[0] for r in flagged[1:]] == ["broken.jpg", "grey.png"]
    assert "flat image" in flagged[2][1]
    assert [(p["split"], p["image"]) for p in result.model_dump()["problems"]] == [
        ("test", "broken.jpg"),
        ("test", "grey.png"),
    ]
    assert result.model_dump()["predictions"][0] == {"image": "broken.jpg", "label": "n000000"}
    assert json.loads(json.dumps(result.model_dump()))["report"]["test_predictions"]["flagged"] == 2


def test_map_unknowns_positional_ids(embedder, tmp_path: Path):
    v, dev, test = make_layout(tmp_path, positional=True)
    report = run(embedder, v, tmp_path / "sub.csv", template="max").report.model_dump()
    assert report["image_ids"] == "positions" and report["dev_accuracy"] == 1.0
    assert any("integer ids" in note for note in report["notes"])
    rows = read_rows(tmp_path / "sub.csv")
    assert rows[0] == ["id", "label"]
    assert rows[1:] == [[str(i), test[name]] for i, name in enumerate(sorted(test))]


def test_map_unknowns_fmr_rule_and_fixed_threshold(embedder, layout, tmp_path: Path):
    v, dev, test = layout
    result = run(embedder, v, rule="fmr", target_fmr=0.0)
    report = result.report.model_dump()
    assert report["rule"] == "fmr" and report["no_match_probes"]["falsely_accepted"] == 0
    assert result.test_labels == [test[n] for n in sorted(test)]
    fixed = map_unknowns(
        embedder, v / "known", None, None, v / "unknown_test", tmp_path / "s.csv", MappingOptions(threshold=0.5)
    )
    fixed_report = fixed.report.model_dump()
    assert fixed.threshold == 0.5 and fixed_report["rule"] == "fixed" and fixed_report["dev_accuracy"] is None
    assert read_rows(tmp_path / "s.csv")[0] == ["image", "label"]
    everyone = map_unknowns(
        embedder, v / "known", None, None, v / "unknown_test", options=MappingOptions(threshold=-1.0), progress=False
    )
    assert everyone.report.model_dump()["test_predictions"]["mapped"] == 7  # all but the two flagged


# --------------------------------------------------------------------------- bad inputs


def test_needs_dev_or_threshold(embedder, layout):
    v, _, _ = layout
    with pytest.raises(MappingError, match="threshold"):
        map_unknowns(embedder, v / "known", None, None, v / "unknown_test")


def test_unknown_label_names_the_line(embedder, layout, tmp_path: Path):
    v, dev, _ = layout
    bad = tmp_path / "dev.csv"
    names = sorted(dev)
    bad.write_text("image,label\n" + f"{names[0]},{dev[names[0]]}\n{names[1]},n777777\n")
    with pytest.raises(MappingError) as err:
        map_unknowns(embedder, v / "known", v / "unknown_dev", bad, None)
    message = str(err.value)
    assert str(bad) in message and "line 3" in message and "n777777" in message and "n000001" in message
    assert isinstance(err.value, FacemetricError) and isinstance(err.value, ValueError)


def test_empty_known_folder(embedder, layout, tmp_path: Path):
    v, _, _ = layout
    known = tmp_path / "known"
    (known / "n000001").mkdir(parents=True)
    (known / "n000002").mkdir()
    (known / "n000002" / "notes.txt").write_text("x")
    with pytest.raises(MappingError, match="empty known folder") as err:
        map_unknowns(embedder, known, None, v / "verification_dev.csv", None)
    assert str(known) in str(err.value)
    with pytest.raises(MappingError, match="no such folder") as err:
        map_unknowns(embedder, tmp_path / "nowhere", None, v / "verification_dev.csv", None)
    assert str(tmp_path / "nowhere") in str(err.value)


def test_dev_csv_not_matching_the_folder(embedder, layout, tmp_path: Path):
    v, dev, _ = layout
    names = sorted(dev)
    bad = tmp_path / "dev.csv"
    rows = [f"{n},{dev[n]}" for n in names[1:]] + ["ghost.png,n000000", f"{names[2]},{dev[names[2]]}"]
    bad.write_text("image,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(MappingError, match="does not match the folder") as err:
        map_unknowns(embedder, v / "known", v / "unknown_dev", bad, None)
    message = str(err.value)
    assert str(bad) in message and str(v / "unknown_dev") in message
    assert "1 row(s) name images not in" in message and "ghost.png" in message
    assert "1 image(s) of the folder have no row" in message and names[0] in message
    assert "1 image(s) have more than one row" in message and names[2] in message


def test_dev_csv_without_header(embedder, layout, tmp_path: Path):
    v, dev, _ = layout
    bad = tmp_path / "dev.csv"
    bad.write_text("".join(f"{n},{label}\n" for n, label in dev.items()))
    with pytest.raises(MappingError, match="header") as err:
        map_unknowns(embedder, v / "known", v / "unknown_dev", bad, None)
    assert str(bad) in str(err.value)
