"""A course assignment (CMU 11-785 HW2P2 shape) end to end on ORL: ``protocol course`` builds the layout,
the course recipe trains with dev classification logged, ``predict classify`` and ``predict verify``
write a valid submission row for every test image, scored against the layout's answer keys."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from facemetric.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _accuracy(submission: Path, answers: Path) -> float:
    truth = {r["image"]: r["label"] for r in _rows(answers)}
    guess = {r["image"]: r["label"] for r in _rows(submission)}
    assert set(guess) == set(truth)  # one row for every test image, nothing else
    return sum(guess[k] == v for k, v in truth.items()) / len(truth)


def test_course_assignment_on_orl(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    layout = tmp_path / "course"
    assert (
        main(["-q", "protocol", "course", "--data", str(shared_data / "orl"), "--out", str(layout), "--link", "copy"])
        == 0
    )
    built = json.loads(capsys.readouterr().out)
    assert built["identities"]["classes"] == 28 and built["counts"]["test"] == 56
    cls, ver = layout / "classification", layout / "verification"

    def train(config: str, out: Path, epochs: int, *extra: str) -> list[dict[str, str]]:
        argv = ["-q", "train", str(REPO / "configs" / "course" / config), "--data", str(cls / "train")]
        argv += ["--out", str(out), "--epochs", str(epochs), "--set", f"data.dev_source={cls / 'dev'}"]
        for key in (
            "data.image_size=[56, 56]",
            f"data.cache_dir={tmp_path / 'cache'}",
            "sampler.p=16",
            "sampler.k=2",
            "augment.shift=0.08",
            "train.val_every=8",
            "train.progress=false",
            *extra,
        ):
            argv += ["--set", key]
        assert main(argv) == 0
        capsys.readouterr()
        return _rows(out / "val.csv")

    # the recipe: a softmax classifier, then an ArcFace fine-tune of it
    val = train("classify.yaml", tmp_path / "classify", 24)
    assert [int(r["epoch"]) for r in val] == [8, 16, 24]  # dev classification logged during training
    assert float(val[-1]["classify_top1"]) >= 0.7
    run = tmp_path / "arcface"
    tuned = train("arcface.yaml", run, 16, f"model.init={tmp_path / 'classify' / 'best.pt'}")
    assert float(tuned[-1]["classify_top1"]) >= 0.9
    val = tuned

    submission = tmp_path / "classification.csv"
    argv = [
        "-q",
        "predict",
        "classify",
        "--model",
        str(run / "best.pt"),
        "--test",
        str(cls / "test"),
        "-o",
        str(submission),
    ]
    assert main([*argv, "--dev", str(cls / "dev")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dev"]["top1"] == pytest.approx(max(float(r["classify_top1"]) for r in val), abs=1e-6)
    top1 = _accuracy(submission, layout / "answers" / "classification_test.csv")
    assert top1 >= 0.85
    assert {r["label"] for r in _rows(submission)} <= {p.name for p in (cls / "train").iterdir()}

    mapped = tmp_path / "verification.csv"
    argv = ["-q", "predict", "map", "--model", str(run / "best.pt"), "--known", str(ver / "known")]
    argv += ["--dev-csv", str(ver / "verification_dev.csv"), "--test", str(ver / "unknown_test"), "-o", str(mapped)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    rows = _rows(mapped)
    assert list(rows[0]) == ["image", "label"]  # the dev CSV's header
    known = {p.name for p in (ver / "known").iterdir()}
    assert {r["label"] for r in rows} <= known | {"n000000"}
    answers = layout / "answers" / "verification_test.csv"
    accuracy = _accuracy(mapped, answers)
    no_match = sum(r["label"] == "n000000" for r in _rows(answers)) / len(rows)
    print(
        f"ORL: dev top-1 by epoch {[r['classify_top1'] for r in val]}, classification test {top1:.3f}, "
        f"mapping test {accuracy:.3f} "
        f"(majority baseline {max(no_match, 1 - no_match):.3f}), dev {report['report']['dev_accuracy']:.3f}"
    )
    assert accuracy >= max(no_match, 1 - no_match) + 0.08  # clearly better than the majority label for every image
    assert report["report"]["cv_accuracy"] >= 0.8
