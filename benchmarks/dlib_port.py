"""Benchmark: dlib's face ResNet ported to PyTorch against dlib itself, on this CPU.

    python benchmarks/dlib_port.py [--data ../shared/data] [--chips 64] [--photos 64]
        [--pairs ../shared/data/lfw-devtrain/pairsDevTrain.txt] [--out results.json]

* ``equality``: the port's raw descriptors and dlib's ``compute_face_descriptor`` on the same
  chips (LFW and CelebA faces cut by dlib): worst cosine and largest absolute difference.
* ``chips``: milliseconds per face from ready 150x150 chips (batches of 32): dlib's batched
  ``compute_face_descriptor``, and the port in fp32 (as converted; affine layers folded into the
  convolutions; channels-last), bf16 autocast, and ONNX Runtime (what ``dlib-resnet`` runs by
  default); the speed-up of the best over dlib.
* ``photos``: seconds per photo for the whole photo -> embedding path (decode, HOG detection,
  landmarks, chip, network) through :meth:`Embedder.embed_files`, dlib's network vs the port.
* ``pairs`` (with ``--pairs``): ``facemetric eval``'s evaluation of an LFW pairs file with the
  port and with dlib's network (accuracy by 10-fold cross-validation, AUC, photos without a face).

Run it alone: the figures are CPU times and another busy process changes the ratios. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import ms_per_face
from facemetric.core.atomic import write_json
from facemetric.core.errors import FacemetricError


def _photos(data: Path, count: int) -> list[Path]:
    lfw = sorted((data / "lfw-devtrain" / "images").glob("*/*.jpg"))
    celeba = sorted((data / "celeba-199" / "images").glob("*.jpg"))
    half = count // 2
    return lfw[:: max(1, len(lfw) // half)][:half] + celeba[:: max(1, len(celeba) // half)][: count - half]


def _chips(paths: list[Path], count: int) -> np.ndarray:
    from facemetric.data.align.dlib_chip import DlibChipAligner
    from facemetric.data.images import open_image

    aligner = DlibChipAligner()
    chips: list[np.ndarray] = []
    for path in paths:
        if len(chips) == count:
            break
        try:
            chips.append(aligner(open_image(path, channels=3))[0])
        except FacemetricError:
            continue
    return np.stack(chips)


@torch.no_grad()
def chips_benchmark(chips: np.ndarray, batch: int, repeats: int) -> dict[str, Any]:
    from facemetric.core.spec import ImageSpec
    from facemetric.data.align.dlib import load_dlib
    from facemetric.data.augment import to_tensor
    from facemetric.embedders.dlib_resnet import onnx_session
    from facemetric.models.dlib_resnet import DlibResNet, default_model_file, dlib_normalization, pretrained_state_dict

    state, mean = pretrained_state_dict()
    raw = DlibResNet(normalize=False)
    raw.load_state_dict(state)
    raw.eval()
    mu, sd = dlib_normalization(mean)
    dlib_net = load_dlib().face_recognition_model_v1(str(default_model_file()))
    listed = [np.ascontiguousarray(c) for c in chips]
    reference = np.asarray(dlib_net.compute_face_descriptor(listed, 0), np.float64)
    got = raw(to_tensor(chips, mu, sd)).numpy().astype(np.float64)
    cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
    equality = {
        "faces": len(chips),
        "min_cosine": float(cosine.min()),
        "max_abs_diff": float(np.abs(got - reference).max()),
    }

    x = to_tensor(chips[:batch], mu, sd)
    n = len(x)
    fused = raw.fused()
    fused_cl = raw.fused().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def bf16() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fused_cl(x_cl)

    unit = DlibResNet()
    unit.load_state_dict(state)
    session = onnx_session(unit.fused(), ImageSpec(150, 150, 3), default_model_file())  # what dlib-resnet runs
    xn = x.numpy()
    timings = {
        "dlib compute_face_descriptor": ms_per_face(
            lambda: dlib_net.compute_face_descriptor(listed[:n], 0), n, max(1, repeats // 2)
        ),
        "torch fp32": ms_per_face(lambda: raw(x), n, repeats),
        "torch fp32 fused": ms_per_face(lambda: fused(x), n, repeats),
        "torch fp32 fused channels-last": ms_per_face(lambda: fused_cl(x_cl), n, repeats),
        "torch bf16 autocast fused channels-last": ms_per_face(bf16, n, repeats),
        "onnxruntime fp32 fused": ms_per_face(lambda: session.run(None, {"images": xn}), n, repeats),
    }
    dlib_ms = timings["dlib compute_face_descriptor"]
    port = {k: v for k, v in timings.items() if not k.startswith("dlib")}
    best = min(port, key=lambda k: port[k])
    return {
        "equality": equality,
        "ms_per_face": timings,
        "batch": n,
        "threads": torch.get_num_threads(),
        "best_port": best,
        "speedup_best_vs_dlib": round(dlib_ms / port[best], 1),
        "speedup_per_variant_vs_dlib": {k: round(dlib_ms / v, 1) for k, v in port.items()},
    }


def photos_benchmark(paths: list[Path]) -> dict[str, Any]:
    from facemetric.embedders import load_embedder

    out: dict[str, Any] = {"photos": len(paths)}
    for label, reference in (("dlib", "dlib-resnet?backend=dlib"), ("port (onnxruntime)", "dlib-resnet")):
        embedder = load_embedder(reference)
        embedder.embed_files(paths[:4])  # warm-up
        start = time.perf_counter()
        batch = embedder.embed_files(paths, batch_size=32)
        seconds = time.perf_counter() - start
        out[label] = {"seconds_per_photo": round(seconds / len(paths), 4), "faces": len(batch)}
    out["speedup"] = round(out["dlib"]["seconds_per_photo"] / out["port (onnxruntime)"]["seconds_per_photo"], 2)
    return out


def pairs_benchmark(pairs: Path, images: Path) -> dict[str, Any]:
    from facemetric.embedders import load_embedder
    from facemetric.eval.suite.files import evaluate_files

    out: dict[str, Any] = {"pairs_file": str(pairs)}
    for label, reference in (("port (onnxruntime)", "dlib-resnet"), ("dlib", "dlib-resnet?backend=dlib")):
        start = time.perf_counter()
        result, data = evaluate_files(load_embedder(reference), pairs=pairs, images=images, progress=False)
        verification = result.summary.verification
        assert verification is not None
        no_face = result.summary.no_face
        out[label] = {
            "accuracy": round(verification.accuracy, 4),
            "accuracy_std": round(verification.accuracy_std, 4),
            "auc": round(verification.auc, 4),
            "photos_without_face": no_face.n_photos if no_face else 0,
            "seconds": round(time.perf_counter() - start, 1),
        }
    port, dlib = out["port (onnxruntime)"]["accuracy"], out["dlib"]["accuracy"]
    out["accuracy_difference_points"] = round(100 * (port - dlib), 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--chips", type=int, default=64, help="faces for the equality and speed checks")
    parser.add_argument("--photos", type=int, default=64, help="photos for the photo -> embedding timing")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", type=Path, default=None, help="an LFW pairs file to evaluate with both")
    parser.add_argument("--images", type=Path, default=None, help="its images (default: images/ beside it)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = _photos(args.data, max(args.chips * 2, args.photos))
    report: dict[str, Any] = {
        "benchmark": "dlib_port",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "chips": chips_benchmark(_chips(paths, args.chips), args.batch, args.repeats),
        "photos": photos_benchmark(paths[: args.photos]),
    }
    if args.pairs is not None:
        report["pairs"] = pairs_benchmark(args.pairs, args.images or args.pairs.parent / "images")
    text = json.dumps(report, indent=1)
    print(text)
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
