"""Benchmark: a distilled student against its teacher on held-out people, and their speed.

    python benchmarks/distill.py --run runs/distill-dlib [--checkpoint last.pt] [--out results.json]

``accuracy``: for each source of the run (``data.source`` and ``data.extra_sources``: e.g. LFW
development-train and CelebA-199 prepared with ``--align dlib``), its held-out people (the run's
``data.val_identities`` / ``split_seed``, so no photo of them trained the student), the project's
identity-disjoint held-out pair protocol, k-fold accuracy (each fold's threshold chosen on the
others), AUC and TAR@FAR=1e-3 of:

* the teacher on the original photos (its own detection and crops: dlib-resnet reads dlib's chips);
* the student on the ``prepare --align dlib`` crops of the same photos, plain and with the mirror
  image added (``--flip``, what ``facemetric eval --flip`` does), and, for a student started from
  trained weights (``model.pretrained``, ``model.init``), those weights before distillation
  (``student_before_training``);
* where the student's crops are cut the teacher's way (``prepare --align dlib-chip --size 112``, for
  ``distill.online``): the teacher on the student's own crops scaled to its input
  (``teacher_on_student_crops``), what the online teacher reads.

Pairs are kept where both models found the faces (the photos only one finds are counted).

``speed``: milliseconds per face from ready crops (batches of 32, best of repeats), on the same
photos: dlib's own ``compute_face_descriptor`` on its 150x150 chips, the teacher's port in ONNX
Runtime and in PyTorch, and the student in PyTorch and ONNX Runtime (its export) on its own crops
(112x112); each one's speed-up over dlib's descriptor. Run it alone: the ratios are CPU times. Prints JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import held_out, ms_per_face, verification_summary
from facemetric.core.atomic import write_json


def _different_people_cosine(emb: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine of the unit embeddings of every two photos of different people."""
    sims = emb @ emb.T
    return float(sims[labels[:, None] != labels[None, :]].mean())


def starting_point(cfg: Any, student: Any) -> Any:
    """The student as its run started (``model.pretrained`` / ``model.init`` weights), or None when it
    started from random weights: what the distillation itself added."""
    from facemetric.embedders.torch_model import ModelEmbedder
    from facemetric.models import build_embedding_model
    from facemetric.train.weights import initialise

    if not (cfg.model.pretrained or cfg.model.init):
        return None
    model = build_embedding_model(cfg.model, student.spec)
    initialise(model, cfg.model)
    return ModelEmbedder(model, student.spec, model_cfg=cfg.model)


def accuracy(run: Path, checkpoint: Path, teacher_ref: str, workers: int | None) -> dict[str, Any]:
    from facemetric.core.config import load_config
    from facemetric.data.prepared import prepared_spec
    from facemetric.embedders import load_embedder
    from facemetric.embedders.torch_model import ModelEmbedder
    from facemetric.train.teacher import crops_for_teacher

    cfg = load_config(run / "config.yaml")
    student = ModelEmbedder.from_checkpoint(checkpoint)
    start = starting_point(cfg, student)
    teacher = load_embedder(teacher_ref)
    out: dict[str, Any] = {}
    for source in [cfg.data.source, *cfg.data.extra_sources]:
        assert source is not None
        val, protocol = held_out(source, cfg.data.val_identities, cfg.data.split_seed, cfg.data.val_pairs)
        t0 = time.perf_counter()
        crops = teacher.crop_files(list(val.paths), workers=workers)
        emb_t, index = teacher.embed_crops(crops.images), crops.index
        teacher_seconds = time.perf_counter() - t0
        found = np.zeros(len(val), dtype=bool)
        found[index] = True
        table = np.zeros((len(val), teacher.dim), np.float32)
        table[index] = emb_t
        keep = found[protocol.i] & found[protocol.j]
        images = np.asarray(val.images)
        out[Path(source).name] = {
            "held_out_people": len(val.identity_names),
            "photos": len(val),
            "photos_without_teacher_face": int((~found).sum()),
            "pairs": int(keep.sum()),
            "pairs_left_out": int((~keep).sum()),
            # how much the teacher's unit vectors share one direction (why distill.center exists)
            "teacher_mean_vector_norm": round(float(np.linalg.norm(emb_t.mean(axis=0))), 3),
            "teacher_mean_cosine_of_different_people": round(_different_people_cosine(emb_t, val.labels[index]), 3),
            "teacher": verification_summary(table, protocol, keep),
            "student": verification_summary(student.embed_crops(images), protocol, keep),
            "student_flip": verification_summary(student.embed_crops(images, flip=True), protocol, keep),
            # a student started from trained weights (model.pretrained / init), before distillation
            **(
                {"student_before_training": verification_summary(start.embed_crops(images), protocol, keep)}
                if start
                else {}
            ),
            "teacher_seconds": round(teacher_seconds, 1),
        }
        row = out[Path(source).name]
        if prepared_spec(source).align == teacher.spec.align:
            # the student's own crops, scaled to the teacher's input: what an online teacher (distill.online) reads
            mine = teacher.embed_crops(crops_for_teacher(images, teacher.spec))
            row["teacher_on_student_crops"] = verification_summary(mine, protocol, keep)
        row["gap_points"] = round(100 * (row["teacher"]["accuracy"] - row["student"]["accuracy"]), 2)
        row["gap_points_flip"] = round(100 * (row["teacher"]["accuracy"] - row["student_flip"]["accuracy"]), 2)
        print(json.dumps({Path(source).name: row}), flush=True)
    return out


