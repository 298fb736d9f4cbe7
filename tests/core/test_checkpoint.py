from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facemetric.core import checkpoint as ck


def test_round_trip_and_atomic_replace(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    ck.save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    assert ck.load_checkpoint(path)["step"] == 1

    def crash(obj, f, *a, **k):  # dies half-way through writing
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        ck.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert ck.load_checkpoint(path)["step"] == 1  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(ck.CheckpointError, match="cannot be read"):
        ck.load_checkpoint(junk)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ck.CheckpointError, match="not a facemetric checkpoint"):
        ck.load_checkpoint(tmp_path / "other.pt")
