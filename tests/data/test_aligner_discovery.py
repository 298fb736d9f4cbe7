"""Aligners are plugins like every other component: one module each in ``facemetric.data.align``, found by
discovery, with their detector libraries (dlib, OpenCV) loaded only when an aligner is built."""

from __future__ import annotations

import subprocess
import sys

from facemetric.data.align import ALIGNERS

HEAVY = ("cv2", "dlib", "onnxruntime")


def test_every_aligner_module_is_discovered() -> None:
    assert set(ALIGNERS.names()) >= {"none", "center", "opencv", "dlib", "dlib-chip", "yunet"}


def test_importing_the_plugin_packages_loads_no_detector_library() -> None:
    code = (
        "import sys\n"
        "import facemetric.data.align, facemetric.embedders, facemetric.models, facemetric.train.callbacks\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
