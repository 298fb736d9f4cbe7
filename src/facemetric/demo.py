"""The end-to-end demo: data -> train -> evaluate -> summary table, in a few CPU minutes.

Without data it generates a synthetic identity dataset (procedural faces with per-image
pose, shift, lighting and noise), holds out identities, trains, and evaluates the trained
model against the untrained one on the held-out identities, also through an LFW-format
pairs file, exactly as ``facemetric eval`` would, and writes the HTML report of the run
(``facemetric report``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from facemetric.core.atomic import made_for_good, write_json
from facemetric.core.config import Config, load_config
from facemetric.core.errors import ConfigError
from facemetric.data.dataset import DatasetSplit, load_dataset
from facemetric.data.prepare import PrepareOptions, prepare
from facemetric.data.synthetic import generate_dataset
from facemetric.embedders.torch_model import ModelEmbedder
from facemetric.eval.suite.files import evaluate_pairs_file
from facemetric.eval.suite.held_out import evaluate_run_to_folder
from facemetric.eval.verification.files import write_pairs_lfw
from facemetric.eval.verification.result import VerificationMetrics
from facemetric.report import render_report
from facemetric.train.build import build_run

log = logging.getLogger("facemetric")

SYNTHETIC = {"identities": 150, "images": 12, "size": 64, "val_identities": 30}
DEMO_DEFAULTS = [
    "train.epochs=30",
    "train.val_every=5",
    "sampler.p=16",
    "sampler.k=4",
    "loss.name=arcface",
    "augment.shift=0.08",  # the synthetic faces move about in their frames (not aligned)
]


def summary_table(reports: dict[str, VerificationMetrics]) -> str:
    """A Markdown table: one row per report (accuracy, AUC, EER, TAR at two FARs)."""
    width = max(len(name) for name in reports)
    head = ["model / protocol".ljust(width), "accuracy (10-fold)", "AUC   ", "EER   ", "TAR@FAR=1e-2", "TAR@FAR=1e-3"]
    rows = ["| " + " | ".join(head) + " |", "|" + "|".join("-" * (len(h) + 2) for h in head) + "|"]
    for name, rep in reports.items():
        tar = rep.tar_at_far
        cells = [
            name.ljust(width),
            f"{rep.accuracy:.4f} ± {rep.accuracy_std:.4f}".ljust(18),
            f"{rep.auc:.4f}",
            f"{rep.eer:.4f}",
            f"{tar['1e-02']:.4f}".ljust(12),
            f"{tar['1e-03']:.4f}".ljust(12),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _demo_data(
    data: str | None, out_dir: Path, overrides: list[str] | None, progress: bool
) -> tuple[Config, DatasetSplit]:
    """The demo's config and its data, loaded and split (synthetic faces made first when no ``data`` is given)."""
    synthetic = data is None
    base = list(DEMO_DEFAULTS) + [f"train.out={out_dir / 'run'}", f"train.progress={str(progress).lower()}"]
    if synthetic:
        data_dir = out_dir / "synthetic-data"
        generate_dataset(
            data_dir, SYNTHETIC["identities"], SYNTHETIC["images"], SYNTHETIC["size"], seed=0, progress=progress
        )
        # decode once into a packed cache (what `facemetric prepare` does); training reads it memory-mapped
        size = SYNTHETIC["size"]
        prepare(data_dir, out_dir / "cache", PrepareOptions(size=size, align="none"), workers=0, progress=progress)
        base += [
            f"data.source={out_dir / 'cache'}",
            f"data.image_size=[{size}, {size}]",
            f"data.val_identities={SYNTHETIC['val_identities']}",
        ]
    else:
        base += [f"data.source={data}"]
    cfg = load_config(None, base + list(overrides or []))

    prepared = load_dataset(cfg.data, progress, Path(cfg.train.out).parent)
    if prepared.val is None:
        raise ConfigError("data.val_identities: the demo needs held-out identities; set it above 0")
    return cfg, prepared


def run_demo(
    data: str | None = None, out: str = "runs/demo", overrides: list[str] | None = None, progress: bool = True
) -> dict[str, VerificationMetrics]:
    """Train and evaluate end to end; returns the verification of each row of the summary table it prints
    (``demo_report.json``)."""
    out_dir = Path(out)
    synthetic = data is None
    with made_for_good(out_dir):  # data that cannot be used leaves no demo folder behind
        cfg, prepared = _demo_data(data, out_dir, overrides, progress)
    run = build_run(cfg, data=prepared)
    assert run.validation is not None
    reports: dict[str, VerificationMetrics] = {"untrained model, held-out identities": run.validate_untrained()}
    result = run.fit()
    checkpoint = result.out_dir / ("best.pt" if (result.out_dir / "best.pt").exists() else "last.pt")
    embedder = ModelEmbedder.from_checkpoint(checkpoint)
    reports["trained model, held-out identities"] = run.validation.evaluate(embedder.model)
    if synthetic:
        val = prepared.val
        assert val is not None  # _demo_data refuses a split without held-out people
        # the validation pairs, as an LFW-format file that `facemetric eval` reads from the photos
        pairs_file = write_pairs_lfw(
            out_dir / "heldout_pairs.txt",
            run.validation.protocol,
            val.paths,
            [val.identity_names[k] for k in val.labels],
        )
        reports["trained, `facemetric eval` pairs file"] = evaluate_pairs_file(
            embedder, pairs_file, out_dir / "synthetic-data", progress=progress
        )
    write_json(out_dir / "demo_report.json", {name: report.model_dump() for name, report in reports.items()})
    report_html = _html_report(result.out_dir, checkpoint, progress)
    print(f"\nfacemetric demo: {'synthetic faces' if synthetic else data}, checkpoint {checkpoint}\n")
    print(summary_table(reports))
    print(f"\nreports: {out_dir / 'demo_report.json'}, {report_html}; training logs: {result.out_dir}")
    return reports


def _html_report(run: Path, checkpoint: Path, progress: bool) -> Path:
    """What ``facemetric report RUN`` writes: the run evaluated on its held-out people, as HTML."""
    return render_report(evaluate_run_to_folder(run, checkpoint, progress=progress)).html
