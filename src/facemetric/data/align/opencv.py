"""``opencv`` alignment: Haar-cascade face detection, eye detection inside the face for the roll.

Needs OpenCV's Haar cascade files, shipped by ``opencv-python-headless`` 4.x (``cv2.data``) and
by Debian's ``opencv-data`` (``/usr/share/opencv4/haarcascades``); the 5.x wheels ship none.
When both eyes are found in the upper half of the face box the crop is warped with the eyes
on the template's eye points (upright, eyes level); otherwise it is a square crop around the
box. Haar cascades are fast but miss profile and small faces: ``dlib`` finds more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection, NoFaceError
from facemetric.data.align.base import Aligner, register_aligner
from facemetric.data.align.geometry import TEMPLATE_112, crop_box, pick_face, warp_to_template

CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")
# A Haar frontal-face box spans roughly brow to chin; this enlargement gives about the framing of
# the 112x112 template (eyes at 46 % of the height), measured against dlib crops on LFW.
BOX_MARGIN = 0.1


def find_cascade(name: str) -> Path:
    """Path of a Haar cascade XML file from the cv2 wheel or Debian's opencv-data."""
    folders: list[Path] = []
    try:
        import cv2

        if hasattr(cv2, "data"):
            folders.append(Path(cv2.data.haarcascades))
    except ImportError:
        pass
    folders += [Path(p) for p in CASCADE_DIRS]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise RuntimeError(
        f"Haar cascade {name} not found in {', '.join(map(str, folders))}: install opencv-python-headless<5 "
        "(pip install 'facemetric[align]') or Debian's opencv-data"
    )


@register_aligner("opencv")
class OpenCVAligner(Aligner):
    """Haar cascade detector (``haarcascade_frontalface_default``) plus eye cascade for the roll.

    Args:
        size, channels: output crop.
        min_face: smallest face side searched, as a fraction of the photo's shorter side.
        neighbors: the cascade's minNeighbors (higher: fewer, surer detections).
    """

    name = "opencv"

    def __init__(self, size: int = 112, channels: int = 3, min_face: float = 0.08, neighbors: int = 5) -> None:
        super().__init__(size, channels)
        try:
            import cv2
        except ImportError as exc:
            raise RuntimeError(f"the opencv backend needs OpenCV ({exc}): pip install 'facemetric[align]'") from None
        cv2.setNumThreads(1)  # parallelism comes from prepare's worker processes
        self.cv2 = cv2
        self.faces = cv2.CascadeClassifier(str(find_cascade("haarcascade_frontalface_default.xml")))
        self.eyes = cv2.CascadeClassifier(str(find_cascade("haarcascade_eye.xml")))
        self.min_face, self.neighbors = min_face, neighbors

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        gray = self.cv2.equalizeHist(np.asarray(rgb.convert("L"), dtype=np.uint8))
        side = max(int(min(gray.shape) * self.min_face), 24)
        found, _, weights = self.faces.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=self.neighbors, minSize=(side, side), outputRejectLevels=True
        )
        if len(found) == 0:
            raise NoFaceError("no face found by OpenCV's Haar cascade")
        boxes = [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]
        best = pick_face(boxes, rgb.width, rgb.height)
        box = boxes[best]
        eyes = self._eyes(gray, box)
        if eyes is not None:
            crop = warp_to_template(rgb, eyes, self.size, TEMPLATE_112[:2])
            landmarks = eyes.tolist()
        else:
            crop, landmarks = crop_box(rgb, box, self.size, BOX_MARGIN), None
        return crop, Detection(self.name, True, list(box), float(np.ravel(weights)[best]), landmarks, len(boxes))

    def _eyes(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        """Centres of the two eyes (image-left first) in the face's upper half, or None."""
        x0, y0, x1, y1 = (int(v) for v in box)
        w = x1 - x0
        upper = gray[y0 : y0 + (y1 - y0) // 2 + 1, x0:x1]
        found = self.eyes.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=4, minSize=(max(w // 8, 8),) * 2)
        if len(found) < 2:
            return None
        centres = sorted(((x + ew / 2 + x0, y + eh / 2 + y0, ew * eh) for x, y, ew, eh in found), key=lambda c: -c[2])[
            :2
        ]
        left, right = sorted(centres, key=lambda c: c[0])
        apart = right[0] - left[0]
        if not (0.25 * w < apart < 0.75 * w) or abs(right[1] - left[1]) > 0.5 * apart:
            return None  # not a plausible pair of eyes: an eyebrow, a nostril, one eye twice
        return np.array([[left[0], left[1]], [right[0], right[1]]])
