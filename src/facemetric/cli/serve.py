"""``facemetric serve``: the gallery's HTTP API and web page."""

from __future__ import annotations

import argparse
import os

from facemetric.cli.common import add_gallery, add_model
from facemetric.serve.batching import MAX_BATCH, WINDOW

HELP = "HTTP API and web page for the gallery (FastAPI)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help=HELP,
        description=(
            "Serves enroll / verify / identify / list / remove over HTTP (OpenAPI docs and response schemas at /docs) "
            "and a small web page at / to enrol and verify from an uploaded photo or the webcam. Binds 127.0.0.1 by "
            "default; binding another address requires a bearer token (--token or $FACEMETRIC_TOKEN). Several "
            "servers may serve one PostgreSQL gallery (--gallery postgresql://...): each sees the others' "
            "enrolments and deletions on its next request."
        ),
    )
    add_gallery(p)
    add_model(
        p,
        required=False,
        extra="; default: the gallery's own. A gallery that does not exist yet is created for this model",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument(
        "--token",
        default=os.environ.get("FACEMETRIC_TOKEN"),
        help="bearer token every request must carry (required unless bound to localhost)",
    )
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload (default 10 MB)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest accepted image (default 40 MP)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that find faces, several requests at once (default: one per CPU; 0 = none: each request "
        "detects and embeds on its own, one at a time)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=MAX_BATCH,
        help=f"faces of concurrent requests embedded in one model call, at most (default {MAX_BATCH})",
    )
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=WINDOW * 1e3,
        help="how long the model waits for more faces when its batch is not full (default "
        f"{WINDOW * 1e3:g} ms; 0 = take only those waiting)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from facemetric.core.errors import require

    require("fastapi", "serve", "facemetric serve")
    require("uvicorn", "serve", "facemetric serve")
    from facemetric.serve.app import ServeOptions, run_server

    run_server(
        ServeOptions(
            args.gallery,
            args.host,
            args.port,
            args.token,
            int(args.max_upload_mb * 1024 * 1024),
            args.max_pixels,
            args.template,
            args.model,
            args.workers,
            args.max_batch,
            args.batch_window_ms,
        )
    )
    return 0
