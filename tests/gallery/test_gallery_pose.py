"""A gallery records each face's head pose: in its enrolments and in its answers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("cv2")
pytest.importorskip("dlib")


def test_enrolments_and_answers_carry_the_head_pose(shared_data: Path, tmp_path: Path) -> None:
    from facemetric.core.errors import MissingDependencyError
    from facemetric.embedders import load_embedder
    from facemetric.gallery.location import GalleryLocation
    from facemetric.gallery.photos import Photo
    from facemetric.gallery.service import Gallery

    person = shared_data / "qmul-multiview" / "AdamB"
    if not person.is_dir():
        pytest.skip("qmul-multiview is not in ../shared/data")
    try:
        embedder = load_embedder("dlib-resnet?detector=yunet")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    gallery = Gallery.create(GalleryLocation.parse(tmp_path / "gallery"), embedder)
    try:
        frontal, turned = person / "AdamB_090_090.ras", person / "AdamB_090_140.ras"  # pan 90: frontal; 140: +50
        gallery.enroll("Adam", [Photo(frontal.read_bytes(), frontal.name)])
        answer = gallery.verify("Adam", Photo(turned.read_bytes(), turned.name))
        assert answer.detection.pose is not None
        assert answer.detection.pose.yaw > 20  # turned to the image's right (about 0.73 of the pan, data.md)
        assert answer.name == "Adam" and answer.score > 0.5
    finally:
        gallery.close()
    with sqlite3.connect(tmp_path / "gallery" / "gallery.db") as db:
        (stored,) = db.execute("SELECT detection FROM images").fetchone()
    pose = json.loads(stored)["pose"]
    assert set(pose) == {"yaw", "pitch", "roll"} and abs(pose["yaw"]) < 12  # the frontal photo