def speed(run: Path, checkpoint: Path, teacher_ref: str, batch: int, repeats: int) -> dict[str, Any]:
    import torch

    from facemetric.core.config import load_config
    from facemetric.data.align.dlib import load_dlib
    from facemetric.embedders import load_embedder
    from facemetric.embedders.onnx import OnnxEmbedder
    from facemetric.embedders.torch_model import ModelEmbedder
    from facemetric.export.onnx import export_checkpoint
    from facemetric.models.dlib_resnet import default_model_file

    cfg = load_config(run / "config.yaml")
    assert cfg.data.source is not None
    val, _ = held_out(cfg.data.source, cfg.data.val_identities, cfg.data.split_seed, cfg.data.val_pairs)
    paths = list(val.paths)[: batch * 2]
    teacher = load_embedder(teacher_ref)
    chips = teacher.crop_files(paths, workers=0)
    rows = chips.index[:batch]  # the same photos for every model
    dlib_chips = [np.ascontiguousarray(c) for c in np.asarray(chips.images)[: len(rows)]]
    student_crops = np.ascontiguousarray(np.asarray(val.images)[rows])
    n = len(rows)
    dlib_net = load_dlib().face_recognition_model_v1(str(default_model_file()))
    student = ModelEmbedder.from_checkpoint(checkpoint)
    port_torch = load_embedder("dlib-resnet?backend=torch") if teacher_ref == "dlib-resnet" else None
    size = f"{student.spec.height}x{student.spec.width}"
    with tempfile.TemporaryDirectory() as tmp:
        export_checkpoint(checkpoint, Path(tmp) / "student.onnx")
        student_onnx = OnnxEmbedder(Path(tmp) / "student.onnx")
        timings = {
            "dlib compute_face_descriptor (150x150 chips)": ms_per_face(
                lambda: dlib_net.compute_face_descriptor(dlib_chips, 0), n, max(1, repeats // 2)
            ),
            "teacher port, onnxruntime (150x150 chips)": ms_per_face(
                lambda: teacher.embed_crops(np.asarray(chips.images)[: len(rows)], batch_size=batch), n, repeats
            ),
            f"student torch fp32 ({size} crops)": ms_per_face(
                lambda: student.embed_crops(student_crops, batch_size=batch), n, repeats
            ),
            f"student onnxruntime ({size} crops)": ms_per_face(
                lambda: student_onnx.embed_crops(student_crops, batch_size=batch), n, repeats
            ),
        }
        if port_torch is not None:  # the teacher's own network in PyTorch: what the student saves over the port
            timings["teacher port, torch fp32 (150x150 chips)"] = ms_per_face(
                lambda: port_torch.embed_crops(np.asarray(chips.images)[: len(rows)], batch_size=batch), n, repeats
            )
    dlib_ms = timings["dlib compute_face_descriptor (150x150 chips)"]
    return {
        "faces": n,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "ms_per_face": timings,
        "speedup_vs_dlib_descriptor": {
            k: round(dlib_ms / v, 1) for k, v in timings.items() if not k.startswith("dlib")
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a distillation run folder (its config.yaml)")
    parser.add_argument(
        "--checkpoint", default="last.pt", help="file in --run (default last.pt: no choice on held-out data)"
    )
    parser.add_argument("--teacher", default=None, help="default: the run's distill.teacher")
    parser.add_argument("--workers", type=int, default=None, help="face-detection processes for the teacher")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from facemetric.core.config import load_config

    teacher = args.teacher or load_config(args.run / "config.yaml").distill.teacher
    if not teacher:
        raise SystemExit(f"{args.run}: not a distillation run (no distill.teacher); pass --teacher")
    checkpoint = args.run / args.checkpoint
    report: dict[str, Any] = {
        "benchmark": "distill",
        "date": datetime.date.today().isoformat(),
        "run": str(args.run),
        "checkpoint": str(checkpoint),
        "teacher": teacher,
        "accuracy": accuracy(args.run, checkpoint, teacher, args.workers),
    }
    if not args.skip_speed:
        report["speed"] = speed(args.run, checkpoint, teacher, args.batch, args.repeats)
    print(json.dumps(report, indent=1))
    if args.out is not None:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
