"""``facemetric eval``: verification, identification and retrieval metrics of any model; HPatches tasks (--patches)."""

from __future__ import annotations

import argparse

from facemetric.cli.common import (
    RAW,
    add_batch_size,
    add_data,
    add_far,
    add_layout,
    add_model,
    add_out,
    add_patch_split,
    input_file,
    input_folder,
)

HELP = "verification, identification and retrieval metrics of a model (checkpoint, ONNX or pretrained)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help=HELP,
        formatter_class=RAW,
        description=(
            "Evaluate a model (a checkpoint, its ONNX export, or a pretrained model such as dlib-resnet) on the "
            "photos of --data with any of: a pairs file (LFW format or CSV path1,path2,same[,fold]) for verification "
            "(k-fold accuracy with each fold's threshold chosen on the other folds, AUC, EER, TAR@FAR, the threshold "
            "for each stated FAR and how it holds on held-out folds); an open-set split CSV (path,identity,subset) for "
            "closed-set CMC and open-set DIR at a threshold calibrated on the validation unknowns; --retrieval, every "
            "photo of --data searching all the others (P@1, R-precision, MAP@R, Recall@K). Make the protocol files "
            "with `facemetric protocol`. Prints a JSON summary on stdout; --out DIR also keeps what `facemetric "
            "report DIR` draws. A model that detects faces (dlib-resnet, or one trained on a `prepare --align "
            "dlib|opencv` cache) may find none in some photos: --no-face says what is done with them, and the "
            "summary's no_face section lists those photos and the pairs they affected. --patches evaluates patch "
            "descriptors on the HPatches release in --data instead (patch verification, image matching, patch "
            "retrieval mAP per jitter level, illumination and viewpoint sequences apart); --model may then also be "
            "a baseline: raw (standardised pixels), sift or rootsift (OpenCV)."
        ),
        epilog="""examples:
  facemetric eval --model best.pt --data lfw/images --pairs lfw/pairs.txt --out runs/x/eval-lfw
  facemetric eval --model dlib-resnet --data lfw/images --pairs lfw/pairs.txt   the pretrained model, same protocol
  facemetric eval --model best.pt --data photos --open-set split.csv --far 1e-2 --out ev
  facemetric eval --model model.onnx --data photos --retrieval
  facemetric eval --model dlib-resnet --data lfw/images --pairs pairs.txt --no-face reject
  facemetric eval --model runs/hardnet/best.pt --data hpatches-release --patches --patch-split a --out runs/hardnet/hp
  facemetric eval --model sift --data hpatches-release --patches --patch-split view   a baseline on viewpoint sequences
""",
    )
    add_model(p)
    add_data(
        p,
        "the photos: the folder the paths of --pairs and --open-set are relative to (LFW: images/, one sub-folder per "
        "person; default for a CSV: the CSV's own folder), and the dataset --retrieval searches (folder per person, "
        "CSV or prepared cache); with --patches, the HPatches release",
        required=False,
    )
    p.add_argument(
        "--pairs",
        type=input_file,
        help="verification pairs: LFW format (header `N` or `folds N`) or CSV path1,path2,same[,fold]",
    )
    p.add_argument(
        "--open-set",
        dest="open_set",
        type=input_file,
        metavar="SPLIT_CSV",
        help="open-set split CSV: path,identity,subset (gallery|val_known|val_unknown|test_known|test_unknown)",
    )
    p.add_argument("--retrieval", action="store_true", help="retrieval: every photo of --data queries all the others")
    add_far(p, "open-set identification, the fraction of searches by someone not enrolled that name someone")
    p.add_argument(
        "--no-face",
        dest="no_face",
        choices=("fallback", "reject", "fail"),
        default="fallback",
        help="what to do with a readable photo in which the model's detector finds no face (an unreadable file is "
        "always an error). fallback (default): cut it as the model's spec cuts a photo without detection (its "
        "central crop) and evaluate it like the others, so the protocol stays complete. reject: turn it away as a "
        "deployed system would: a pair with it is scored -1 (a non-match at any threshold), an open-set probe is "
        "rejected (no correspondence), a gallery photo is not enrolled, a retrieval image is left out. fail: stop "
        "the evaluation, naming the photos. The photos and pairs affected are reported under no_face",
    )
    p.add_argument(
        "--pose",
        choices=("auto", "names", "detector", "none"),
        default="auto",
        help="verification by head pose (TAR and FAR per band of |yaw| at the threshold for --far, and TAR "
        "against |yaw|; in the summary's pose section and the report): each photo's yaw from its file name where "
        "the dataset encodes it (names: QMUL multi-view's <Name>_<tilt>_<pan>), or from the detector's estimate "
        "from five landmarks (detector). auto (default): names when every photo's name gives one, else the "
        "detector's where it has one, else no pose section; none: no pose section",
    )
    p.add_argument(
        "--patches",
        action="store_true",
        help="--data is an HPatches release (one folder per sequence, i_* and v_*, of ref/e1..e5/h1..h5/t1..t5.png): "
        "the three HPatches tasks of the model's patch descriptors, or of a baseline given as --model "
        "raw|sift|rootsift",
    )
    add_patch_split(p, default="full", what="the sequences evaluated")
    p.add_argument(
        "--patch-part",
        dest="patch_part",
        choices=("test", "train"),
        default="test",
        help="--patches with split a, b or c: its test (default) or train sequences",
    )
    p.add_argument(
        "--splits-json",
        dest="splits_json",
        type=input_file,
        help="--patches: hpatches-benchmark's splits.json for splits a, b, c (default DATA/splits.json)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="--patches: seed of the drawn verification and retrieval lists (default 0)"
    )
    p.add_argument(
        "--patch-tasks",
        dest="patch_tasks",
        type=input_folder,
        metavar="FOLDER",
        help="--patches: hpatches-benchmark's tasks/ folder (verif_pos_split-X.csv, ... retr_distractors_split-X.csv, "
        "X the --patch-split; with full, also the illum and view lists when there): evaluate its lists, the "
        "published protocol exactly, instead of drawing lists as its generators do",
    )
    p.add_argument(
        "--patch-ap",
        dest="patch_ap",
        choices=("trapezoid", "step"),
        default="trapezoid",
        help="--patches: the AP convention: trapezoid (default; hpatches-benchmark's Python code) or step "
        "(its MATLAB code, TREC AP: at least as high)",
    )
    p.add_argument(
        "--patch-balanced",
        dest="patch_balanced",
        choices=("auc", "ap"),
        default="auc",
        help="--patches: the balanced verification figure: auc (default; the benchmark's ROC AUC) or ap",
    )
    p.add_argument(
        "--patch-distractors",
        dest="patch_distractors",
        choices=("reference", "target"),
        default="reference",
        help="--patches: a retrieval distractor's patch: reference (default; the benchmark's) or target (one target "
        "image of the level drawn per distractor, jittered like the positives: higher hard / tough figures)",
    )
    p.add_argument(
        "--patch-same-sequence-distractors",
        dest="patch_same_sequence",
        action="store_true",
        help="--patches: rank a query's own sequence's distractors too (the benchmark leaves them out)",
    )
    add_layout(p, "the --retrieval dataset")
    p.add_argument(
        "--flip", action="store_true", help="add the embedding of the mirrored image (test-time augmentation)"
    )
    add_batch_size(p)
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that find faces in raw photos, for a model that detects them (default: up to 4 for 32 "
        "photos or more; 0 = this process)",
    )
    add_out(
        p,
        "evaluation folder: eval.json, pair scores, worst errors, embeddings, decisions.csv (what `facemetric "
        "report` draws)",
        required=False,
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.embedders import load_embedder
    from facemetric.eval.errors import EvaluationError
    from facemetric.eval.suite.files import evaluate_files
    from facemetric.eval.suite.folder import brief_summary, eval_document, write_eval_dir
    from facemetric.eval.suite.held_out import run_dir_of

    if args.patches:
        if args.pairs or args.open_set or args.retrieval:
            raise EvaluationError(
                "--patches evaluates patch descriptors on their own: evaluate --pairs, --open-set or --retrieval in "
                "another call"
            )
        return run_patches(args)
    if not (args.pairs or args.open_set or args.retrieval):
        raise EvaluationError(
            "nothing to evaluate: give --pairs, --open-set and/or --retrieval, or --patches (see --help)"
        )
    if args.retrieval and not args.data:
        raise EvaluationError("--retrieval searches the photos of --data: give --data (a folder per person, CSV, ...)")
    embedder = load_embedder(args.model)
    embedder.crop_workers = args.workers
    result, data = evaluate_files(
        embedder,
        pairs=args.pairs,
        images=args.data,
        open_set=args.open_set,
        retrieval=args.data if args.retrieval else None,
        layout=args.layout,
        far=args.far,
        flip=args.flip,
        batch_size=args.batch_size,
        progress=not args.quiet,
        no_face=args.no_face,
        pose=args.pose,
    )
    meta = {
        "checkpoint": str(args.model),
        "run_dir": run_dir_of(args.model),
        "flip": args.flip,
        "embedding_dim": embedder.dim,
        "data": data,
    }
    if args.out:
        write_eval_dir(args.out, result, meta)
    print(brief_summary(eval_document(result, meta)))
    return 0


def run_patches(args: argparse.Namespace) -> int:
    """``eval --patches``: the table on stderr, the JSON summary on stdout, the folder with ``--out``."""
    import sys

    from facemetric.eval.errors import EvaluationError
    from facemetric.eval.patches.folder import brief_patch_summary, patch_document, write_patch_eval_dir
    from facemetric.eval.patches.run import evaluate_release

    if not args.data:
        raise EvaluationError("--patches evaluates the HPatches release in --data: give --data RELEASE")
    evaluation = evaluate_release(
        args.data,
        args.model,
        split=args.patch_split,
        part=args.patch_part,
        splits_json=args.splits_json,
        seed=args.seed,
        batch_size=args.batch_size,
        tasks=args.patch_tasks,
        ap=args.patch_ap,
        balanced=args.patch_balanced,
        distractor_image=args.patch_distractors,
        same_sequence_distractors=args.patch_same_sequence,
    )
    if args.out:
        write_patch_eval_dir(args.out, evaluation.results, evaluation.meta, evaluation.sample)
    print(evaluation.results.table(), file=sys.stderr)
    print(brief_patch_summary(patch_document(evaluation.results, evaluation.meta)))
    return 0
