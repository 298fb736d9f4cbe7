"""Render an HTML file in headless Chromium to a PNG (to check a report renders, and for the docs).

Chromium's ``--screenshot`` captures the window only, so the window is made taller than any
report and the uniform background below the content is trimmed away afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ScreenshotError(RuntimeError):
    """No headless browser, or it failed to render the page."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$FACEMETRIC_CHROMIUM`` if set, else the first of :data:`BROWSERS` on PATH."""
    explicit = os.environ.get("FACEMETRIC_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def trim_bottom(image: Image.Image, margin: int = 24) -> Image.Image:
    """Cut the rows at the bottom that are all the colour of the last row, keeping ``margin`` of them."""
    pixels = np.asarray(image.convert("RGB"))
    background = pixels[-1:, :, :]
    differs = np.flatnonzero(np.any(pixels != background, axis=(1, 2)))
    last = int(differs[-1]) + 1 if len(differs) else 0
    return image.crop((0, 0, image.width, min(image.height, last + margin)))


def screenshot(
    html: str | Path, png: str | Path, width: int = 1100, max_height: int = 16000, timeout: float = 120
) -> Path:
    """Render ``html`` at ``width`` pixels and write the page (up to ``max_height``) to ``png``."""
    browser = find_chromium()
    if browser is None:
        raise ScreenshotError(
            "no Chromium found (looked for " + ", ".join(BROWSERS) + " and $FACEMETRIC_CHROMIUM); "
            "install it, e.g. apt-get install chromium"
        )
    html, png = Path(html).resolve(), Path(png)
    if not html.is_file():
        raise ScreenshotError(f"{html}: no such HTML file")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "page.png"
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},{max_height}",
            f"--screenshot={raw}",
            html.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ScreenshotError(f"{browser} did not finish rendering {html} in {timeout:.0f} s") from exc
        if not raw.is_file():
            raise ScreenshotError(
                f"{browser} wrote no screenshot of {html} (exit {done.returncode}): {done.stderr[-800:]}"
            )
        png.parent.mkdir(parents=True, exist_ok=True)
        # a 256-colour palette keeps a long page with plots and photos under about 0.6 MB
        trim_bottom(Image.open(raw)).convert("RGB").quantize(colors=256).save(png, optimize=True)
    return png
