"""Head pose from five landmarks against qmul-multiview's known pans and tilts.

    python benchmarks/head_pose.py --out benchmarks/results/DATE-head-pose.json

qmul-multiview names each photo by the head's tilt and pan (``<Name>_<TTT>_<PPP>.ras``, 090_090 frontal, 10
degree steps). Every photo goes through the ``yunet`` aligner (YuNet's five points) and the ``dlib``
aligner (HOG + dlib's 5-point predictor); each detection's pose (``facemetric.data.align.pose``) is set
against the photo's known angles: pan -> yaw, tilt -> pitch, with the sign and scale of a least-squares
line through the origin (the set's own convention for which way is positive is not documented; the
fitted slope says it). Reported per band of |pan|: photos with a face, the mean absolute yaw error
against the known pan, the slope, and the same for pitch against tilt on the photos within 30 degrees of
frontal pan. The recorded angles are the camera's, by the set's description; a person's own head
position varies around them by a few degrees, which no estimator can remove.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from common import SHARED_DATA, print_and_write
from facemetric.core.faces import NoFaceError
from facemetric.data.align import build_aligner
from facemetric.data.images import open_image

BANDS = ((0, 0), (10, 20), (30, 40), (50, 60), (70, 90))


def angles_of(path: Path) -> tuple[int, int]:
    """(tilt, pan) in degrees from frontal, from a qmul-multiview file name."""
    tilt, pan = path.stem.split("_")[-2:]
    return int(tilt) - 90, int(pan) - 90


def estimate(aligner_name: str, files: list[Path]) -> np.ndarray:
    """(yaw, pitch, roll) per photo, NaN where no face was found or the pose could not be fitted."""
    aligner = build_aligner(aligner_name, size=112)
    out = np.full((len(files), 3), np.nan)
    for k, path in enumerate(tqdm(files, desc=aligner_name, unit="photo")):
        try:
            _, det = aligner(open_image(path, 3))
        except NoFaceError:
            continue
        if det.pose is not None:
            out[k] = det.pose["yaw"], det.pose["pitch"], det.pose["roll"]
    return out


def slope(known: np.ndarray, estimated: np.ndarray) -> float:
    """Least-squares slope of ``estimated`` on ``known`` through the origin."""
    return float(known @ estimated / max(float(known @ known), 1e-9))


def summarise(pose: np.ndarray, tilt: np.ndarray, pan: np.ndarray) -> dict[str, Any]:
    """Found rates and errors per |pan| band; the sign of each angle from its fitted slope."""
    ok = ~np.isnan(pose[:, 0])
    yaw_sign = np.sign(slope(pan[ok], pose[ok, 0])) or 1.0
    near = ok & (np.abs(pan) <= 30)
    pitch_sign = np.sign(slope(tilt[near], pose[near, 1])) or 1.0
    result: dict[str, Any] = {
        "photos": len(pan),
        "found": round(float(ok.mean()), 4),
        "yaw_slope": round(slope(pan[ok], pose[ok, 0]), 3),
        "yaw_corr": round(float(np.corrcoef(pan[ok], pose[ok, 0])[0, 1]), 4),
        "pitch_slope_near_frontal": round(slope(tilt[near], pose[near, 1]), 3),
        "pitch_corr_near_frontal": round(float(np.corrcoef(tilt[near], pose[near, 1])[0, 1]), 4),
        "roll_mean_abs": round(float(np.abs(pose[ok, 2]).mean()), 2),
        "bands": {},
    }
    for lo, hi in BANDS:
        rows = (np.abs(pan) >= lo) & (np.abs(pan) <= hi)
        found = rows & ok
        yaw_err = np.abs(yaw_sign * pose[found, 0] - pan[found])
        near_tilt = found & (np.abs(pan) <= 30)
        result["bands"][f"pan_{lo}-{hi}"] = {
            "photos": int(rows.sum()),
            "found": round(float(found.sum() / max(rows.sum(), 1)), 4),
            "estimated_abs_yaw_mean": round(float(np.abs(pose[found, 0]).mean()), 2) if found.any() else None,
            "yaw_mean_abs_error": round(float(yaw_err.mean()), 2) if found.any() else None,
            "yaw_median_abs_error": round(float(np.median(yaw_err)), 2) if found.any() else None,
            "pitch_mean_abs_error": (
                round(float(np.abs(pitch_sign * pose[near_tilt, 1] - tilt[near_tilt]).mean()), 2)
                if near_tilt.any()
                else None
            ),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--limit", type=int, default=None, help="about this many photos, evenly spread")
    parser.add_argument("--aligners", nargs="+", default=["yunet", "dlib"], choices=["yunet", "dlib"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    files = sorted((args.data / "qmul-multiview").glob("*/*.ras"))
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)]
    known = np.array([angles_of(p) for p in files], dtype=np.float64)
    tilt, pan = known[:, 0], known[:, 1]
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, one process",
        "command": "python benchmarks/head_pose.py" + (f" --limit {args.limit}" if args.limit else ""),
        "aligners": {name: summarise(estimate(name, files), tilt, pan) for name in args.aligners},
    }
    print_and_write(report, args.out)


if __name__ == "__main__":
    main()
