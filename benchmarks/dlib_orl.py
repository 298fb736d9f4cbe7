"""The pretrained ``dlib-resnet`` embedder on ORL: detection, closed-set and open-set identification.

    python benchmarks/dlib_orl.py [--orl ../shared/data/orl] [--pad 0.25] [--upsample 1]

ORL holds 40 people (folders s1..s40) x 10 grey 92x112 tight face crops (1.pgm..10.pgm). Prints JSON:

* ``detection``: photos with a face found per detection variant (grey padding of 0, 25%, 50%
  per side x trying upsample 0 up to 0, 1, 2), and the seconds per photo of the detector alone.
* ``paths``: how the embedder (run with ``whole_image_fallback=True``) handled each photo:
  detected, whole-image fallback, failed; and the seconds per photo of the whole pipeline
  (decode, detect, landmarks, descriptor).
* ``closed_set``: enroll ``N.pgm`` of each of the 40 people (N = 1, 2, 3), identify the other 360
  photos (max template, :func:`facemetric.eval.identification.closed_set.cmc`). A photo without a face
  counts as a miss, as do the photos of a person whose enrolled photo has none. Reported with
  the fallback off (the embedder's default: such photos are failures) and on. Target: rank-1 >= 0.95.
* ``open_set``: enroll 1.pgm of s1..s30 (numeric order), leave s31..s40 un-enrolled. The
  threshold at FAR = 1e-2 is calibrated (:func:`~facemetric.eval.primitives.calibrate_threshold`)
  on impostor searches that never touch the 10 unknown people: each of the 270 other photos
  of the 30 enrolled people searched against the gallery with its own identity removed
  (leave-identity-out, a 29-person gallery). Then FAR = fraction of the 100 unknown photos whose
  top score >= threshold (a photo without a face raises no alarm), and DIR = fraction of the 270
  known photos whose top-1 identity is right with a score >= threshold (no face: a miss).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import orl_files
from facemetric.data.align.dlib_chip import DlibChipAligner
from facemetric.data.images import open_image
from facemetric.embedders.dlib_resnet import DlibResnetEmbedder
from facemetric.eval.identification.closed_set import cmc
from facemetric.eval.identification.search import top_matches
from facemetric.eval.primitives import calibrate_threshold

TARGET_RANK1 = 0.95
N_ENROLLED = 30
FAR = 1e-2


def detection_rates(files: list[Path]) -> dict:
    """Photos with a face found per (padding, max upsample) variant of the embedder's detector."""
    pixels = [np.asarray(open_image(path, 3)) for path in files]
    rates = {}
    for pad in (0.0, 0.25, 0.5):
        for upsample in (0, 1, 2):
            aligner = DlibChipAligner(upsample=upsample, pad=pad)
            start = time.perf_counter()
            found = sum(bool(aligner.detect(p)[0]) for p in pixels)
            rates[f"pad={pad:g} upsample<={upsample}"] = {
                "found": found,
                "rate": found / len(files),
                "seconds_per_photo": round((time.perf_counter() - start) / len(files), 4),
            }
    return rates


def closed_set_rank1(emb: np.ndarray, ok: np.ndarray, people: np.ndarray, enrolled: np.ndarray) -> dict:
    """Rank-1 of the non-enrolled photos against one enrolled photo per person; failures count as misses."""
    gallery = enrolled & ok
    probes = ~enrolled
    searchable = probes & ok & np.isin(people, people[gallery])
    result = cmc(emb[searchable], people[searchable], emb[gallery], people[gallery], template="max")
    return {
        "rank1": result.rank1 * searchable.sum() / probes.sum(),
        "rank1_of_embedded": result.rank1,
        "n_probes": int(probes.sum()),
        "n_searched": int(searchable.sum()),
        "n_enrolled": int(gallery.sum()),
    }


def open_set(emb: np.ndarray, ok: np.ndarray, people: np.ndarray, shots: np.ndarray) -> dict:
    """Threshold calibrated on leave-identity-out impostor searches; FAR and DIR measured on held-out sets."""
    known_people = np.unique(people)[:N_ENROLLED]
    known = np.isin(people, known_people)
    gallery = known & (shots == 1) & ok
    g_emb, g_people = emb[gallery], people[gallery]
    known_probes = known & (shots != 1)
    impostor_scores = []
    for person in np.unique(g_people):
        probes = known_probes & ok & (people == person)
        others = g_people != person
        if probes.any():
            impostor_scores.extend(top_matches(emb[probes], g_emb[others], g_people[others])[1].tolist())
    threshold = calibrate_threshold(impostor_scores, FAR, source="leave-identity-out searches of enrolled people")
    unknown = ~known & ok
    _, unknown_scores = top_matches(emb[unknown], g_emb, g_people)
    searched = known_probes & ok
    top_people, top_scores = top_matches(emb[searched], g_emb, g_people)
    hits = (top_people == people[searched]) & (top_scores >= threshold.value)
    return {
        "enrolled_people": [int(p) for p in known_people],
        "threshold": threshold.value,
        "calibration_far": threshold.achieved_far,
        "n_impostors": threshold.n_impostors,
        "far": float(np.sum(unknown_scores >= threshold.value) / np.sum(~known)),
        "n_unknown": int(np.sum(~known)),
        "dir": float(hits.sum() / known_probes.sum()),
        "n_known": int(known_probes.sum()),
        "rank1_known": float(np.sum(top_people == people[searched]) / known_probes.sum()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orl", default="../shared/data/orl", help="folder with s1..s40/1..10.pgm")
    parser.add_argument("--pad", type=float, default=0.25, help="grey padding per side before detection")
    parser.add_argument("--upsample", type=int, default=1, help="upsamplings tried when no face is found")
    args = parser.parse_args(argv)
    files, people, shots = orl_files(Path(args.orl))
    detection = detection_rates(files)
    embedder = DlibResnetEmbedder(upsample=args.upsample, whole_image_fallback=True, pad=args.pad)
    start = time.perf_counter()
    batch = embedder.embed_files(files)
    seconds = (time.perf_counter() - start) / len(files)
    emb = np.zeros((len(files), embedder.dim), np.float32)
    emb[batch.index] = batch.embeddings
    detected, embedded = np.zeros(len(files), bool), np.zeros(len(files), bool)
    embedded[batch.index] = True
    detected[batch.index] = [d.found for d in batch.detections]
    failures = [(str(files[k]), reason) for k, reason in batch.failures]
    closed = {}
    for name, ok in (("fallback_off", detected), ("fallback_on", embedded)):
        closed[name] = {f"enroll_{n}.pgm": closed_set_rank1(emb, ok, people, shots == n) for n in (1, 2, 3)}
    report = {
        "benchmark": "dlib_orl",
        "embedder": embedder.name,
        "fingerprint": embedder.fingerprint,
        "settings": {"pad": args.pad, "upsample": args.upsample},
        "photos": len(files),
        "detection": detection,
        "paths": {
            "detected": int(detected.sum()),
            "whole_image": int((embedded & ~detected).sum()),
            "failed": len(failures),
            "seconds_per_photo": round(seconds, 4),
            "not_detected": [f"{Path(p).parent.name}/{Path(p).name}" for p, d in zip(files, detected) if not d],
        },
        "closed_set": closed,
        "target_rank1": TARGET_RANK1,
        "meets_target": all(r["rank1"] >= TARGET_RANK1 for r in closed["fallback_off"].values()),
        "open_set": {
            name: open_set(emb, ok, people, shots)
            for name, ok in (("fallback_off", detected), ("fallback_on", embedded))
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
