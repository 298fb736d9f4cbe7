"""`facemetric protocol`, `eval` (verification, open set, retrieval) and `report`, end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemetric.eval.suite.folder import is_eval_dir
from facemetric.report.screenshot import find_chromium

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facemetric", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def run(synthetic_faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evalrun") / "run"
    done = _cli(
        "-q",
        "train",
        "--data",
        str(synthetic_faces),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--set",
        "data.image_size=[48, 48]",
        "--set",
        "data.val_identities=4",
        "--set",
        "data.cache_dir=null",
        "--set",
        "sampler.p=4",
        "--set",
        "train.progress=false",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_protocol_eval_and_report_from_files(run: Path, synthetic_faces: Path, tmp_path: Path) -> None:
    data = str(synthetic_faces)
    for name in ("pairs.csv", "pairs.txt"):
        made = _cli(
            "-q",
            "protocol",
            "pairs",
            "--data",
            data,
            "-o",
            str(tmp_path / name),
            "--folds",
            "4",
            "--pairs-per-fold",
            "20",
        )
        assert made.returncode == 0, made.stderr[-2000:]
        assert json.loads(made.stdout)["pairs"] == 160
    made = _cli("-q", "protocol", "open-set", "--data", data, "-o", str(tmp_path / "split.csv"))
    assert made.returncode == 0, made.stderr[-2000:]
    counts = json.loads(made.stdout)
    assert counts["gallery"] == 8 and counts["val_unknown"] + counts["test_unknown"] == 4 * 6

    reports = {}
    for name in ("pairs.csv", "pairs.txt"):  # the same pairs in both formats: the same figures
        ev = _cli("-q", "eval", "--model", str(run / "last.pt"), "--pairs", str(tmp_path / name), "--data", data)
        assert ev.returncode == 0, ev.stderr[-2000:]
        reports[name] = json.loads(ev.stdout)["verification"]
    assert reports["pairs.csv"]["accuracy"] == reports["pairs.txt"]["accuracy"]
    assert reports["pairs.csv"]["folds_from_file"] and reports["pairs.csv"]["n_folds"] == 4

    out = tmp_path / "ev"
    ev = _cli(
        "-q",
        "eval",
        "--model",
        str(run / "last.pt"),
        "--pairs",
        str(tmp_path / "pairs.csv"),
        "--open-set",
        str(tmp_path / "split.csv"),
        "--retrieval",
        "--data",
        data,
        "--out",
        str(out),
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    summary = json.loads(ev.stdout)
    assert {"verification", "identification", "retrieval"} <= summary.keys() and "curves" not in summary["verification"]
    assert summary["run_dir"] == str(run.resolve()) and summary["retrieval"]["num_queries"] == 72
    assert is_eval_dir(out)
    with open(out / "decisions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    split = {r["path"]: r for r in csv.DictReader((tmp_path / "split.csv").read_text().splitlines())}
    assert [r["id"] for r in rows] == [p for p, r in split.items() if r["subset"].startswith("test_")]
    enrolled = {r["identity"] for r in split.values() if r["subset"] == "gallery"}
    assert {r["label"] for r in rows} <= enrolled | {"no correspondence"}

    shot = tmp_path / "report.png"
    rep = _cli("-q", "report", str(out), *(["--screenshot", str(shot)] if find_chromium() else []))
    assert rep.returncode == 0, rep.stderr[-2000:]
    html = (out / "report.html").read_text()
    assert "Error gallery" in html and "Training curves" in html and "data:image/png;base64," in html
    if find_chromium():
        pixels = np.asarray(Image.open(shot).convert("L"))
        assert pixels.shape[1] == 1100 and pixels.shape[0] > 1500, pixels.shape  # the whole page, not a window
        assert pixels.std() > 20  # text and plots, not a blank page


def test_report_of_a_run_evaluates_its_held_out_people(run: Path) -> None:
    rep = _cli("-q", "report", str(run), "--far", "0.1")
    assert rep.returncode == 0, rep.stderr[-2000:]
    doc = json.loads((run / "eval" / "eval.json").read_text())
    assert doc["data"]["identities"] == 4 and doc["checkpoint"].endswith(("best.pt", "last.pt"))
    assert doc["verification"]["n_folds"] == 2 and doc["verification"]["folds_from_file"]
    assert doc["identification"]["open_set"]["threshold"]["target_far"] == 0.1
    assert (run / "eval" / "report.html").is_file() and (run / "eval" / "report.md").is_file()
    before = (run / "eval" / "eval.json").stat().st_mtime_ns
    again = _cli("-q", "report", str(run))  # an existing evaluation is rendered, not redone
    assert again.returncode == 0 and (run / "eval" / "eval.json").stat().st_mtime_ns == before


def test_bad_evaluation_requests_are_clear(run: Path, tmp_path: Path, synthetic_faces: Path) -> None:
    (tmp_path / "neither").mkdir()
    (tmp_path / "neither" / "notes.txt").write_text("neither an evaluation nor a run")
    cases = [
        (["report", str(tmp_path / "neither")], "neither an evaluation folder"),
        (["eval", "--model", str(tmp_path / "none.pt")], "nothing to evaluate"),
        (
            ["protocol", "pairs", "--data", str(synthetic_faces), "-o", str(tmp_path / "p.csv"), "--folds", "7"],
            "use fewer folds",
        ),
    ]
    for args, message in cases:
        done = _cli("-q", *args)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    pairs = tmp_path / "p.csv"
    pairs.write_text("path1,path2,same\nperson_000/person_000_0001.png,person_000/missing.png,1\n")
    done = _cli("-q", "eval", "--model", str(run / "last.pt"), "--pairs", str(pairs), "--data", str(synthetic_faces))
    assert done.returncode == 2 and "line 2: " in done.stderr and "missing.png" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
