"""Face unlock as the head turns: is 95 % feasible? qmul-multiview by band of pan and tilt.

    python benchmarks/face_unlock.py --out benchmarks/results/DATE-face-unlock.json

qmul-multiview: 29 people, 4,128 photos, the head turned across pan -90..+90 and tilt -30..+30 (10 degree
steps; the angles are in the file names). For each person and each pretrained model:

* **enrolment**: ``frontal``, the frontal photos only (pan 0, tilt 0, as a new user enrols one photo),
  or ``spread``, at most ``--max-photos`` photos chosen by the gallery's pose-spread picker
  (:func:`facemetric.gallery.pose_spread.choose`, YuNet's pose of each photo) among the person's photos
  with |pan| <= ``--pool-pan`` (a user turning the head in front of a webcam: ahead, left, right, up,
  down); a person is scored by their best-matching enrolled photo (the gallery's ``max`` template);
* **probes**: every photo of the person enrolled under neither protocol (the same probes for both);
* **threshold**: calibrated at FAR 1e-2 and 1e-3 on other people: the people are split in two halves;
  each half's threshold is the quantile of the impostor scores (a probe against another person's
  enrolment) of the other half, so no test person's score sets it;
* **TAR** per band of |pan| (0-15, 20-30, 40-45, 50-60, 70-90) and of tilt, a photo in which the model
  finds no face counting as a failed unlock; **FAR** the same test halves' impostor scores at that threshold.

Models as ``benchmarks/pretrained_models.py`` runs them (detection included); run it alone.
"""

from __future__ import annotations

import argparse
import os
import platform
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from common import SHARED_DATA, print_and_write
from facemetric.embedders import load_embedder
from facemetric.embedders.fusion import FusionEmbedder
from facemetric.gallery.pose_spread import FaceOffer, choose
from pretrained_models import Embedded, Photos, embed_set, fuse, load_set

MODELS = ("dlib-resnet?detector=hog", "dlib-resnet", "sface", "arcface-mbf")
FUSIONS = ("arcface-mbf+dlib-resnet",)
PAN_BANDS = ((0, 15), (16, 30), (31, 45), (46, 60), (61, 90))
TILT_BANDS = ((-30, -20), (-10, 10), (20, 30))
FARS = (1e-2, 1e-3)


def enrolments(photos: Photos, poses: np.ndarray, pool_pan: float, max_photos: int) -> dict[str, np.ndarray]:
    """Rows enrolled per protocol (boolean masks over the photos): frontal photos; pose-spread picks."""
    assert photos.pan is not None and photos.tilt is not None
    pan, tilt = photos.pan - 90, photos.tilt - 90
    frontal = (pan == 0) & (tilt == 0)
    spread = np.zeros(len(photos.files), bool)
    for person in np.unique(photos.labels):
        rows = np.flatnonzero((photos.labels == person) & (np.abs(pan) <= pool_pan))
        offers = [
            FaceOffer(str(photos.files[k]), problem="no face found")
            if np.isnan(poses[k, 0])
            else FaceOffer(str(photos.files[k]), float(poses[k, 0]), float(poses[k, 1]), 100.0, 100.0)
            for k in rows
        ]
        kept, _ = choose(offers, max_photos)
        spread[rows[kept]] = True
    return {"frontal": frontal, "spread": spread}


def person_scores(e: Embedded, labels: np.ndarray, enrolled: np.ndarray, people: np.ndarray) -> np.ndarray:
    """(photos, people): each photo's best cosine with each person's enrolled photos; -inf where no face."""
    scores = np.full((len(labels), len(people)), -np.inf, np.float32)
    for p, person in enumerate(people):
        rows = enrolled & (labels == person) & e.found
        if rows.any():
            scores[:, p] = (e.emb @ e.emb[rows].T).max(axis=1)
    scores[~e.found] = -np.inf
    return scores


