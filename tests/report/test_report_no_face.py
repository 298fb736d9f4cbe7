"""The report's line and section on photos without a detectable face, from eval.json's typed ``no_face``."""

from __future__ import annotations

import json
import re

import pytest

from facemetric.report import ReportError, render_report

BARE = {"format": "facemetric-eval/1", "created": "2026-11-23T10:00:00", "checkpoint": "best.pt", "embedding_dim": 8}
MESSAGE = "no face found by dlib's HOG detector"


def _photo(path: str, subset: str | None = None) -> dict:
    detection = {"backend": "dlib-resnet/fallback", "found": False, "image_size": [92, 112]}
    return {"path": path, "reason": MESSAGE, "detection": detection, "subset": subset}


NO_FACE = {
    "policy": "fallback",
    "rule": "cut as the model's spec cuts a photo without detection",
    "n_photos": 2,
    "n_pairs": 3,
    "photos": [_photo("Orl_S2/Orl_S2_0006.jpg"), _photo("Orl_S33/<b>_0004.jpg", "gallery")],
    "pairs": [
        {"index": k, "line": k + 2, "path1": "a.jpg", "path2": "Orl_S2/Orl_S2_0006.jpg", "same": k == 0, "score": 0.5}
        for k in range(3)
    ],
    "open_set": {"gallery": 1},
}


def test_line_and_section_list_the_photos_and_pairs(tmp_path) -> None:
    (tmp_path / "eval.json").write_text(json.dumps(dict(BARE, no_face=NO_FACE)))
    paths = render_report(tmp_path)
    md, html_text = paths.markdown.read_text(), paths.html.read_text()
    line = "2 photos had no detectable face; 3 pairs affected; open set: 1 gallery (policy: fallback)"
    assert f"- **Photos without a face:** {line}" in md
    section = md.split("## Photos without a detectable face", 1)[1].split("\n## ", 1)[0]
    assert line in section and "Orl\\_S2/Orl\\_S2\\_0006.jpg | " in section
    assert len(re.findall(r"^\| [234] \| a\.jpg \|", section, flags=re.M)) == 3  # one row per pair, by file line
    assert "Orl_S33/&lt;b&gt;_0004.jpg" in html_text and "<b>_0004" not in html_text  # escaped
    assert "dlib-resnet/fallback" in section and "central crop" in section


def test_no_section_when_every_photo_had_a_face(tmp_path) -> None:
    empty = {"policy": "fallback", "rule": "...", "n_photos": 0, "n_pairs": 0}
    (tmp_path / "eval.json").write_text(json.dumps(dict(BARE, no_face=empty)))
    md = render_report(tmp_path).markdown.read_text()
    assert "without a detectable face" not in md and "Photos without a face" not in md


def test_an_unknown_no_face_field_is_refused(tmp_path) -> None:
    (tmp_path / "eval.json").write_text(json.dumps(dict(BARE, no_face=dict(NO_FACE, photo_count=2))))
    with pytest.raises(ReportError, match=r"no_face\.photo_count: unknown field"):
        render_report(tmp_path)
