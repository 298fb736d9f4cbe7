"""One YuNet detection, several crops: what a fusion of models (``dlib-resnet+sface``) needs from a photo.

Each model of a fusion reads its own crop: InsightFace-format and SFace recognisers the ArcFace 112x112
template warp (``yunet``), dlib's network its 150x150 chip (``dlib-chip``). Both are cut from the same
five points, so the photo is searched once (YuNet, :class:`~facemetric.data.align.yunet.YunetFinder`)
and every crop is cut from the main face's points, exactly as the model's own aligner would cut it
(``yunet``: :func:`~facemetric.data.align.geometry.warp_to_template`; ``dlib-chip`` with
``detector=yunet``: dlib's chip extraction from the points).

The crops are laid side by side on one canvas (height: the largest crop's, width: their sum, black
below a smaller one), so a fusion's crops are one (N, H, W, 3) array like any model's and go through
the worker processes, the gallery and the API unchanged; :func:`canvas_slots` says where each crop is.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from facemetric.core.faces import Detection
from facemetric.data.align.base import Aligner
from facemetric.data.align.dlib import load_dlib
from facemetric.data.align.dlib_chip import chip_from_points
from facemetric.data.align.geometry import TEMPLATE_112, warp_to_template
from facemetric.data.align.pose import pose_record
from facemetric.data.align.yunet import MAX_SIDE, MIN_SIDE, SCORE_THRESHOLD, UPSAMPLE, YunetFinder, attach_finder

CUT_KINDS = ("yunet", "dlib-chip")  # crops that can be cut from YuNet's five points


def parse_cut(cut: str) -> tuple[str, int]:
    """``"yunet:112"`` -> ("yunet", 112); a ValueError naming the kinds for anything else."""
    kind, _, size = cut.partition(":")
    if kind not in CUT_KINDS or not size.isdigit() or int(size) < 8:
        raise ValueError(f"a shared-detection crop is KIND:SIZE with KIND one of {', '.join(CUT_KINDS)}, got {cut!r}")
    return kind, int(size)


def canvas_slots(cuts: tuple[str, ...]) -> list[tuple[int, int]]:
    """(x offset, size) of each crop on the canvas, left to right."""
    slots, x = [], 0
    for cut in cuts:
        size = parse_cut(cut)[1]
        slots.append((x, size))
        x += size
    return slots


def canvas_shape(cuts: tuple[str, ...]) -> tuple[int, int]:
    """(height, width) of the canvas holding ``cuts``."""
    sizes = [parse_cut(c)[1] for c in cuts]
    return max(sizes), sum(sizes)


class SharedYunetAligner(Aligner):
    """YuNet once per photo, then one crop per entry of ``cuts`` (``"yunet:112"``, ``"dlib-chip:150"``), laid
    side by side on one canvas (module docstring).

    Args:
        cuts: the crops, as KIND:SIZE, in the fusion's order.
        score_threshold, max_side, min_side, upsample: YuNet's settings (:class:`~.yunet.YunetAligner`).
    """

    finder: YunetFinder  # attach_finder's

    name = "yunet-shared"

    def __init__(
        self,
        cuts: tuple[str, ...] = ("yunet:112",),
        score_threshold: float = SCORE_THRESHOLD,
        max_side: int = MAX_SIDE,
        min_side: int = MIN_SIDE,
        upsample: int = UPSAMPLE,
    ) -> None:
        self.cuts = tuple(cuts)
        if not self.cuts:
            raise ValueError("a shared-detection aligner needs at least one crop")
        height, width = canvas_shape(self.cuts)
        super().__init__(height, 3)
        self.height, self.width = height, width
        attach_finder(self, score_threshold, max_side, min_side, upsample)
        self._dlib = load_dlib() if any(parse_cut(c)[0] == "dlib-chip" for c in self.cuts) else None

    def detect_and_crop(self, rgb: Image.Image) -> tuple[np.ndarray, Detection]:
        pixels = np.asarray(rgb, dtype=np.uint8)
        box, score, points, count = self.finder.main(pixels)
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        for cut, (x, size) in zip(self.cuts, canvas_slots(self.cuts)):
            if parse_cut(cut)[0] == "yunet":
                canvas[:size, x : x + size] = warp_to_template(rgb, points, size, TEMPLATE_112)
            else:
                canvas[:size, x : x + size] = chip_from_points(self._dlib, pixels, box, points, size)
        pose = pose_record(points, "five", rgb.size)
        return canvas, Detection(self.name, True, list(box), score, points.tolist(), count, list(rgb.size), pose)
