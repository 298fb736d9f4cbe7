"""Arguments several commands share, and the JSON they print."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

from facemetric.data.sources import LAYOUTS

log = logging.getLogger("facemetric")
RAW = argparse.RawDescriptionHelpFormatter


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


def add_model(p: argparse.ArgumentParser, required: bool = True, default: str | None = None, extra: str = "") -> None:
    """``--model`` (also ``--checkpoint`` / ``--embedder``): any model facemetric can embed with.

    ``default=argparse.SUPPRESS`` lets a sub-command take it too without hiding the parent's value.
    """
    p.add_argument(
        "--model",
        "--checkpoint",
        "--embedder",
        dest="model",
        required=required,
        default=default,
        metavar="MODEL",
        help="a checkpoint (best.pt / last.pt of a run), its ONNX export (.onnx), or a pretrained model "
        "name: dlib-resnet (options after ?, e.g. dlib-resnet?upsample=2)" + extra,
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
        choices=["max", "mean"],
        help="score a person by their best-matching photo (max) or their mean embedding (mean)",
    )


def print_json(value: Any) -> None:
    """A result on stdout as indented JSON (pydantic models, also in a list, as their JSON)."""

    def plain(v: Any) -> Any:
        return v.model_dump(mode="json") if hasattr(v, "model_dump") else v

    value = [plain(v) for v in value] if isinstance(value, (list, tuple)) else plain(value)
    print(json.dumps(value, indent=1))
