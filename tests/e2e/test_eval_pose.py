"""`facemetric eval` on photos whose names give the head's yaw (QMUL's <Name>_<tilt>_<pan>): the pose section of
eval.json, recounted from the pair scores, and the report's table and plot."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

PANS = ("090", "100", "120", "140", "160", "180")  # yaw 0, 10, 30, 50, 70, 90


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facemetric", *args], capture_output=True, text=True, timeout=900)


def test_eval_reports_verification_by_yaw_from_file_names(
    tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path
) -> None:
    people = sorted(p for p in synthetic_faces.iterdir() if p.is_dir())
    photos = tmp_path / "photos"
    for person in people:
        (photos / person.name).mkdir(parents=True)
        for pan, source in zip(PANS, sorted(person.glob("*.png"))):
            shutil.copy(source, photos / person.name / f"{person.name}_090_{pan}.png")
    rows = []
    for k, person in enumerate(people):
        frontal = f"{person.name}/{person.name}_090_090.png"
        other = people[(k + 1) % len(people)].name
        for pan in PANS[1:]:
            rows.append((frontal, f"{person.name}/{person.name}_090_{pan}.png", 1))
            rows.append((frontal, f"{other}/{other}_090_{pan}.png", 0))
    with (photos / "pairs.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("path1", "path2", "same"), *rows])
    out = tmp_path / "eval"
    args = ("-q", "eval", "--model", str(tiny_checkpoint), "--data", str(photos), "--pairs", str(photos / "pairs.csv"))
    done = _cli(*args, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    pose = json.loads((out / "eval.json").read_text())["pose"]
    assert "QMUL" in pose["source"] and pose["photos"] == pose["photos_with_yaw"] == len(people) * len(PANS)
    # recount every band from the pair scores and the names
    scores = np.load(out / "scores.npz")
    yaw = np.array([abs(int(Path(p).stem[-3:]) - 90) for p in scores["path2"]])  # path1 is frontal
    accepted = scores["scores"].astype(np.float64) >= pose["threshold"]  # as eval compares them
    for band in pose["bands"]:
        low, high = band["low"], band["high"]
        rows_in = (yaw <= high) & ((yaw > low) if low else (yaw >= 0))
        genuine, impostor = rows_in & (scores["same"] == 1), rows_in & (scores["same"] == 0)
        assert band["genuine"] == int(genuine.sum())
        assert band["accepted"] == int(accepted[genuine].sum())
        assert band["false_accepts"] == int(accepted[impostor].sum()) and band["impostors"] == impostor.sum()
    assert [p["yaw"] for p in pose["curve"]] == [10.0, 30.0, 50.0, 70.0, 90.0]
    assert all(p["genuine"] == len(people) for p in pose["curve"])
    # the report draws the table and the plot
    done = _cli("-q", "report", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    html = (out / "report.html").read_text()
    assert "Verification by head pose" in html and "45-60 degrees" in html
    assert (out / "report_files" / "tar_by_yaw.png").stat().st_size > 1000
    # --pose none: no section
    done = _cli(*args, "--out", str(tmp_path / "nopose"), "--pose", "none")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "nopose" / "eval.json").read_text()).get("pose") is None
