"""Measurement behind ``YUNET_CHIP_FACE`` (dlib's face chip cut from YuNet's five points, ``dlib-chip`` with
``detector=yunet``).

    python benchmarks/yunet_chip_template.py [--data ../shared/data] [--count 400]

For evenly spaced LFW, ORL and CelebA photos in which dlib's HOG detector and YuNet find the same face,
it maps the chip's four corners and centre to the photo by the transform fitted to YuNet's points and back
by dlib's own (HOG + 5-point predictor, ``get_face_chip``), in chip pixels (150 a side). Reported per set:
the displacement face by face (mean, max) and that of the mean transform (the template's bias), for the
template derived from dlib's mean face (``YUNET_CHIP_FACE``) and for one measured on LFW (the mean of
YuNet's points in dlib-chip coordinates), and dlib's chip against dlib's chip of the mirrored photo (how
far dlib's own landmarks move). The derived template is kept when the measured one is no better on the
sets it was not measured on. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from common import SHARED_DATA
from facemetric.core.faces import NoFaceError
from facemetric.data.align import similarity_transform
from facemetric.data.align.dlib_chip import CHIP_PADDING, CHIP_SIZE, DlibChipAligner
from facemetric.data.align.mean_face import DLIB_CHIP_5_POINTS, YUNET_CHIP_FACE
from facemetric.data.align.yunet import YunetFinder, main_face
from facemetric.data.images import open_image

PROBES = np.array([[0, 0], [CHIP_SIZE, 0], [0, CHIP_SIZE], [CHIP_SIZE, CHIP_SIZE], [CHIP_SIZE / 2, CHIP_SIZE / 2]])


def to_chip(face: np.ndarray) -> np.ndarray:
    """Face coordinates ([0, 1] on dlib's mean face) -> chip pixels, as dlib's get_face_chip_details."""
    return (CHIP_PADDING + face) / (2 * CHIP_PADDING + 1) * CHIP_SIZE


def to_face(chip: np.ndarray) -> np.ndarray:
    return chip / CHIP_SIZE * (2 * CHIP_PADDING + 1) - CHIP_PADDING


def chip_to_photo(face: np.ndarray, points: np.ndarray) -> np.ndarray:
    """3x3 matrix of the similarity transform dlib's chip_details fits: chip pixels -> photo pixels."""
    return np.vstack([similarity_transform(to_chip(face), points), [0.0, 0.0, 1.0]])


def moved(theirs: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """Where the probes of our chip land in theirs, minus where they are (5 x 2, chip pixels)."""
    relative = (np.linalg.inv(theirs) @ ours)[:2]
    return PROBES @ relative[:, :2].T + relative[:, 2] - PROBES


def summary(shifts: list[np.ndarray]) -> dict:
    stack = np.array(shifts)
    per_face = np.linalg.norm(stack, axis=2).mean(1)
    bias = np.linalg.norm(stack.mean(0), axis=1).mean()
    return {
        "mean_px": round(float(per_face.mean()), 2),
        "max_px": round(float(per_face.max()), 2),
        "bias_px": round(float(bias), 2),
    }


def landmarks(
    files: list[Path], hog: DlibChipAligner, yunet: YunetFinder
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(dlib's 5 points, YuNet's 5 points, dlib's points on the mirrored photo mapped back) per photo where both
    find the same face."""
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for path in files:
        photo = open_image(path, 3)
        try:
            _, det = hog(photo)
            _, mirrored = hog(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
        except NoFaceError:
            continue
        found = yunet(np.asarray(photo))
        if not found.boxes:
            continue
        best = main_face(found.boxes, found.scores, photo.width, photo.height)
        a, b = found.boxes[best], det.box
        if np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2) > (b[2] - b[0]) / 2:
            continue  # not the same face
        back = np.array(mirrored.landmarks)[[2, 3, 0, 1, 4]]  # the mirror swaps the eyes
        back[:, 0] = photo.width - 1 - back[:, 0]
        rows.append((np.array(det.landmarks), found.landmarks[best], back))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="folder of lfw-devtrain/, orl/, celeba-199/")
    parser.add_argument("--count", type=int, default=400, help="photos per set at most (evenly spaced)")
    args = parser.parse_args(argv)
    sets = {
        "lfw": sorted((args.data / "lfw-devtrain" / "images").glob("*/*.jpg")),
        "orl": sorted((args.data / "orl").glob("s*/*.pgm")),
        "celeba": sorted((args.data / "celeba-199" / "images").glob("*.jpg")),
    }
    hog, yunet = DlibChipAligner(detector="hog"), YunetFinder()
    rows = {}
    for name, files in sets.items():
        rows[name] = landmarks(files[:: max(1, len(files) // args.count)][: args.count], hog, yunet)
    dlib_chips = {name: [chip_to_photo(DLIB_CHIP_5_POINTS, d) for d, _, _ in r] for name, r in rows.items()}
    measured = np.mean(
        [
            to_face((np.linalg.inv(t) @ np.c_[y, np.ones(5)].T)[:2].T)
            for t, (_, y, _) in zip(dlib_chips["lfw"], rows["lfw"])
        ],
        axis=0,
    )
    report: dict = {"benchmark": "yunet_chip_template", "derived": YUNET_CHIP_FACE.round(4).tolist()}
    report["measured_on_lfw"] = measured.round(4).tolist()
    for name, r in rows.items():
        report[name] = {
            "faces": len(r),
            "derived": summary(
                [moved(t, chip_to_photo(YUNET_CHIP_FACE, y)) for t, (_, y, _) in zip(dlib_chips[name], r)]
            ),
            "measured_on_lfw": summary(
                [moved(t, chip_to_photo(measured, y)) for t, (_, y, _) in zip(dlib_chips[name], r)]
            ),
            "dlib_vs_dlib_mirrored": summary(
                [moved(t, chip_to_photo(DLIB_CHIP_5_POINTS, m)) for t, (_, _, m) in zip(dlib_chips[name], r)]
            ),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
