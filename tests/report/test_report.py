"""The HTML/Markdown evaluation report, rendered from synthetic facemetric-eval/1 folders."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from jinja2 import FileSystemLoader

from facemetric.core.errors import FacemetricError
from facemetric.eval.verification.metrics import curves
from facemetric.report import ReportError, ReportPaths, document, plots, render_report
from facemetric.report.training import read_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = [
    "Metrics",
    "ROC",
    "DET",
    "Score distributions",
    "Training curves",
    "Embeddings (t-SNE)",
    "Error gallery",
    "Identification",
    "Retrieval",
]
OPTIONAL = [
    "ROC",
    "DET",
    "Score distributions",
    "Training curves",
    "Embeddings (t-SNE)",
    "Error gallery",
    "Identification",
    "Retrieval",
]
EVIL = "<script>alert(1)</script>"
TEMPLATES = Path(document.__file__).with_name("templates")
# the fields eval.json must have, and a verification result without any of its optional parts
BARE = {"format": "facemetric-eval/1", "created": "2026-11-23T10:00:00", "checkpoint": "best.pt", "embedding_dim": 8}
VERIFICATION = {
    "accuracy": 0.9,
    "accuracy_std": 0.01,
    "n_folds": 2,
    "folds_from_file": False,
    "per_fold": [0.9, 0.9],
    "fold_thresholds": [0.3, 0.3],
    "auc": 0.95,
    "eer": 0.1,
    "eer_threshold": 0.3,
    "tar_at_far": {"1e-01": 0.5},
    "num_positive": 5,
    "num_negative": 5,
    "optimistic": {"accuracy": 0.92, "threshold": 0.31, "note": "on the test pairs"},
}


def _eval_json(scores: np.ndarray, same: np.ndarray) -> dict:
    return {
        "format": "facemetric-eval/1",
        "created": "2026-11-23T10:00:00",
        "checkpoint": "runs/x/best.pt",
        "run_dir": "../run",  # relative to the eval folder, not to the working directory
        "embedding_dim": 16,
        "flip": False,
        "data": {"description": "synthetic held-out identities", "pairs": 600},
        "verification": {
            "source": "pairs file data/pairs.txt",
            "accuracy": 0.97333,
            "accuracy_std": 0.012,
            "n_folds": 10,
            "folds_from_file": True,
            "per_fold": [0.97] * 10,
            "fold_thresholds": [0.42] * 10,
            "auc": 0.99,
            "eer": 0.03,
            "eer_threshold": 0.41,
            "tar_at_far": {"1e-03": 0.8, "1e-02": 0.93},
            "far_calibration": {
                "1e-02": {
                    "target_far": 0.01,
                    "threshold": 0.62,
                    "achieved_far": 0.01,
                    "tar": 0.91,
                    "held_out_far": 0.012,
                    "held_out_tar": 0.9,
                    "n_impostors": 300,
                    "below_resolution": False,
                }
            },
            "num_positive": int(same.sum()),
            "num_negative": int(len(same) - same.sum()),
            "optimistic": {
                "accuracy": 0.975,
                "threshold": 0.40,
                "note": "threshold chosen on the scored pairs themselves (optimistic)",
            },
            "threshold": {"value": 0.42, "rule": "median of the 10 k-fold thresholds"},
            "curves": curves(scores, same).model_dump(),
            "errors": {"false_accepts": 5, "false_rejects": 7},
        },
        "identification": {
            "closed_set": {
                "ranks": [0.9, 0.95, 0.97, 0.98, 0.99, 1.0],
                "rank1": 0.9,
                "rank5": 0.99,
                "n_identities": 6,
                "n_probes": 200,
                "template": "max",
            },
            "open_set": {
                "threshold": {
                    "value": 0.5,
                    "target_far": 0.01,
                    "achieved_far": 0.009,
                    "n_impostors": 110,
                    "source": "validation split: top scores of 110 unknown probes",
                    "below_resolution": False,
                },
                "test": {
                    "n_known": 100,
                    "n_unknown": 110,
                    "dir": 0.85,
                    "false_alarm_rate": 0.018,
                    "rank1": 0.95,
                    "dir_at_far": {
                        "far": [0.001, 0.01, 0.1],
                        "threshold": [0.7, 0.5, 0.3],
                        "dir": [0.5, 0.8, 0.9],
                        "achieved_far": [0.0, 0.0091, 0.1],
                        "below_resolution": [True, False, False],
                        "far_resolution": 1 / 110,
                        "n_known": 100,
                        "n_unknown": 110,
                        "computed_on": "test",
                        "note": "thresholds re-chosen on the test unknowns",
                    },
                },
                "validation": {"n_known": 100, "n_unknown": 110, "dir": 0.86},
                "template": "max",
                "n_gallery_identities": 6,
                "n_gallery_images": 6,
            },
            "decisions_csv": "decisions.csv",
        },
        "retrieval": {
            "precision_at_1": 0.95,
            "r_precision": 0.8,
            "map_at_r": 0.75,
            "recall_at_k": {"1": 0.95, "5": 0.99, "10": 1.0},
            "num_queries": 120,
            "num_evaluated": 120,
            "queries_without_positives": 0,
            "queries_r_capped": 0,
            "max_r": None,
            "k_searched": 11,
            "leave_one_out": True,
            "index": "flat",
            "exact": True,
        },
    }


def _make_eval_dir(root: Path) -> Path:
    """A complete eval folder ``root/eval`` plus its training run ``root/run``."""
    rng = np.random.default_rng(0)
    same = np.repeat(np.array([1, 0], np.int8), 300)
    scores = np.where(same == 1, rng.normal(0.6, 0.15, 600), rng.normal(0.1, 0.15, 600)).astype(np.float32)
    paths1 = np.array([f"person_{i % 20}/img_{i}.jpg" for i in range(600)])
    out = root / "eval"
    out.mkdir()
    (out / "eval.json").write_text(json.dumps(_eval_json(scores, same)))
    np.savez(out / "scores.npz", scores=scores, same=same, fold=np.arange(600) % 10, path1=paths1, path2=paths1[::-1])

    n_err = 4
    np.savez(
        out / "errors.npz",
        kind=np.array(["false_accept", "false_accept", "false_reject", "false_reject"]),
        score=np.array([0.9, 0.8, 0.1, 0.2], np.float32),
        path1=np.array([f"{EVIL}/a.jpg", "b/1.jpg", "c/1.jpg", "d/1.jpg"]),
        path2=np.array(["x/2.jpg", "y/2.jpg", "c/2.jpg", "d/2.jpg"]),
        image1=rng.integers(0, 256, (n_err, 24, 20, 3), dtype=np.uint8),
        image2=rng.integers(0, 256, (n_err, 24, 20, 3), dtype=np.uint8),
    )

    centres = rng.normal(size=(8, 16))
    identities = np.repeat([f"id{i}" for i in range(7)] + [EVIL], 15)
    embeddings = (np.repeat(centres, 15, axis=0) + 0.1 * rng.normal(size=(120, 16))).astype(np.float32)
    np.savez(out / "embeddings.npz", embeddings=embeddings, identities=identities)
    (out / "decisions.csv").write_text("probe,decision\n")

    run = root / "run"
    run.mkdir()
    records = [{"kind": "train", "step": s, "epoch": 1, "loss": 20.0 / s, "lr": 0.002} for s in range(1, 30)]
    records += [
        {"kind": "val", "step": s, "epoch": s // 10, "accuracy": 0.8 + s / 1000, "eer": 0.2 - s / 1000}
        for s in (10, 20)
    ]
    lines = [json.dumps(r) for r in records] + ["{not json", json.dumps({"kind": "lr_find", "step": 3})]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportPaths, str, str]:
    """The complete folder rendered once (t-SNE is the slow part): (folder, paths, html, markdown)."""
    root = tmp_path_factory.mktemp("report")
    out = _make_eval_dir(root)
    elsewhere = root / "a" / "b"  # where "../run" does not exist
    elsewhere.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(elsewhere)  # run_dir "../run" must then resolve against the eval folder
        paths = render_report(out)
    return out, paths, paths.html.read_text(encoding="utf-8"), paths.markdown.read_text(encoding="utf-8")


def _section(html_text: str, title: str) -> str:
    """The HTML of the section titled ``title``."""
    match = re.search(
        r'<section id="[^"]*">\s*<h2>' + re.escape(title.replace("&", "&amp;")) + r"</h2>(.*?)</section>",
        html_text,
        re.S,
    )
    assert match, f"no section {title!r}"
    return match.group(1)


def test_writes_html_markdown_and_figures(full):
    out, paths, _, _ = full
    assert paths.html == out / "report.html" and paths.html.is_file()
    assert paths.markdown == out / "report.md" and paths.markdown.is_file()
    names = {p.name for p in paths.figures}
    assert {
        "roc.png",
        "det.png",
        "scores.png",
        "training.png",
        "tsne.png",
        "cmc.png",
        "dir_at_far.png",
        "error_00.png",
        "error_03.png",
    } <= names
    assert all(p.parent == out / "report_files" and p.read_bytes().startswith(PNG_SIGNATURE) for p in paths.figures)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_html_is_self_contained(full):
    html_text = full[2]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html_text, re.I)
    assert "<script" not in html_text.lower()
    images = re.findall(r'<img\s[^>]*src="([^"]*)"', html_text)
    assert len(images) == len(full[1].figures) == 11
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)


def test_sections_and_numbers(full):
    _, _, html_text, md = full
    for title in SECTIONS:
        assert _section(html_text, title)
        assert f"\n## {title}\n" in md
    for text in (html_text, md):
        assert "0.9733 ± 0.0120 (10 folds, folds from the protocol)" in text
        assert "optimistic: threshold chosen on the test pairs (not a test figure)" in text
    metrics = _section(html_text, "Metrics")
    assert "<td>EER</td><td>0.0300 (threshold 0.4100)</td>" in metrics
    assert "<td>TAR @ FAR = 1e-03</td><td>0.8000 (fewer than 1/FAR = 1000 impostor pairs" in metrics
    assert "<td>Retrieval MAP@R</td><td>0.7500</td>" in metrics
    roc = _section(html_text, "ROC")
    assert "<tr><td>1e-02</td><td>0.6200</td><td>0.9100</td><td>0.0120</td><td>0.9000</td><td>no</td></tr>" in roc
    assert "0.5000 for target FAR 0.0100; achieved FAR 0.0090 on validation" in metrics
    identification = _section(html_text, "Identification")
    assert "<th>far</th><th>threshold</th><th>dir</th><th>achieved_far</th><th>below_resolution</th>" in identification
    assert "<td>0.0100</td><td>0.5000</td><td>0.8000</td><td>0.0091</td><td>no</td>" in identification
    assert "far_resolution: 0.0091; n_known: 100; n_unknown: 110; computed_on: test" in identification
    assert "<td>Test: false alarm rate</td><td>0.0180</td>" in identification
    assert "<td>Validation: dir</td><td>0.8600</td>" in identification
    assert "<td>n gallery images</td><td>6</td>" in identification
    assert "Per-probe open-set decisions: decisions.csv (in this folder)." in identification
    retrieval = _section(html_text, "Retrieval")
    assert "<td>Retrieval Recall@10</td><td>1.0000</td>" in retrieval and "<td>max r</td><td>n/a</td>" in retrieval
    training = _section(html_text, "Training curves")
    assert "29 training and 2 validation records" in training  # bad line and other kinds skipped
    assert "Last validation (step 20): accuracy 0.8200, EER 0.1800." in training
    assert "Not available" not in html_text


def test_data_is_escaped(full):
    _, _, html_text, md = full
    for text in (html_text, md):
        assert "<script>" not in text.lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;/a.jpg" in text


def test_markdown_references_only_written_files(full):
    out, paths, _, md = full
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert refs and all(ref.startswith("report_files/") and (out / ref).is_file() for ref in refs)
    assert {out / ref for ref in refs} == set(paths.figures)
    assert "(report_files/error_00.png) | 0.9000 |" in md


def test_renders_without_optional_parts(tmp_path):
    out = _make_eval_dir(tmp_path)
    (out / "report_files").mkdir()
    for stale in ("tsne.png", "error_00.png", "cmc.png"):  # as an earlier render of more parts leaves them
        (out / "report_files" / stale).write_bytes(PNG_SIGNATURE)
    doc = json.loads((out / "eval.json").read_text())
    doc["run_dir"] = None
    del doc["identification"], doc["retrieval"]
    (out / "eval.json").write_text(json.dumps(doc))
    (out / "errors.npz").unlink()
    (out / "embeddings.npz").unlink()
    paths = render_report(out, title="Second run")
    html_text = paths.html.read_text(encoding="utf-8")
    assert "<h1>Second run</h1>" in html_text
    for title in ["Training curves", "Embeddings (t-SNE)", "Error gallery", "Identification", "Retrieval"]:
        assert "Not available: " in _section(html_text, title), title
    assert "0.9733 ± 0.0120" in _section(html_text, "Metrics")
    assert sorted(p.name for p in (out / "report_files").iterdir()) == ["det.png", "roc.png", "scores.png"]
    assert sorted(p.name for p in paths.figures) == ["det.png", "roc.png", "scores.png"]


def test_renders_bare_eval_json(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps(dict(BARE, run_dir="missing/run")))
    html_text = render_report(tmp_path).html.read_text(encoding="utf-8")
    for title in SECTIONS:
        assert "Not available: " in _section(html_text, title), title
    assert "missing/run/metrics.jsonl" in _section(html_text, "Training curves")
    assert "<img" not in html_text


def test_not_an_eval_folder(tmp_path):
    with pytest.raises(ReportError, match=re.escape(str(tmp_path / "eval.json"))):
        render_report(tmp_path)
    (tmp_path / "eval.json").write_text(json.dumps({"format": "something-else/2"}))
    with pytest.raises(ReportError, match="facemetric-eval/1"):
        render_report(tmp_path)
    (tmp_path / "eval.json").write_text('{"format": "facemetric-eval/1",')
    with pytest.raises(ReportError, match="cannot be read as JSON"):
        render_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
    assert issubclass(ReportError, FacemetricError) and issubclass(ReportError, ValueError)


def test_npz_missing_key(tmp_path):
    out = _make_eval_dir(tmp_path)
    (out / "embeddings.npz").unlink()  # no t-SNE: fail fast
    np.savez(out / "errors.npz", kind=np.array(["false_accept"]), score=np.array([0.9], np.float32))
    with pytest.raises(ReportError, match=r"errors\.npz lacks the arrays \['path1', 'path2', 'image1', 'image2'\]"):
        render_report(out)


def test_read_metrics_keeps_last_record_per_step(tmp_path):
    lines = [
        {"kind": "train", "step": 2, "loss": 5.0},
        {"kind": "train", "step": 1, "loss": 9.0},
        {"kind": "val", "step": 2, "accuracy": 0.5},
        {"kind": "train", "step": 2, "loss": 4.0},
        {"kind": "train", "loss": 1.0},
        [1, 2],
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(map(json.dumps, lines)) + "\n\nnot json\n")
    train, val = read_metrics(path)
    assert [(r["step"], r["loss"]) for r in train] == [(1, 9.0), (2, 4.0)]
    assert val == [{"kind": "val", "step": 2, "accuracy": 0.5}]


def test_select_points_top_identities_and_seeded_subsample():
    ids = ["b"] * 3 + ["a"] * 3 + ["c"] * 5 + ["d"] * 1
    keep = plots.select_points(ids, max_points=100, max_identities=2, seed=0)
    assert sorted({ids[i] for i in keep}) == ["a", "c"]  # c has most; a beats b on the tie by name
    sub = plots.select_points(ids, max_points=4, max_identities=3, seed=1)
    assert len(sub) == 4 and list(sub) == sorted(sub)
    assert np.array_equal(sub, plots.select_points(ids, max_points=4, max_identities=3, seed=1))


def test_plots_edge_cases():
    assert plots.tsne_plot(np.zeros((4, 8), np.float32), ["a", "a", "b", "b"]) is None
    png = plots.roc_plot({"roc_fpr": [0.0, 0.0, 0.5, 1.0], "roc_tpr": [0.0, 0.5, 0.9, 1.0]}, {"1e-03": 0.5})
    assert png.startswith(PNG_SIGNATURE)
    assert plots.training_curves([], [{"step": 5, "accuracy": 0.9}]).startswith(PNG_SIGNATURE)
    assert plots.dir_far_plot({"fars": [0.01, 0.1], "dir": [0.5]}) is None
    assert plots.score_histograms([0.5, 0.6], [1, 1], threshold=None).startswith(PNG_SIGNATURE)


def test_error_gallery_grayscale_and_empty(tmp_path):
    doc = dict(
        BARE,
        verification=dict(VERIFICATION, threshold={"value": 0.3, "rule": "EER"}),
        notes=["pairs file had 2 unreadable lines"],
    )
    (tmp_path / "eval.json").write_text(json.dumps(doc))
    gray = np.zeros((1, 30, 30, 1), np.uint8)
    np.savez(
        tmp_path / "errors.npz",
        kind=np.array(["false_reject"]),
        score=np.array([0.1], np.float32),
        path1=np.array(["p/1.png"]),
        path2=np.array(["p/2.png"]),
        image1=gray,
        image2=gray + 255,
    )
    paths = render_report(tmp_path)
    gallery = _section(paths.html.read_text(encoding="utf-8"), "Error gallery")
    assert "Operating threshold: 0.3000 (EER)." in gallery
    assert "Worst false accepts (impostor pairs scored at or above the threshold): none." in gallery
    assert gallery.count("<img") == 1 and "Image 2: p/2.png" in gallery
    assert [p.name for p in paths.figures] == ["error_00.png"]
    assert "<dt>Note</dt><dd>pairs file had 2 unreadable lines</dd>" in paths.html.read_text(encoding="utf-8")

    empty = np.zeros((0, 0, 0, 1), np.uint8)  # what the writer stores when there are no errors
    np.savez(
        tmp_path / "errors.npz",
        kind=np.array([], str),
        score=np.array([], np.float32),
        path1=np.array([], str),
        path2=np.array([], str),
        image1=empty,
        image2=empty,
    )
    paths = render_report(tmp_path)
    assert "holds no errors" in _section(paths.html.read_text(encoding="utf-8"), "Error gallery")
    assert paths.figures == [] and not list((tmp_path / "report_files").iterdir())


def _write(folder: Path, doc: dict) -> Path:
    (folder / "eval.json").write_text(json.dumps(doc))
    return folder


def test_renamed_metric_is_refused_with_its_path(tmp_path):
    verification = dict(VERIFICATION)
    verification["aucc"] = verification.pop("auc")  # a metric renamed by the writer, not by the report
    with pytest.raises(ReportError) as info:
        render_report(_write(tmp_path, dict(BARE, verification=verification)))
    message = str(info.value)
    assert str(tmp_path / "eval.json") in message
    assert "verification.aucc: unknown field" in message and "verification.auc: missing" in message
    assert "facemetric eval --out DIR" in message
    assert not (tmp_path / "report.html").exists()


def test_mistyped_metric_is_refused_with_its_path(tmp_path):
    with pytest.raises(ReportError, match=r"verification\.auc: Input should be a valid number.*\(got 'high'\)") as info:
        render_report(_write(tmp_path, dict(BARE, verification=dict(VERIFICATION, auc="high"))))
    assert "Re-run `facemetric eval --out DIR`" in str(info.value)
    curve = {"fars": [0.1], "dir": [0.5]}  # a nested field renamed: the whole path is named
    doc = dict(BARE, identification={"open_set": {"test": {"dir_at_far": curve}}})
    with pytest.raises(ReportError, match=r"identification\.open_set\.test\.dir_at_far\.fars: unknown field"):
        render_report(_write(tmp_path, doc))
    with pytest.raises(ReportError, match=r"verification\.per_fold\[1\]: Input should be a valid number"):
        render_report(_write(tmp_path, dict(BARE, verification=dict(VERIFICATION, per_fold=[0.9, None]))))


def test_hostile_names_are_escaped(tmp_path):
    hostile = EVIL + ' "quoted" | *star* [x](y) #h'
    doc = dict(
        BARE,
        checkpoint=hostile,
        notes=[hostile],
        data={"description": hostile},
        verification=dict(VERIFICATION, threshold={"value": 0.3, "rule": hostile}),
    )
    _write(tmp_path, doc)
    image = np.zeros((1, 8, 8, 3), np.uint8)
    np.savez(
        tmp_path / "errors.npz",
        kind=np.array(["false_accept"]),
        score=np.array([0.9], np.float32),
        path1=np.array([f"{hostile}/1.png"]),
        path2=np.array(["b/2.png"]),
        image1=image,
        image2=image,
    )
    paths = render_report(tmp_path, title=EVIL)
    html_text, md = paths.html.read_text(encoding="utf-8"), paths.markdown.read_text(encoding="utf-8")
    assert "<script" not in html_text.lower() and "<script" not in md.lower()
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>" in html_text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &#34;quoted&#34; | *star* [x](y) #h"
    assert f"<dt>Checkpoint</dt><dd>{escaped}</dd>" in html_text
    assert f"Image 1: {escaped}/1.png" in _section(html_text, "Error gallery")
    assert f"Operating threshold: 0.3000 ({escaped})." in _section(html_text, "Error gallery")
    md_escaped = '&lt;script&gt;alert(1)&lt;/script&gt; "quoted" \\| \\*star\\* \\[x\\](y) \\#h'
    assert f"- **Checkpoint:** {md_escaped}\n" in md and f"- **Note:** {md_escaped}\n" in md
    assert f"| {md_escaped}/1.png |" in md


def test_templates_are_the_source_of_the_pages(tmp_path, monkeypatch):
    html_template = (TEMPLATES / "report.html.j2").read_text(encoding="utf-8")
    assert '<section id="{{ section.anchor }}">' in html_template
    (tmp_path / "a").mkdir()
    out = _write(tmp_path / "a", dict(BARE))
    html_text = render_report(out).html.read_text(encoding="utf-8")
    assert '<section id="metrics">\n<h2>Metrics</h2>' in html_text
    # the same folder rendered through edited copies of the templates shows the edits
    copies = tmp_path / "templates"
    copies.mkdir()
    (copies / "report.html.j2").write_text(html_template.replace("<section id=", '<section class="edited" id='))
    md_template = (TEMPLATES / "report.md.j2").read_text(encoding="utf-8")
    (copies / "report.md.j2").write_text(
        md_template.replace("## {{ section.title | md }}", "## Edited {{ section.title | md }}")
    )
    monkeypatch.setattr(document, "_environment", lambda: document.make_environment(FileSystemLoader(copies)))
    paths = render_report(out)
    assert '<section class="edited" id="metrics">' in paths.html.read_text(encoding="utf-8")
    assert "\n## Edited Metrics\n" in paths.markdown.read_text(encoding="utf-8")


def test_dir_at_far_lists_of_another_length_and_no_cmc(tmp_path):
    identification = {
        "closed_set": {"ranks": [], "rank1": 0.5, "rank5": 0.7, "n_identities": 3, "n_probes": 4, "template": "mean"},
        "open_set": {
            "threshold": {
                "value": 0.4,
                "target_far": 0.5,
                "achieved_far": 0.0,
                "n_impostors": 1,
                "source": "s",
                "below_resolution": True,
            },
            "test": {
                "n_known": 2,
                "n_unknown": 2,
                "dir": 0.5,
                "false_alarm_rate": 0.5,
                "rank1": 0.5,
                "dir_at_far": {
                    "far": [0.001, 0.01, 0.1],
                    "threshold": [0.7],
                    "dir": [0.5, 0.8, 0.9],
                    "achieved_far": [0.0, 0.0, 0.5],
                    "below_resolution": [True, True, False],
                    "far_resolution": 0.5,
                    "n_known": 2,
                    "n_unknown": 2,
                    "computed_on": "test",
                    "note": "compare models only",
                },
            },
            "validation": {"n_known": 1, "n_unknown": 1, "dir": None},
            "template": "mean",
            "n_gallery_identities": 3,
            "n_gallery_images": 3,
        },
        "decisions_csv": "decisions.csv",
    }
    paths = render_report(_write(tmp_path, dict(BARE, identification=identification)))
    identification_html = _section(paths.html.read_text(encoding="utf-8"), "Identification")
    assert "<tr><th>far</th><th>dir</th><th>achieved_far</th><th>below_resolution</th></tr>" in identification_html
    assert "<td>0.0010</td><td>0.5000</td><td>0.0000</td><td>yes</td>" in identification_html
    assert "threshold: [0.7]; far_resolution: 0.5000;" in identification_html
    assert "note: compare models only." in identification_html
    assert "Not available: eval.json has no identification.closed_set.ranks" in identification_html
    assert "<td>Validation: dir</td><td>n/a</td>" in identification_html
    assert "decisions.csv (listed in eval.json but not found)" in identification_html
    metrics = _section(paths.html.read_text(encoding="utf-8"), "Metrics")
    assert "so it could not be measured" in metrics
    assert [p.name for p in paths.figures] == ["dir_at_far.png"]


def test_learning_curves_put_validation_on_minutes_of_training() -> None:
    train = [{"step": 10, "seconds": 60.0}, {"step": 20, "seconds": 120.0}, {"step": 30, "seconds": 60.0}]
    # epochs end at 1, 3 and 4 minutes; a step inside an epoch is interpolated, validation time not counted
    assert plots.training_minutes(train, [10, 15, 20, 30]) == [1.0, 2.0, 3.0, 4.0]
    assert plots.training_minutes([], [10]) is None
    val = [{"step": 10, "accuracy": 0.7}, {"step": 30, "accuracy": 0.8}]
    assert plots.learning_curves({"a": (train, val), "b": ([], val)}).startswith(PNG_SIGNATURE)
    assert plots.learning_curves({}).startswith(PNG_SIGNATURE)  # an empty panel says why
