"""``facemetric export``: a checkpoint to ONNX, checked with onnxruntime."""

from __future__ import annotations

import argparse

from facemetric.cli.common import RAW, add_model, add_output

HELP = "export a checkpoint or the pretrained dlib-resnet to ONNX (dynamic batch), checked with onnxruntime"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help=HELP,
        description=(
            "Writes an ONNX file with a dynamic batch axis (input `images` N x C x H x W, normalised as in training; "
            "output `embeddings` N x D, unit length) and the preprocessing as metadata, then runs it with onnxruntime "
            "against torch: the export is refused if any embedding differs by more than 1e-4. `eval`, `embed`, "
            "`gallery` and `serve` accept the .onnx file as --model."
        ),
        epilog="""examples:
  facemetric export --model runs/exp1/best.pt -o model.onnx
  facemetric export --model dlib-resnet -o dlib.onnx""",
        formatter_class=RAW,
    )
    add_model(p, extra="; not an .onnx file (it is exported already)")
    add_output(p, "the .onnx file to write")
    p.add_argument(
        "--legacy-exporter",
        action="store_true",
        help="torch's older TorchScript exporter (faster, deprecated by torch) instead of torch.export",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from facemetric.export.onnx import export_checkpoint

    report = export_checkpoint(args.model, args.output, dynamo=not args.legacy_exporter)
    print(
        json.dumps(
            {
                "onnx": str(report.path),
                "max_abs_diff": report.max_abs_diff,
                "batch_sizes_checked": list(report.batch_sizes_checked),
                "megabytes": report.megabytes,
                "seconds": report.seconds,
            }
        )
    )
    return 0
