"""The gallery with the pretrained dlib-resnet embedder on ORL: one photo enrolled per person, the rest identified."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("dlib")
pytestmark = pytest.mark.slow


def test_dlib_resnet_gallery_identifies_orl(shared_data: Path, tmp_path: Path) -> None:
    from common import orl_files
    from facemetric.embedders import load_embedder
    from gallery_orl import TARGET_RANK1, closed_set

    files, people, shots = orl_files(shared_data / "orl")
    result = closed_set(tmp_path / "gallery", load_embedder("dlib-resnet"), files, people, shots)
    assert result["enrolled"] == 40 and result["probes"] == 360
    assert result["rank1"] >= TARGET_RANK1, result  # measured 0.9889 (BENCHMARKS.md)


def test_orl_gallery_answers_the_same_after_sqlite_to_postgres_and_back(
    shared_data: Path, tmp_path: Path, pg_url: str
) -> None:
    from common import orl_files
    from facemetric.embedders import load_embedder
    from gallery_orl import transfer_round_trip

    files, people, shots = orl_files(shared_data / "orl")
    result = transfer_round_trip(tmp_path, pg_url, load_embedder("dlib-resnet"), files, people, shots)
    assert result["probes"] >= 390  # HOG misses 4 of ORL's 400 photos
    postgres, back = result["postgresql_vs_sqlite"], result["sqlite_after_round_trip_vs_sqlite"]
    assert postgres["different_decisions_or_candidates"] == 0 and postgres["largest_score_difference"] < 1e-5
    assert postgres["largest_far_at_score_difference"] < 1e-3
    assert back["identical_json"] == back["answers"] == result["probes"]
