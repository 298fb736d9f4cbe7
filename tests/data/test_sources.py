from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.data.sources import DatasetError, scan_csv, scan_flat, scan_folders, scan_source


def test_orl_folders(shared_data: Path) -> None:
    m = scan_source(shared_data / "orl")
    assert m.layout == "folders"
    assert len(m) == 400 and len(m.identity_names) == 40
    assert m.identities.count("s7") == 10
    # the top-level README is not inside an identity folder: reported, not used
    assert [(p.name, r) for p, r in m.skipped] == [("README", "file at the top level, not inside an identity folder")]


def test_lfw_descends_into_images(shared_data: Path) -> None:
    m = scan_source(shared_data / "lfw-devtrain")
    assert m.layout == "folders" and m.root.name == "images"
    assert len(m) == 9525 and len(m.identity_names) == 4038


def test_celeba_csv(shared_data: Path) -> None:
    m = scan_source(shared_data / "celeba-199")
    assert m.layout == "csv" and len(m.identity_names) == 199 and not m.skipped
    assert m == scan_source(shared_data / "celeba-199" / "labels.csv")


def test_yale_flat_files_without_extension(shared_data: Path) -> None:
    m = scan_source(shared_data / "yale")
    assert m.layout == "flat" and len(m.identity_names) == 15
    assert "subject01" in m.identities and any(p.name == "subject01.glasses" for p in m.paths)


def test_folder_scan_reports_empty_identity_and_non_images(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "a.jpg").write_bytes(b"x")
    (tmp_path / "alice" / "notes.txt").write_text("hi")
    (tmp_path / "bob").mkdir()
    m = scan_folders(tmp_path)
    assert [p.name for p in m.paths] == ["a.jpg"]
    reasons = {p.name: r for p, r in m.skipped}
    assert reasons == {"notes.txt": "not an image file (by extension)", "bob": "identity folder contains no images"}


def test_csv_errors_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"x")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,person\nx.jpg,1\n")
    with pytest.raises(DatasetError, match="missing column"):
        scan_csv(bad)
    ok = tmp_path / "labels.csv"
    ok.write_text("image,identity\nx.jpg,1\ngone.jpg,2\n")
    m = scan_csv(ok)
    assert len(m) == 1 and "line 3" in m.skipped[0][1]


def test_flat_pattern_and_errors(tmp_path: Path) -> None:
    for name in ("ann_01.png", "ann_02.png", "ben_01.png"):
        (tmp_path / name).write_bytes(b"x")
    assert scan_flat(tmp_path, r"^([a-z]+)_").identities == ["ann", "ann", "ben"]
    with pytest.raises(DatasetError, match="no such file"):
        scan_source(tmp_path / "nope")
    with pytest.raises(DatasetError, match="unknown layout"):
        scan_source(tmp_path, layout="zip")
