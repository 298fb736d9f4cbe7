"""Arguments several commands share, and the JSON they print."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from facemetric.core.matching import DEFAULT_FAR, TEMPLATES
from facemetric.data.sources import LAYOUTS

log = logging.getLogger("facemetric")
RAW = argparse.RawDescriptionHelpFormatter
FAR = DEFAULT_FAR  # the one default of --far (docs/cli.md)
BATCH_SIZE = 256  # the one default of --batch-size


# ------------------------------------------------------------------ paths, checked as they are parsed
# argparse calls these on each value; an ArgumentTypeError becomes one line naming the argument
# (facemetric.cli.Parser.error), before anything is read or written.


def _problem(path: Path) -> str | None:
    """What makes ``path`` unusable as an input (it exists), or None."""
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        return "cannot be read (permission denied); check its permissions"
    if path.is_dir() and next(path.iterdir(), None) is None:
        return "an empty folder; give the folder that holds the files"
    return None


def input_path(value: str) -> str:
    """An existing, readable file or non-empty folder (a dataset: a folder, a CSV, an export file)."""
    path = Path(value).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value}: no such file or folder")
    problem = _problem(path)
    if problem:
        raise argparse.ArgumentTypeError(f"{value}: {problem}")
    return value


def input_file(value: str) -> str:
    """An existing, readable file."""
    path = Path(value).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: a folder, not a file; give the file")
    return input_path(value)


def input_folder(value: str) -> str:
    """An existing, readable, non-empty folder."""
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: a file, not a folder; give the folder")
    return input_path(value)


def _writable(value: str, wrong_kind: bool, kind: str, made: str) -> str:
    """``value`` as an output path: refused when it is the wrong kind of thing (``kind`` says what it is) or
    when the first of its parents that exists is a file (nothing can be ``made`` inside it)."""
    if wrong_kind:
        raise argparse.ArgumentTypeError(f"{value}: {kind}")
    for parent in Path(value).expanduser().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{value}: {parent} is a file, so {made} inside it")
            break
    return value


def output_folder(value: str) -> str:
    """A folder to write into (made if new); a URL (a PostgreSQL gallery) as it is."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    return _writable(
        value,
        path.exists() and not path.is_dir(),
        "a file, not a folder; give a folder to write into (new or existing)",
        "no folder can be made",
    )


def output_file(value: str) -> str:
    """A file to write (replaced if it exists; its folder made if new)."""
    return _writable(
        value,
        Path(value).expanduser().is_dir(),
        "a folder, not a file; give the name of the file to write",
        "nothing can be written",
    )


def add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, value parsed as YAML (repeatable), e.g. --set optim.lr=0.05 or "
        "--set loss.options.margin=0.3",
    )


def add_layout(p: argparse.ArgumentParser, what: str = "the dataset") -> None:
    p.add_argument(
        "--layout",
        default="auto",
        choices=LAYOUTS,
        help=f"how {what} is organised: a folder per person, a CSV image,identity, flat files named "
        "after the person (default: detected)",
    )


class _ModelOption(argparse._StoreAction):
    """``--model``, whose help lists the pretrained names and their licences from the registry when it is
    shown (reading the registry imports the embedders; parsing never does)."""

    @property
    def help(self) -> str | None:
        if self._help is None:
            return None
        from facemetric.embedders.registry import pretrained_catalogue

        names = "; ".join(f"{r.name}: {r.licence}" for r in pretrained_catalogue())
        return self._help.replace("{pretrained}", names.replace("%", "%%"))

    @help.setter
    def help(self, value: str | None) -> None:
        self._help = value


def add_model(p: argparse.ArgumentParser, required: bool = True, default: str | None = None, extra: str = "") -> None:
    """``--model``: any model facemetric can embed with (docs/cli.md: a model is always ``--model``).

    ``default=argparse.SUPPRESS`` lets a sub-command take it too without hiding the parent's value.
    """
    p.add_argument(
        "--model",
        action=_ModelOption,
        required=required,
        default=default,
        metavar="MODEL",
        help="a checkpoint (best.pt / last.pt of a run), its ONNX export (.onnx), or a pretrained model "
        "name, options after ? (e.g. dlib-resnet?upsample=2, arcface-onnx?path=FILE); the pretrained models "
        "and the licences of their weights: {pretrained}" + extra,
    )


def add_data(p: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    """``--data``: the dataset a command reads (docs/cli.md: a dataset is always ``--data``)."""
    p.add_argument("--data", required=required, type=input_path, metavar="DATA", help=help)


def add_out(p: argparse.ArgumentParser, help: str, required: bool = True, default: str | None = None) -> None:
    """``--out``: the folder a command writes (docs/cli.md: a folder output is ``--out``)."""
    p.add_argument("--out", required=required, default=default, type=output_folder, metavar="DIR", help=help)


def add_output(p: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    """``-o/--output``: the file a command writes (docs/cli.md: a file output is ``-o/--output``)."""
    p.add_argument("-o", "--output", required=required, type=output_file, metavar="FILE", help=help)


def add_far(p: argparse.ArgumentParser, what: str, default: str = f"default {FAR:g}") -> None:
    """``--far``: the false-accept rate a threshold is calibrated at; one meaning and one default everywhere.

    ``default`` words the default; any other wording than the standard one leaves the option's value None when
    it is not given (``report`` then keeps a run's existing evaluation), the command applying :data:`FAR` itself.
    """
    p.add_argument(
        "--far",
        type=float,
        default=FAR if default == f"default {FAR:g}" else None,
        metavar="RATE",
        help=f"target false-accept rate of the calibrated threshold: {what} ({default}; 1e-3 and below need "
        "thousands of impostor comparisons to be measured)",
    )


def add_batch_size(p: argparse.ArgumentParser) -> None:
    """``--batch-size``: images embedded per forward pass."""
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"images per forward pass (default {BATCH_SIZE})")


def add_test(p: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    """``--test``: the flat folder of test images a course-style task predicts."""
    p.add_argument("--test", required=required, type=input_folder, metavar="FOLDER", help=help)


def add_patch_split(p: argparse.ArgumentParser, default: str, what: str) -> None:
    """``--patch-split``: which sequences of an HPatches release (``prepare --patches``, ``eval --patches``)."""
    p.add_argument(
        "--patch-split",
        dest="patch_split",
        default=default,
        metavar="SPLIT",
        help=f"--patches: {what}: full, illum (i_*), view (v_*), or a split of hpatches-benchmark's splits.json "
        f"(a, b, c) (default {default})",
    )


def add_gallery(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gallery",
        default=os.environ.get("FACEMETRIC_GALLERY", "gallery"),
        metavar="FOLDER|URL",
        help="where the gallery lives: a folder (SQLite + FAISS index, embedded) or a PostgreSQL URL "
        "postgresql://user[:password]@host[:port]/database (pgvector; several servers can share it; "
        "pip install 'facemetric[postgres]'; add ?search=exact for exact instead of HNSW search). A URL of "
        "any other scheme is refused (default: $FACEMETRIC_GALLERY or ./gallery)",
    )
    p.add_argument(
        "--template",
        default="max",
        choices=list(TEMPLATES),
        help="score a person by their best-matching photo (max) or their mean embedding (mean)",
    )


def print_json(value: Any) -> None:
    """A result on stdout as indented JSON (pydantic models, also in a list, as their JSON)."""

    def plain(v: Any) -> Any:
        return v.model_dump(mode="json") if hasattr(v, "model_dump") else v

    value = [plain(v) for v in value] if isinstance(value, (list, tuple)) else plain(value)
    print(json.dumps(value, indent=1))
