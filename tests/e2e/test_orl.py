"""ORL end to end: 30 identities train, 10 held out; the trained model must verify well, the untrained one not;
the run's report (evaluated on the held-out people) renders, and in headless Chromium when it is installed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from facemetric.core.config import load_config
from facemetric.train.build import build_run

pytestmark = pytest.mark.slow


def test_orl_learns_within_three_cpu_minutes(shared_data: Path, tmp_path: Path) -> None:
    cfg = load_config(
        None,
        [
            f"data.source={shared_data / 'orl'}",
            "data.val_identities=10",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"train.out={tmp_path / 'run'}",
            "train.epochs=60",
            "train.val_every=20",
            "train.progress=false",
            "sampler.p=8",
            "sampler.k=4",
            "augment.shift=0.08",  # ORL's photos are not aligned (configs/orl.yaml): without it 0.82 here
        ],
    )
    cpu_start = time.process_time()
    run = build_run(cfg)
    assert len(run.data.train.identity_names) == 30 and len(run.data.val.identity_names) == 10
    assert not set(run.data.train.identity_names) & set(run.data.val.identity_names)
    before = run.validate_untrained().model_dump()
    result = run.fit()
    cpu_seconds = time.process_time() - cpu_start
    assert result.val is not None
    after = result.val.summary()
    print(
        f"ORL: untrained {before['accuracy']:.4f}, trained {after['accuracy']:.4f} "
        f"(EER {after['eer']:.4f}, AUC {after['auc']:.4f}), {cpu_seconds:.0f} CPU-s"
    )
    assert cpu_seconds < 180
    assert after["accuracy"] >= 0.85
    assert after["accuracy"] - before["accuracy"] >= 0.08, "training must clearly beat the untrained network"
    assert after["eer"] < before["eer"] - 0.05
    assert (result.out_dir / "best.pt").exists() and (result.out_dir / "config.yaml").exists()
    _report_of_the_run(result.out_dir, tmp_path)


def _report_of_the_run(run: Path, tmp_path: Path) -> None:
    """The run's report: evaluated on the 10 held-out people, rendered, and screenshotted by Chromium."""
    import json

    import numpy as np
    from PIL import Image

    from facemetric.eval.suite.held_out import evaluate_run_to_folder
    from facemetric.report import render_report
    from facemetric.report.screenshot import find_chromium, screenshot

    folder = evaluate_run_to_folder(run, far=0.1, progress=False)
    doc = json.loads((folder / "eval.json").read_text())
    assert doc["data"]["identities"] == 10 and doc["checkpoint"].endswith("best.pt")
    assert doc["verification"]["n_folds"] == 5 and doc["verification"]["accuracy"] >= 0.85
    assert doc["identification"]["closed_set"]["rank1"] >= 0.8
    assert doc["retrieval"]["precision_at_1"] >= 0.85
    paths = render_report(folder)
    html = paths.html.read_text()
    assert "Training curves" in html and "Not available: " not in html, "a real run fills every section"
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs it): the screenshot was not checked")
    pixels = np.asarray(Image.open(screenshot(paths.html, tmp_path / "report.png")).convert("L"))
    assert pixels.shape[1] == 1100 and pixels.shape[0] > 5000 and pixels.std() > 20
