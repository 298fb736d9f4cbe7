"""The page's guided webcam enrolment in real Chromium, its camera faked from a video of a qmul-multiview person
turning the head (``--use-file-for-fake-video-capture``): the person is enrolled from frames spread over pose,
then unlocked (verified) by another photo, and a stranger is not."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facemetric.gallery.service import Gallery
from facemetric.report.screenshot import find_chromium
from servers import start_server, stop_server

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 320, 240
PERSON = "AdamB"
# (tilt, pan) of the video's views, 090_090 frontal: the head turning left and right, and a little up
VIEWS = [(90, 90), (90, 60), (90, 120), (90, 40), (90, 140), (80, 90), (90, 70), (90, 110)]


def _frame(path: Path) -> Image.Image:
    """A qmul photo (100x100 grey) at twice its size in the middle of a grey 320x240 picture: a webcam's view."""
    face = Image.open(path).convert("L").resize((200, 200), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (WIDTH, HEIGHT), 110)
    canvas.paste(face, ((WIDTH - 200) // 2, (HEIGHT - 200) // 2))
    return canvas


def _y4m(frames: list[Image.Image], path: Path, repeat: int = 3) -> Path:
    """A YUV4MPEG2 video (4:2:0, 10 frames/s) of grey ``frames``, each ``repeat`` times: Chromium's fake camera."""
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        chroma = np.full((HEIGHT // 2) * (WIDTH // 2) * 2, 128, np.uint8).tobytes()
        for frame in frames:
            for _ in range(repeat):
                f.write(b"FRAME\n" + np.asarray(frame, np.uint8).tobytes() + chroma)
    return path


def test_guided_webcam_enrolment_then_unlock(shared_data: Path, tmp_path: Path) -> None:
    browser_path = find_chromium()
    if browser_path is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    qmul = shared_data / "qmul-multiview"
    video = _y4m([_frame(qmul / PERSON / f"{PERSON}_{t:03d}_{p:03d}.ras") for t, p in VIEWS], tmp_path / "turn.y4m")
    probe = tmp_path / "probe.png"  # another view of the person, not in the video
    _frame(qmul / PERSON / f"{PERSON}_100_090.ras").save(probe)
    stranger = tmp_path / "stranger.png"
    _frame(qmul / "DanJ" / "DanJ_090_090.ras").save(stranger)
    others = sorted(p for p in qmul.iterdir() if p.is_dir() and p.name not in (PERSON, "DanJ"))
    calibration = tmp_path / "calibration"  # people neither enrolled nor the stranger, near-frontal views
    for person in others[3:11]:
        (calibration / person.name).mkdir(parents=True)
        for pan in (70, 80, 90, 100, 110):
            _frame(person / f"{person.name}_090_{pan:03d}.ras").save(calibration / person.name / f"{pan}.png")
    folder = tmp_path / "gallery"
    Gallery.create(folder, "sface").close()
    proc, url = start_server(folder)
    try:
        for person in others[:3]:  # three more people enrolled from one frontal photo (calibration needs two)
            photo = io.BytesIO()
            _frame(person / f"{person.name}_090_090.ras").save(photo, format="PNG")
            r = httpx.post(
                f"{url}/api/enroll",
                data={"name": person.name},
                files={"files": ("p.png", photo.getvalue())},
                timeout=60,
            )
            assert r.status_code == 200, r.text
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=browser_path,
                args=[
                    "--no-sandbox",
                    "--use-fake-ui-for-media-stream",  # grants the camera without asking
                    "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={video}",
                ],
            )
            page = browser.new_page()
            page.add_init_script("window.facemetricGuidedSettleMs = 500; window.facemetricGuidedGapMs = 170;")
            page.goto(url)
            page.fill("#guided-name", PERSON)
            page.click("#guided-start")
            page.wait_for_function(
                "document.getElementById('result-text').textContent.match(/^(Enrolled|Not enrolled)/)", timeout=120_000
            )
            text = page.inner_text("#result-text")
            assert text.startswith(f"Enrolled {PERSON} from the webcam"), text
            answer = json.loads(page.inner_text("#result-json"))
            yaws = [k["pose"]["yaw"] for k in answer["kept"] if k["pose"]]
            assert 3 <= len(answer["kept"]) <= 5 and len(answer["kept"]) + len(answer["skipped"]) == 15
            assert max(yaws) - min(yaws) >= 20, f"the kept frames are not spread over pose: yaws {yaws}"
            assert page.locator("#guided-kept img").count() == len(answer["kept"])
            assert f"{PERSON} ({len(answer['kept'])} photos)" in page.inner_text("#people").splitlines()

            calibrate = subprocess.run(
                [sys.executable, "-m", "facemetric", "-q", "gallery", "--gallery", str(folder), "calibrate"]
                + ["--far", "0.05", "--data", str(calibration)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert calibrate.returncode == 0, calibrate.stderr[-2000:]
            for photo, verdict in (
                (probe, f"Accepted: this is {PERSON}"),
                (stranger, f"Rejected: this is not {PERSON}"),
            ):
                page.fill("#verify-name", PERSON)
                page.set_input_files("#verify-file", str(photo))
                page.click("#verify-submit")
                page.wait_for_function(
                    "document.getElementById('result-text').textContent.match(/^(Accepted|Rejected|Could not)/)"
                )
                assert page.inner_text("#result-text").startswith(verdict), page.inner_text("#result-text")
            browser.close()
    finally:
        stop_server(proc)
