"""``facemetric prepare``: photos -> detected, aligned crops -> one packed, memory-mapped uint8 array.

Layout of the output folder ``OUT``::

    images.npy       N x size x size x C uint8 (np.load(..., mmap_mode="r") reads it lazily)
    manifest.csv     index,label,identity,source: row i of images.npy
    detections.jsonl one detection record per row (backend, box, score, landmarks, faces, image size, head pose)
    skipped.csv      source,identity,kind,reason for every input left out
    summary.json     counts (per skip reason), detection rate, time
    contact_sheet.png random crops, for a person to check the alignment
    meta.json        format, size, backend, normalisation statistics, input fingerprint;
                     written last: its presence means the cache is complete

Work is done in chunks by worker processes. Each finished chunk is written into
``partial/images.npy`` and then logged in ``partial/progress.jsonl`` (flushed and fsynced), so a
killed run resumes where it stopped; a rerun on a complete, unchanged cache does nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facemetric.core.atomic import atomic_path, write_atomic, write_csv, write_json
from facemetric.core.errors import FacemetricError
from facemetric.data.align import ALIGNERS, Aligner, build_aligner, crop_face_file
from facemetric.data.contact_sheet import write_contact_sheet
from facemetric.data.sources import DEFAULT_FLAT_PATTERN, DatasetError, Manifest, no_usable_image, scan_source

FORMAT = "facemetric-prepared"
FORMAT_VERSION = 1
CRLF = "\r\n"  # the csv module's own line ending, which the cache files have always had


class PrepareError(FacemetricError, RuntimeError):
    """``prepare`` cannot go on (an output folder holding something else, no usable input)."""


@dataclass
class PrepareOptions:
    """Everything that decides the pixels of a prepared cache (part of its fingerprint)."""

    size: int = 112
    align: str = "center"
    channels: int = 3
    align_options: dict = field(default_factory=dict)  # backend settings, e.g. {"fraction": 0.6}
    layout: str = "auto"
    flat_pattern: str = DEFAULT_FLAT_PATTERN

    def fingerprint(self, manifest: Manifest) -> str:
        return manifest.fingerprint(json.dumps({"v": FORMAT_VERSION, **asdict(self)}, sort_keys=True))

    @classmethod
    def for_backend(cls, size: int, align: str, channels: int, offered: dict, layout: str = "auto") -> PrepareOptions:
        """Options for backend ``align``, keeping of the ``offered`` settings (command-line flags such
        as ``fraction`` or ``max_upsample``) those this backend takes; the others do not apply to it."""
        takes = ALIGNERS.parameters(align)
        return cls(size, align, channels, {k: v for k, v in offered.items() if k in takes and v is not None}, layout)


@dataclass
class PrepareResult:
    out: Path
    summary: dict
    up_to_date: bool = False  # nothing was done: the cache already matched its inputs


# ------------------------------------------------------------------ worker side
_ALIGNER: Aligner | None = None


def _init_worker(options: PrepareOptions, aligner: Aligner | None = None) -> None:
    global _ALIGNER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _ALIGNER = aligner or build_aligner(options.align, options.size, options.channels, **options.align_options)


def _work(chunk: int, items: list[tuple[int, str]]) -> tuple[int, list]:
    assert _ALIGNER is not None
    return chunk, [(i, *crop_face_file(path, _ALIGNER)) for i, path in items]


# ------------------------------------------------------------------ main side
def _read_progress(path: Path) -> dict[int, list]:
    """Finished chunks from the progress log; a line cut short by a kill is ignored."""
    done: dict[int, list] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            done[int(entry["chunk"])] = entry["items"]
        except (ValueError, KeyError, TypeError):
            continue
    return done


def check_output(out: Path, fingerprint: str, overwrite: bool) -> dict | None:
    """The stored summary if ``out`` is already this cache; raise if it holds something else."""
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint and not overwrite:
            return json.loads((out / "summary.json").read_text())
        if not overwrite:
            raise PrepareError(
                f"{out} already holds a prepared cache of other inputs or settings; "
                "choose another output folder or pass --overwrite to replace it"
            )
        _clear(out)
    elif out.exists() and any(out.iterdir()):
        state = out / "partial" / "state.json"
        if state.exists() and json.loads(state.read_text()).get("fingerprint") == fingerprint and not overwrite:
            return None  # an interrupted run of the same job: resume it
        if not overwrite:
            raise PrepareError(
                f"{out} is not empty and is not an interrupted prepare of the same inputs; "
                "choose another output folder or pass --overwrite"
            )
        _clear(out)
    return None


def _clear(out: Path) -> None:
    for name in (
        "images.npy",
        "manifest.csv",
        "detections.jsonl",
        "skipped.csv",
        "summary.json",
        "contact_sheet.png",
        "meta.json",
    ):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "partial", ignore_errors=True)


def prepare(
    source: str | Path,
    out: str | Path,
    options: PrepareOptions | None = None,
    workers: int | None = None,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
) -> PrepareResult:
    """Scan ``source``, detect + align + decode every image once into ``out`` (see module doc).

    Resumable (a killed run continues where it stopped) and idempotent (an up-to-date cache is
    left alone). ``workers`` processes (default: CPU count; 0 = in this process) share the work.
    """
    options = options or PrepareOptions()
    started = time.time()
    out = Path(out)
    manifest = scan_source(source, options.layout, options.flat_pattern)
    fingerprint = options.fingerprint(manifest)
    stored = check_output(out, fingerprint, overwrite)
    if stored is not None:
        return PrepareResult(out, stored, up_to_date=True)
    aligner = build_aligner(options.align, options.size, options.channels, **options.align_options)  # fails early
    existed = out.exists()
    partial = out / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    n, shape = len(manifest), (len(manifest), options.size, options.size, options.channels)
    state_path, images_path, log_path = partial / "state.json", partial / "images.npy", partial / "progress.jsonl"
    if not state_path.exists() or not images_path.exists():
        np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=shape).flush()
        log_path.unlink(missing_ok=True)
        write_json(state_path, {"fingerprint": fingerprint, "n": n})
    images = np.lib.format.open_memmap(images_path, mode="r+")
    chunks = [list(range(s, min(s + chunk_size, n))) for s in range(0, n, chunk_size)]
    done = _read_progress(log_path)
    todo = [c for c in range(len(chunks)) if c not in done]
    resumed = len(chunks) - len(todo)
    workers = (os.cpu_count() or 1) if workers is None else workers
    with (
        log_path.open("a", encoding="utf-8") as log_file,
        tqdm(
            total=n,
            initial=sum(len(chunks[c]) for c in done),
            desc=f"prepare ({options.align})",
            unit="img",
            disable=None if progress else True,
        ) as bar,
    ):

        def record(chunk: int, results: list) -> None:
            entries = []
            for i, crop, kind, reason, det in results:
                if crop is not None:
                    images[i] = crop
                entries.append([i, kind, reason, det])
            images.flush()  # pixels on disk before the log says the chunk is done
            log_file.write(json.dumps({"chunk": chunk, "items": entries}) + "\n")
            log_file.flush()
            os.fsync(log_file.fileno())
            done[chunk] = entries
            bar.update(len(results))

        jobs = [(c, [(i, str(manifest.paths[i])) for i in chunks[c]]) for c in todo]
        if workers <= 0 or len(jobs) <= 1:
            _init_worker(options, aligner)
            for c, items in jobs:
                record(*_work(c, items))
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(options,)) as pool:
                futures = [pool.submit(_work, c, items) for c, items in jobs]
                for future in futures:
                    record(*future.result())
    left_out = [(str(manifest.paths[i]), reason) for e in done.values() for i, kind, reason, _ in e if kind is not None]
    if len(left_out) == n:  # nothing to cache: refused, and a folder this call made is not left behind
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise DatasetError(no_usable_image(source, [(str(p), r) for p, r in manifest.skipped] + left_out))
    summary = _finalize(out, manifest, options, fingerprint, done, started)
    summary["resumed_chunks"], summary["processed_images"] = resumed, sum(len(chunks[c]) for c in todo)
    write_json(out / "summary.json", summary)
    _write_meta(out, options, fingerprint, summary)
    shutil.rmtree(partial, ignore_errors=True)
    return PrepareResult(out, summary)


def _finalize(
    out: Path, manifest: Manifest, options: PrepareOptions, fingerprint: str, done: dict, started: float
) -> dict:
    """Compact the good rows into images.npy and write the manifest, skips, statistics and contact sheet."""
    results = {i: (kind, reason, det) for entries in done.values() for i, kind, reason, det in entries}
    keep = [i for i in range(len(manifest)) if results[i][0] is None]
    names = sorted({manifest.identities[i] for i in keep})
    label = {name: k for k, name in enumerate(names)}
    partial = np.load(out / "partial" / "images.npy", mmap_mode="r")
    with atomic_path(out / "images.npy") as tmp:
        packed = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(keep), *partial.shape[1:]))
        for start in range(0, len(keep), 1024):
            rows = keep[start : start + 1024]
            packed[start : start + len(rows)] = partial[rows]
        packed.flush()
        mean, std = _channel_stats(packed)
        del packed, partial
    write_csv(
        out / "manifest.csv",
        ["index", "label", "identity", "source"],
        (
            [row, label[manifest.identities[i]], manifest.identities[i], str(manifest.paths[i])]
            for row, i in enumerate(keep)
        ),
        CRLF,
    )
    write_atomic(out / "detections.jsonl", "".join(json.dumps(results[i][2]) + "\n" for i in keep))
    skipped = [(str(p), "", re.sub(r"\d+", "N", reason), reason) for p, reason in manifest.skipped]
    kept = set(keep)
    skipped += [
        (str(manifest.paths[i]), manifest.identities[i], results[i][0], results[i][1])
        for i in range(len(manifest))
        if i not in kept
    ]
    write_csv(out / "skipped.csv", ["source", "identity", "kind", "reason"], skipped, CRLF)
    decodable = sum(1 for kind, _, _ in results.values() if kind in (None, "no face found"))
    dets = [results[i][2] for i in keep]
    write_contact_sheet(out, [manifest.identities[i] for i in keep])
    return {
        "source": str(manifest.root),
        "layout": manifest.layout,
        "align": options.align,
        "size": options.size,
        "files": len(manifest) + len(manifest.skipped),
        "images": len(keep),
        "identities": len(names),
        "skipped": len(skipped),
        "skipped_by_kind": dict(Counter(s[2] for s in skipped).most_common()),
        "decodable_images": decodable,
        "face_found_rate": round(len(keep) / decodable, 4) if decodable else 0.0,
        "several_faces": sum(1 for d in dets if d and d.get("faces", 0) > 1),
        "mean": mean,
        "std": std,
        "seconds": round(time.time() - started, 1),
    }


def _channel_stats(images: np.ndarray, sample: int = 2048) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixels in [0, 1] over (up to) ``sample`` evenly spaced images."""
    if len(images) == 0:
        return [0.5] * images.shape[-1], [0.5] * images.shape[-1]
    rows = np.linspace(0, len(images) - 1, min(sample, len(images))).astype(np.int64)
    x = images[rows].astype(np.float64) / 255.0
    return [round(float(v), 5) for v in x.mean(axis=(0, 1, 2))], [
        round(max(float(v), 1e-3), 5) for v in x.std(axis=(0, 1, 2))
    ]


def _write_meta(out: Path, options: PrepareOptions, fingerprint: str, summary: dict) -> None:
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "options": asdict(options),
        "images": summary["images"],
        "identities": summary["identities"],
        "mean": summary["mean"],
        "std": summary["std"],
    }
    write_json(out / "meta.json", meta)
