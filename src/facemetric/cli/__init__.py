"""The command line: one module per command, each only parsing its arguments and calling the library.

``main`` catches :class:`~facemetric.core.errors.FacemetricError`, the base of every error a user
can cause, and prints its message on one line (exit status 2, or the error's own ``exit_code``);
any other exception is a bug in facemetric and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import NoReturn

from facemetric.cli import (
    config,
    demo,
    embed,
    evaluate,
    export,
    gallery,
    models,
    predict,
    prepare,
    protocol,
    report,
    serve,
    train,
    tune,
)
from facemetric.core.errors import FacemetricError
from facemetric.core.version import VERSION

PATH_ERRORS = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ENOTEMPTY}
COMMANDS = (
    demo,
    prepare,
    train,
    tune,
    evaluate,
    predict,
    protocol,
    report,
    embed,
    models,
    export,
    gallery,
    serve,
    config,
)

EPILOG = """examples:
  facemetric demo                                   synthetic faces, end to end in minutes
  facemetric demo --data ~/photos                   the same on your folder-per-person photos
  facemetric prepare --data ~/photos --out caches/photos --align dlib   detect, align, pack once
  facemetric train config.yaml --data caches/photos --out runs/exp1
  facemetric train config.yaml --out runs/exp1 --resume
  facemetric train configs/dlib_finetune.yaml --data chips --out runs/ft   fine-tune dlib's pretrained network
  facemetric tune config.yaml --trials 20 --param optim.lr='log(1e-4,1e-2)'   hyper-parameter search (Optuna)
  facemetric eval --model runs/exp1/best.pt --data lfw/images --pairs pairs.txt
  facemetric eval --model dlib-resnet --data lfw/images --pairs pairs.txt   the pretrained model, same protocol
  facemetric protocol open-set --data ~/photos -o split.csv   gallery / known / unknown probes
  facemetric eval --model runs/exp1/best.pt --data ~/photos --open-set split.csv --out runs/exp1/eval
  facemetric protocol course --data ~/photos --out course   a course layout: train/dev/test, known/unknown (HW2P2)
  facemetric predict classify --model runs/c/best.pt --test course/classification/test -o submission.csv
  facemetric report runs/exp1                       HTML report of a run (evaluated on its held-out people)
  facemetric embed --model runs/exp1/best.pt --data ~/photos -o embeddings.npz
  facemetric models --max-params 21M                backbones with parameters, FLOPs, CPU speed
  facemetric export --model runs/exp1/best.pt -o model.onnx   portable model, checked with onnxruntime
  facemetric export --model dlib-resnet -o dlib.onnx   dlib's pretrained network as ONNX
  facemetric gallery --gallery team init --model dlib-resnet   a face gallery (pretrained, offline)
  facemetric gallery --gallery team enroll "Ada Lovelace" ada1.jpg ada2.jpg
  facemetric serve --gallery team                   HTTP API + web page on http://127.0.0.1:8000
  facemetric config --set train.epochs=5            print the resolved config (all keys), checked

One grammar for every command (docs/cli.md): the model is --model (a checkpoint .pt, an ONNX export .onnx
or a pretrained name: dlib-resnet), the dataset --data, a folder written --out DIR, a file written
-o/--output FILE, a false-accept rate --far (default 1e-2); JSON results go to stdout, messages to stderr.
"""


class Parser(argparse.ArgumentParser):
    """argparse's parser, its errors in one line (which argument, what is wrong, where the help is) instead of the
    usage block and the error: every refusal of the command line reads alike. Sub-commands' parsers are this too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="facemetric",
        description="Train, evaluate and use face verification embedding models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"facemetric {VERSION}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``facemetric`` console script."""
    args = build_parser().parse_args(argv)
    # our messages at INFO; libraries (faiss's loader, httpx, uvicorn) only when they warn
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logging.getLogger("facemetric").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return int(args.run(args))
    except FacemetricError as exc:
        kind = "stopped" if exc.exit_code == 3 else "error"
        print(f"facemetric {args.command}: {kind}: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # a path the system refused (it vanished, it is a folder, it cannot be read) is the user's to fix, in one line;
        # any other OSError is not about a path given, and keeps its traceback
        if exc.filename is None or exc.errno not in PATH_ERRORS:
            raise
        print(f"facemetric {args.command}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