def unlock(e: Embedded, photos: Photos, enrolled: np.ndarray, probes: np.ndarray) -> dict[str, Any]:
    """TAR and FAR per band at thresholds calibrated on the other half of the people."""
    assert photos.pan is not None and photos.tilt is not None
    people = np.unique(photos.labels)
    scores = person_scores(e, photos.labels, enrolled, people)
    own = np.searchsorted(people, photos.labels)
    person_half = np.arange(len(people)) % 2  # two halves of the people, alternating in sorted order
    half = person_half[own]
    genuine = scores[np.arange(len(own)), own]
    accepted = {far: np.zeros(len(own), bool) for far in FARS}
    false_accepts = {far: [0, 0] for far in FARS}
    thresholds: dict[str, list[float]] = {str(far): [] for far in FARS}
    for test in (0, 1):
        calib_rows = probes & (half != test)
        calib_people = person_half != test
        impostor_calib = scores[calib_rows][:, calib_people]
        own_calib = np.searchsorted(np.flatnonzero(calib_people), own[calib_rows])
        mask = np.ones_like(impostor_calib, bool)
        mask[np.arange(len(own_calib)), own_calib] = False
        impostors = impostor_calib[mask]
        test_rows = probes & (half == test)
        test_people = ~calib_people
        imp_test = scores[test_rows][:, test_people]
        own_test = np.searchsorted(np.flatnonzero(test_people), own[test_rows])
        tmask = np.ones_like(imp_test, bool)
        tmask[np.arange(len(own_test)), own_test] = False
        for far in FARS:
            t = float(np.quantile(impostors, 1 - far, method="higher"))
            thresholds[str(far)].append(round(t, 4))
            accepted[far][test_rows] = genuine[test_rows] >= t
            false_accepts[far][0] += int((imp_test[tmask] >= t).sum())
            false_accepts[far][1] += int(tmask.sum())
    pan, tilt = np.abs(photos.pan - 90), photos.tilt - 90
    bands: dict[str, Any] = {}
    for name, rows in [(f"pan_{lo}-{hi}", (pan >= lo) & (pan <= hi)) for lo, hi in PAN_BANDS] + [
        (f"tilt_{lo}..{hi}", (tilt >= lo) & (tilt <= hi)) for lo, hi in TILT_BANDS
    ]:
        sel = probes & rows
        bands[name] = {
            "probes": int(sel.sum()),
            "found": round(float(e.found[sel].mean()), 4),
            **{f"tar_at_far_{far:g}": round(float(accepted[far][sel].mean()), 4) for far in FARS},
        }
    for limit in (15, 30, 45, 60, 90):
        sel = probes & (pan <= limit)
        bands[f"pan_up_to_{limit}"] = {
            "probes": int(sel.sum()),
            **{f"tar_at_far_{far:g}": round(float(accepted[far][sel].mean()), 4) for far in FARS},
        }
    return {
        "enrolled_photos": int(enrolled.sum()),
        "thresholds": thresholds,
        "far_measured": {f"{far:g}": round(fa / max(n, 1), 5) for far, (fa, n) in false_accepts.items()},
        "bands": bands,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--fusions", nargs="*", default=list(FUSIONS))
    parser.add_argument("--max-photos", type=int, default=5, help="photos a pose-spread enrolment keeps")
    parser.add_argument("--pool-pan", type=float, default=45.0, help="|pan| of the photos it chooses among")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    photos = load_set("qmul", args.data, None)
    crops: dict = {}
    embedded: dict[str, Embedded] = {}
    for ref in args.models:
        embedder = load_embedder(ref)
        embedded[embedder.reference] = embed_set(embedder, photos, crops)
        print(f"{ref}: embedded", flush=True)
    for ref in args.fusions:
        fusion = load_embedder(ref)
        assert isinstance(fusion, FusionEmbedder)
        embedded[fusion.reference] = fuse(fusion, [embedded[m.reference] for m in fusion.members])
    # each photo's pose as YuNet's points give it (the gallery's picker sees the same)
    yunet = load_embedder("sface")
    cut = crops.get(next(k for k in crops if k[0] == yunet.spec.align)) if crops else None
    if cut is None:
        cut = (yunet.crop_files(photos.files, progress=False, workers=0), 0.0)
    poses = np.full((len(photos.files), 2), np.nan)
    for k, det in zip(cut[0].index.tolist(), cut[0].detections):
        if det.pose:
            poses[k] = det.pose["yaw"], det.pose["pitch"]
    protocols = enrolments(photos, poses, args.pool_pan, args.max_photos)
    probes = ~(protocols["frontal"] | protocols["spread"])
    results = {
        ref: {name: unlock(e, photos, enrolled, probes) for name, enrolled in protocols.items()}
        for ref, e in embedded.items()
    }
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": f"python benchmarks/face_unlock.py --max-photos {args.max_photos} --pool-pan {args.pool_pan:g}",
        "photos": len(photos.files),
        "people": int(len(np.unique(photos.labels))),
        "probes": int(probes.sum()),
        "models": results,
    }
    print_and_write(report, args.out)


if __name__ == "__main__":
    main()
