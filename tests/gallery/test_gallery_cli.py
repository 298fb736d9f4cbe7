"""`facemetric gallery` end to end with a trained checkpoint as the embedder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _gallery(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "facemetric", "-q", "gallery", "--gallery", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_gallery_commands(tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path) -> None:
    folder = tmp_path / "g"
    missing = _gallery(folder, "list")
    assert missing.returncode == 2 and "no gallery here" in missing.stderr and "Traceback" not in missing.stderr
    init = _gallery(folder, "init", "--model", str(tiny_checkpoint))
    assert init.returncode == 0, init.stderr[-2000:]
    assert json.loads(init.stdout)["dim"] == 128
    people = sorted(p for p in synthetic_faces.iterdir() if p.is_dir())[:5]
    for person in people:
        photos = [str(p) for p in sorted(person.glob("*.png"))[:2]]
        done = _gallery(folder, "enroll", person.name, *photos)
        assert done.returncode == 0 and json.loads(done.stdout)["added"] == 2, done.stderr[-2000:]
    again = _gallery(folder, "enroll", people[0].name, str(sorted(people[0].glob("*.png"))[0]))
    assert json.loads(again.stdout) == {"name": people[0].name, "added": 0, "duplicates": 1}
    listed = json.loads(_gallery(folder, "list").stdout)
    assert [p["name"] for p in listed] == [p.name for p in people] and {p["images"] for p in listed} == {2}

    calibrated = _gallery(folder, "calibrate", "--far", "0.1", "--data", str(synthetic_faces))
    assert calibrated.returncode == 0, calibrated.stderr[-2000:]
    calibration = json.loads(calibrated.stdout)
    assert calibration["photos"]["enrolled_left_out"] == 10 and calibration["photos"]["used"] == 72 - 10
    enrolled_photo = str(sorted(people[1].glob("*.png"))[0])
    verdict = json.loads(_gallery(folder, "verify", people[1].name, enrolled_photo).stdout)
    assert verdict["accepted"] is True and verdict["threshold"] == calibration["verify"]["value"]
    who = json.loads(_gallery(folder, "identify", enrolled_photo, "--top-k", "3").stdout)
    assert who["identity"] == people[1].name and len(who["candidates"]) == 3 and who["target_far"] == 0.1

    bad = _gallery(folder, "enroll", "../escape", enrolled_photo)
    assert bad.returncode == 2 and "not allowed" in bad.stderr
    other_model = _gallery(tmp_path / "g2", "init", "--model", str(tmp_path / "missing.pt"))
    assert other_model.returncode == 2 and "Traceback" not in other_model.stderr
    imported = _gallery(tmp_path / "g3", "init", "--model", str(tiny_checkpoint))
    assert imported.returncode == 0
    imported = json.loads(
        _gallery(tmp_path / "g3", "import", "--data", str(synthetic_faces), "--per-person", "2").stdout
    )
    assert imported["people"] == 12 and imported["photos_added"] == 24 and imported["skipped"] == 0
    removed = json.loads(_gallery(folder, "remove", people[0].name).stdout)
    assert removed == {"name": people[0].name, "removed_images": 2}
