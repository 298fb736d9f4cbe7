from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.cli import main

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["-q", "demo", "--out", str(tmp_path / "demo"), "--set", "train.epochs=1"]) == 0
    table = capsys.readouterr().out
    assert "untrained model, held-out identities" in table and "`facemetric eval` pairs file" in table
    assert (tmp_path / "demo" / "demo_report.json").exists()
    assert (tmp_path / "demo" / "heldout_pairs.txt").read_text().startswith("10\t")
    html = (tmp_path / "demo" / "run" / "eval" / "report.html").read_text()
    assert "Error gallery" in html and "Training curves" in html
