"""Command line: parsing only; every sub-command calls the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import yaml

from facemetric import __version__

EPILOG = """examples:
  facemetric demo                                   synthetic faces, end to end in minutes
  facemetric demo --data ~/photos                   the same on your folder-per-person photos
  facemetric prepare ~/photos data/photos --align dlib   detect, align, pack once
  facemetric train config.yaml --data data/photos --out runs/exp1
  facemetric train config.yaml --out runs/exp1 --resume
  facemetric eval --checkpoint runs/exp1/best.pt --pairs pairs.txt --images lfw/images
  facemetric embed --checkpoint runs/exp1/best.pt ~/photos -o embeddings.npz
  facemetric models --max-params 21M                backbones with parameters, FLOPs, CPU speed
  facemetric export runs/exp1/best.pt --onnx model.onnx   portable model, checked with onnxruntime
  facemetric eval --checkpoint model.onnx --pairs pairs.txt --images lfw/images
  facemetric config --set train.epochs=5            print the resolved config (all keys)
"""


def _add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one config key, value parsed as YAML (repeatable), e.g. --set optim.lr=0.05",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facemetric", description="Train, evaluate and use face verification embedding models.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"facemetric {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train an embedding model from a YAML config",
                       description="Train an embedding model. Flags override the config file; the resolved "
                       "config, metrics (CSV, JSONL, TensorBoard) and checkpoints go to the run folder.")
    p.add_argument("config", nargs="?", help="YAML config (see `facemetric config` for every key); default: built-in defaults")
    p.add_argument("--data", help="dataset folder or CSV (sets data.source)")
    p.add_argument("--out", help="run folder (sets train.out)")
    p.add_argument("--epochs", type=int, help="number of epochs (sets train.epochs)")
    p.add_argument("--device", help="auto, cpu or cuda (sets train.device)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt (step, optimizer and schedule restored)")
    _add_overrides(p)

    p = sub.add_parser("prepare", help="detect + align + decode photos once into a packed training cache",
                       description="Scan SOURCE (folder per person, CSV, or flat files), decode every image, "
                       "find and align the face, and write OUT: images.npy (N x size x size x C uint8, read "
                       "memory-mapped), manifest.csv, detections.jsonl, skipped.csv (every input left out, with "
                       "why), summary.json and contact_sheet.png. Interrupted runs resume; a rerun on an "
                       "up-to-date cache does nothing. Train on it with --data OUT.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""alignment backends:
  none    the whole photo, centre-cropped to a square and resized
  center  the central --center-fraction of pre-aligned photos (LFW deep-funneled, ORL)
  opencv  Haar cascade face + eye detection (needs opencv-python-headless<5 or Debian opencv-data)
  dlib    HOG detector + 5 landmarks, warped onto the ArcFace 112x112 template (pip install 'facemetric[align]')
""")
    p.add_argument("source", help="dataset folder or CSV")
    p.add_argument("out", help="output folder for the cache")
    p.add_argument("--size", type=int, default=112, help="side of the square crops in pixels (default 112)")
    p.add_argument("--align", default="center", choices=["none", "center", "opencv", "dlib"],
                   help="how faces are found and cut (default center; see below)")
    p.add_argument("--channels", type=int, default=3, choices=[1, 3], help="3 = RGB (default), 1 = grey")
    p.add_argument("--center-fraction", type=float, default=0.55, help="--align center: fraction of the photo kept")
    p.add_argument("--max-upsample", type=int, default=1, help="--align dlib: 2x upsamplings tried for small faces")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"])
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count; 0 = none)")
    p.add_argument("--overwrite", action="store_true", help="replace an OUT that holds a different cache")

    p = sub.add_parser("eval", help="LFW-protocol verification of a checkpoint on a pairs file",
                       description="10-fold accuracy (each fold's threshold chosen on the other folds), AUC, EER and "
                       "TAR@FAR on an LFW-format pairs file. Prints JSON.")
    p.add_argument("--checkpoint", required=True, help="checkpoint file (best.pt or last.pt of a run) or its ONNX export")
    p.add_argument("--pairs", required=True, help="pairs file in the LFW format (header `N` or `folds N`)")
    p.add_argument("--images", required=True, help="folder with one sub-folder per person (name/name_0001.jpg)")
    p.add_argument("--flip", action="store_true", help="add the embedding of the mirrored image (test-time augmentation)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("-o", "--output", help="also write the JSON report to this file")

    p = sub.add_parser("embed", help="embed every image of a dataset into an .npz file",
                       description="Writes embeddings (N x D float32), paths and identities to an .npz file.")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or its ONNX export (.onnx)")
    p.add_argument("source", help="dataset folder or CSV (any layout `train` accepts)")
    p.add_argument("-o", "--output", required=True, help="output .npz file")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"])
    p.add_argument("--flip", action="store_true", help="add the embedding of the mirrored image")
    p.add_argument("--batch-size", type=int, default=256)

    p = sub.add_parser("demo", help="end to end: data -> train -> evaluate -> summary table",
                       description="Without --data: a synthetic identity dataset is generated and the whole "
                       "pipeline runs in a few CPU minutes. With --data: the same on your dataset.")
    p.add_argument("--data", help="dataset folder or CSV instead of synthetic faces")
    p.add_argument("--out", default="runs/demo", help="demo folder (default: runs/demo)")
    _add_overrides(p)

    p = sub.add_parser("models", help="list the backbones with parameters, FLOPs and CPU speed",
                       description="Every registered backbone at its natural input (3x112x112 faces; 1x32x32 "
                       "patches for l2net/hardnet): parameter count, forward GFLOPs per image (counted by "
                       "torch.utils.flop_counter, a multiply-add = 2) and CPU forward images/s (eval mode, "
                       "batch 8, channels-last fp32, about 1 s per model). Use a name as model.name.")
    p.add_argument("names", nargs="*", help="only these models (default: all)")
    p.add_argument("--embedding-dim", type=int, help="embedding size (default 512; 128 for l2net/hardnet)")
    p.add_argument("--max-params", help="mark which fit a parameter cap, e.g. 21M or 21000000")
    p.add_argument("--no-speed", action="store_true", help="skip the speed measurement (instant)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("export", help="export a checkpoint to ONNX (dynamic batch), checked with onnxruntime",
                       description="Writes an ONNX file with a dynamic batch axis (input `images` N x C x H x W, "
                       "normalised as in training; output `embeddings` N x D, unit length) and the preprocessing "
                       "as metadata, then runs it with onnxruntime against torch: the export is refused if any "
                       "embedding differs by more than 1e-4. `eval` and `embed` accept the .onnx file.")
    p.add_argument("checkpoint", help="checkpoint file (best.pt or last.pt of a run)")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--legacy-exporter", action="store_true",
                   help="torch's older TorchScript exporter (faster, deprecated by torch) instead of torch.export")

    p = sub.add_parser("config", help="print the resolved config (defaults + file + overrides) as YAML")
    p.add_argument("config", nargs="?", help="YAML config file")
    _add_overrides(p)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from facemetric.config import load_config
    from facemetric.train.engine import train

    flags = {"data.source": args.data, "train.out": args.out, "train.epochs": args.epochs, "train.device": args.device}
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + args.overrides
    if args.quiet:
        overrides.append("train.progress=false")
    result = train(load_config(args.config, overrides), resume=args.resume)
    print(json.dumps({"run": str(result.out_dir), "epochs": result.epochs, "global_step": result.global_step,
                      "best_accuracy": result.best_accuracy, "val": result.val}, indent=1))
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from facemetric.data.prepare import PrepareOptions, prepare

    align_options = {"center": {"fraction": args.center_fraction}, "dlib": {"max_upsample": args.max_upsample}}
    options = PrepareOptions(args.size, args.align, args.channels, align_options.get(args.align, {}), args.layout)
    result = prepare(args.source, args.out, options, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    s = result.summary
    if result.up_to_date:
        logging.getLogger("facemetric").info("%s is up to date: nothing to do", args.out)
    elif s["skipped"]:
        logging.getLogger("facemetric").warning(
            "skipped %d input(s): %s; each is listed with its reason in %s", s["skipped"],
            ", ".join(f"{n} {k}" for k, n in s["skipped_by_kind"].items()), Path(args.out) / "skipped.csv",
        )
    print(json.dumps(s, indent=1))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from facemetric.eval.embed import load_embedder
    from facemetric.eval.protocol import evaluate_pairs_file

    embedder = load_embedder(args.checkpoint)
    report = evaluate_pairs_file(embedder, args.pairs, args.images, args.flip, args.batch_size, progress=not args.quiet)
    report["checkpoint"] = str(args.checkpoint)
    text = json.dumps(report, indent=1)
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from facemetric.data.sources import scan_source
    from facemetric.eval.embed import load_embedder
    from facemetric.train.data import report_skipped

    embedder = load_embedder(args.checkpoint)
    manifest = scan_source(args.source, args.layout)
    emb, paths, identities, bad = embedder.embed_manifest(manifest, args.batch_size, args.flip, progress=not args.quiet)
    report_skipped([(str(p), r) for p, r in manifest.skipped] + bad)
    np.savez(args.output, embeddings=emb, paths=np.array(paths), identities=np.array(identities))
    print(json.dumps({"output": args.output, "images": len(paths), "embedding_dim": int(emb.shape[1]) if emb.ndim == 2 else 0,
                      "skipped": len(bad) + len(manifest.skipped)}))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from facemetric.demo import run_demo

    run_demo(args.data, args.out, args.overrides, progress=not args.quiet)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from facemetric.config import load_config

    print(yaml.safe_dump(load_config(args.config, args.overrides).to_dict(), sort_keys=False), end="")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from facemetric.config import parse_count
    from facemetric.models import available_models
    from facemetric.models.zoo import catalogue

    unknown = sorted(set(args.names) - set(available_models()))
    if unknown:
        print(f"facemetric models: unknown model(s) {unknown}; available: {', '.join(available_models())}", file=sys.stderr)
        return 2
    cap = parse_count(args.max_params, "--max-params")
    rows = []
    for row in catalogue(args.embedding_dim, not args.no_speed, args.names or None):
        rows.append({**asdict(row), **({"fits": row.params <= cap} if cap else {})})
        if not args.json:
            speed = f"{row.images_per_s:>9,.1f}" if row.images_per_s is not None else f"{'-':>9}"
            fits = ("  yes" if row.params <= cap else "  NO") if cap else ""
            if len(rows) == 1:
                print(f"{'model':<26}{'input':>10}{'dim':>6}{'params':>14}{'GFLOPs':>9}{'img/s':>10}" + ("  fits" if cap else ""))
            print(f"{row.name:<26}{row.input:>10}{row.embedding_dim:>6}{row.params:>14,}{row.gflops:>9.3f} {speed}{fits}")
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from facemetric.export.onnx import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.onnx, dynamo=not args.legacy_exporter)
    print(json.dumps({"onnx": str(report.path), "max_abs_diff": report.max_abs_diff, "batch_sizes_checked":
                      list(report.batch_sizes_checked), "megabytes": report.megabytes, "seconds": report.seconds}))
    return 0


COMMANDS = {"prepare": _cmd_prepare, "train": _cmd_train, "eval": _cmd_eval, "embed": _cmd_embed, "demo": _cmd_demo, "config": _cmd_config,
            "models": _cmd_models, "export": _cmd_export}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facemetric`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    from facemetric.config import ConfigError
    from facemetric.data.prepare import PrepareError
    from facemetric.data.protocols import MissingImageError, PairsFormatError
    from facemetric.data.sources import DatasetError
    from facemetric.eval.protocol import EvaluationError
    from facemetric.export.onnx import ExportError
    from facemetric.mining.monitor import CollapseError
    from facemetric.models.budget import ParameterBudgetError
    from facemetric.train.checkpoint import CheckpointError

    try:
        return COMMANDS[args.command](args)
    except CollapseError as exc:
        print(f"facemetric {args.command}: stopped: {exc}", file=sys.stderr)
        return 3
    except (ConfigError, DatasetError, CheckpointError, PairsFormatError, MissingImageError, EvaluationError,
            PrepareError, ParameterBudgetError, ExportError) as exc:
        print(f"facemetric {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
