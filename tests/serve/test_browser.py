"""The web page in headless Chromium (Debian's, driven by Playwright): enrol, then verify, and read the result.

``FACEMETRIC_PAGE_SCREENSHOT=docs/images/gallery-page.png pytest tests/serve/test_browser.py`` also saves
the page after the first verification (the picture in docs/gallery.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from facemetric.gallery.service import Gallery
from facemetric.report.screenshot import find_chromium
from servers import start_server, stop_server

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow


def test_enrol_and_verify_through_the_page(tiny_checkpoint: Path, synthetic_faces: Path, tmp_path: Path) -> None:
    browser_path = find_chromium()
    if browser_path is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    folder = tmp_path / "gallery"
    Gallery.create(folder, str(tiny_checkpoint)).close()
    people = sorted(p for p in synthetic_faces.iterdir() if p.is_dir())
    proc, url = start_server(folder)
    try:
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            for person in people[:4]:  # enrol four people through the page, two photos each
                photos = sorted(person.glob("*.png"))[:2]
                page.fill("#enroll-name", person.name)
                page.set_input_files("#enroll-files", [str(p) for p in photos])
                page.click("#enroll-submit")
                page.wait_for_function(
                    "name => document.getElementById('result-text').textContent.startsWith('Enrolled ' + name)",
                    arg=person.name,
                )
            page.wait_for_function("document.querySelectorAll('#people li').length === 4")
            assert page.inner_text("#people").splitlines()[0] == f"{people[0].name} (2 photos)"

            # calibrate from labelled photos (another process writing the same gallery), then verify
            calibrate = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "facemetric",
                    "-q",
                    "gallery",
                    "--gallery",
                    str(folder),
                    "calibrate",
                    "--far",
                    "0.2",
                    "--data",
                    str(synthetic_faces),
                ],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert calibrate.returncode == 0, calibrate.stderr[-2000:]
            threshold = json.loads(calibrate.stdout)["verify"]["value"]
            # an enrolled photo of the person claimed (score 1: accepted), then someone else's photo
            for k, (claimed, photo) in enumerate(
                (
                    (people[0].name, sorted(people[0].glob("*.png"))[0]),
                    (people[1].name, sorted(people[2].glob("*.png"))[3]),
                )
            ):
                page.fill("#verify-name", claimed)
                page.set_input_files("#verify-file", str(photo))
                page.click("#verify-submit")
                page.wait_for_function("document.getElementById('result-text').textContent.includes('threshold')")
                shown = page.inner_text("#result-text")
                truth = httpx.post(
                    f"{url}/api/verify", data={"name": claimed}, files={"file": ("p.png", photo.read_bytes())}
                ).json()
                assert truth["threshold"] == pytest.approx(threshold) and (k == 1 or truth["accepted"] is True)
                verdict = f"Accepted: this is {claimed}" if truth["accepted"] else f"Rejected: this is not {claimed}"
                assert shown.startswith(verdict), (shown, truth)
                assert f"threshold {truth['threshold']:.3f}" in shown
                if k == 0 and os.environ.get("FACEMETRIC_PAGE_SCREENSHOT"):  # the docs' picture of the page
                    page.screenshot(path=os.environ["FACEMETRIC_PAGE_SCREENSHOT"], full_page=True)
                page.fill("#verify-name", "")
            browser.close()
    finally:
        stop_server(proc)
