"""`facemetric eval --no-face`: photos in which the detector finds no face never stop an evaluation by accident.

Real photos: LFW (deep-funneled) people, and ORL photos in which dlib's HOG detector finds no face
(s2/6, s2/7 and s33/4: a face turned away or cut tight), laid out as LFW people so an LFW-format
pairs file names them; plus a generated blank "photo" (nothing to find) and a corrupt file.
Evaluated with the pretrained dlib-resnet run with dlib's HOG detector (``detector=hog``; its default, YuNet,
finds these faces).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")

from facemetric.core.errors import MissingDependencyError  # noqa: E402
from facemetric.eval.errors import EvaluationError  # noqa: E402
from facemetric.eval.suite.document import EvalDocument  # noqa: E402
from facemetric.eval.suite.files import evaluate_files, evaluate_pairs_file  # noqa: E402

LFW_PHOTOS = {
    "Aaron_Peirsol": (1, 2, 3),
    "Aaron_Sorkin": (1, 2),
    "Abdel_Nasser_Assidi": (1, 2),
    "Abdoulaye_Wade": (4,),
}
ORL_PHOTOS = {"Orl_S2": ("s2", (1, 6, 7)), "Orl_S33": ("s33", (1, 2, 4))}
NO_FACE = ["Orl_S2/Orl_S2_0006.jpg", "Orl_S33/Orl_S33_0004.jpg", "Orl_S2/Orl_S2_0007.jpg"]  # as the pairs name them
# "folds 2, 3 pairs per class": each fold 3 matched then 3 mismatched lines (file lines 2-13)
PAIRS = """2\t3
Aaron_Peirsol\t1\t2
Orl_S2\t1\t6
Aaron_Sorkin\t1\t2
Aaron_Peirsol\t3\tOrl_S33\t4
Aaron_Sorkin\t2\tAbdel_Nasser_Assidi\t1
Orl_S2\t1\tAbdoulaye_Wade\t4
Abdel_Nasser_Assidi\t1\t2
Orl_S33\t1\t2
Orl_S2\t6\t7
Aaron_Peirsol\t1\tOrl_S33\t1
Abdoulaye_Wade\t4\tOrl_S2\t7
Abdel_Nasser_Assidi\t2\tAaron_Sorkin\t1
"""
AFFECTED = [(1, 3), (3, 5), (8, 10), (10, 12)]  # (pair index, pairs file line) with a photo without a face
AFFECTED_PAIRS = [
    ("Orl_S2/Orl_S2_0001.jpg", "Orl_S2/Orl_S2_0006.jpg"),
    ("Aaron_Peirsol/Aaron_Peirsol_0003.jpg", "Orl_S33/Orl_S33_0004.jpg"),
    ("Orl_S2/Orl_S2_0006.jpg", "Orl_S2/Orl_S2_0007.jpg"),
    ("Abdoulaye_Wade/Abdoulaye_Wade_0004.jpg", "Orl_S2/Orl_S2_0007.jpg"),
]


@pytest.fixture(scope="module")
def embedder():
    from facemetric.embedders import load_embedder

    try:
        return load_embedder("dlib-resnet?detector=hog")
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def lfw_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LFW layout: real LFW photos, ORL photos (some without a face for dlib) as two more people, a pairs file."""
    lfw, orl = shared_data / "lfw-devtrain" / "images", shared_data / "orl"
    if not (lfw / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg").is_file() or not (orl / "s2" / "1.pgm").is_file():
        pytest.skip("LFW dev-train or ORL not found under the shared data")
    root = tmp_path_factory.mktemp("no_face")
    images = root / "images"
    for name, shots in LFW_PHOTOS.items():
        (images / name).mkdir(parents=True)
        for k in shots:
            (images / name / f"{name}_{k:04d}.jpg").symlink_to(lfw / name / f"{name}_{k:04d}.jpg")
    for name, (person, shots) in ORL_PHOTOS.items():
        (images / name).mkdir(parents=True)
        for k in shots:  # decoded by content, whatever the extension
            (images / name / f"{name}_{k:04d}.jpg").symlink_to(orl / person / f"{k}.pgm")
    (root / "pairs.txt").write_text(PAIRS)
    return root


def _evaluate(embedder, folder: Path, policy: str, **kwargs):
    return evaluate_files(
        embedder, pairs=folder / "pairs.txt", images=folder / "images", no_face=policy, progress=False, **kwargs
    )


def test_fallback_scores_every_pair_and_names_the_photos_and_pairs(embedder, lfw_folder: Path) -> None:
    result, data = _evaluate(embedder, lfw_folder, "fallback")
    v, report = result.summary.verification, result.summary.no_face
    assert v is not None and report is not None and result.scores is not None
    assert v.num_positive + v.num_negative == 12 and data["images"] == 14  # the protocol is complete
    assert report.policy == "fallback" and report.n_photos == 3 and report.n_pairs == 4
    assert [p.path for p in report.photos] == NO_FACE
    assert all(not p.detection.found and p.detection.backend.endswith("/fallback") for p in report.photos)
    assert [p.detection.image_size for p in report.photos] == [[92, 112]] * 3  # ORL's photo size
    assert "no face found" in report.photos[0].reason
    assert [(p.index, p.line) for p in report.pairs] == AFFECTED
    assert [(p.path1, p.path2) for p in report.pairs] == AFFECTED_PAIRS
    assert [p.same for p in report.pairs] == [True, False, True, False]
    scores = result.scores["scores"]
    assert [p.score for p in report.pairs] == pytest.approx(scores[[k for k, _ in AFFECTED]].tolist())
    assert np.all(scores > -0.5)  # real embeddings of the central crops, not a rejection score
    assert report.summary() == "3 photos had no detectable face; 4 pairs affected (policy: fallback)"
    # eval.json's no_face reads back through the typed results, the brief summary shows it
    from facemetric.eval.suite.folder import brief_summary, eval_document

    doc = eval_document(result, {"checkpoint": "dlib-resnet", "embedding_dim": 128, "data": data})
    again = EvalDocument.model_validate_json(doc.model_dump_json())
    assert again.no_face == report
    assert json.loads(brief_summary(doc))["no_face"]["n_pairs"] == 4


def test_reject_scores_the_affected_pairs_as_non_matches(embedder, lfw_folder: Path) -> None:
    result, _ = _evaluate(embedder, lfw_folder, "reject")
    v, report = result.summary.verification, result.summary.no_face
    assert v is not None and report is not None and result.scores is not None
    assert v.num_positive + v.num_negative == 12  # every pair is still counted
    assert report.policy == "reject" and [p.path for p in report.photos] == NO_FACE
    assert all(not p.detection.found and "fallback" not in p.detection.backend for p in report.photos)
    scores = result.scores["scores"]
    affected = [k for k, _ in AFFECTED]
    assert scores[affected].tolist() == [-1.0] * 4 and [p.score for p in report.pairs] == [-1.0] * 4
    others = np.setdiff1d(np.arange(12), affected)
    assert np.all(scores[others] > -1.0)
    # a non-match at every threshold used: the two affected genuine pairs are false rejects
    assert v.threshold is not None and v.threshold.value > -1.0
    assert v.errors is not None and v.errors.false_rejects >= 2
    assert "-1" in report.rule and "non-match" in report.rule


def test_fail_stops_naming_the_photos(embedder, lfw_folder: Path) -> None:
    with pytest.raises(EvaluationError, match=r"3 photo\(s\) .* no detectable face") as caught:
        _evaluate(embedder, lfw_folder, "fail")
    assert all(str(lfw_folder / "images" / p) in str(caught.value) for p in NO_FACE)


def test_an_unreadable_file_is_an_error_under_every_policy(embedder, lfw_folder: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("Orl_S33", "Aaron_Sorkin"):
        (images / name).symlink_to((lfw_folder / "images" / name).resolve(), target_is_directory=True)
    (images / "Broken_File").mkdir()
    (images / "Broken_File" / "Broken_File_0001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nOrl_S33\t1\t4\nBroken_File\t1\tAaron_Sorkin\t1\n")
    for policy in ("fallback", "reject"):
        with pytest.raises(EvaluationError, match="cannot be read") as caught:
            evaluate_files(embedder, pairs=pairs, images=images, no_face=policy, progress=False)
        message = str(caught.value)
        assert "Broken_File_0001.jpg" in message and "1 image(s)" in message
        assert "Orl_S33_0004" not in message  # the photo without a face is not an unreadable file


def test_open_set_reject_turns_probes_away_and_leaves_gallery_photos_out(
    embedder, lfw_folder: Path, tmp_path: Path
) -> None:
    """Gallery: s2's only photo has no face (s2 is not enrolled); a known test probe (s33/4) and an unknown one
    (a blank image) have no face: rejected. Fallback keeps them all, with the central crop."""
    orl = lfw_folder / "images"
    Image.new("RGB", (120, 140), (128, 128, 128)).save(tmp_path / "blank.png")  # nothing to find
    people = {"Orl_S2": "s2", "Orl_S33": "s33"}
    rows = [
        ("Orl_S2/Orl_S2_0006.jpg", "s2", "gallery"),  # no face: s2 cannot be enrolled under reject
        ("Orl_S33/Orl_S33_0001.jpg", "s33", "gallery"),
        ("Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "peirsol", "gallery"),
        ("Aaron_Sorkin/Aaron_Sorkin_0001.jpg", "sorkin", "gallery"),
        ("Aaron_Peirsol/Aaron_Peirsol_0002.jpg", "peirsol", "val_known"),
        ("Orl_S2/Orl_S2_0007.jpg", "s2", "val_known"),  # no face: left out of calibration under reject
        ("Abdel_Nasser_Assidi/Abdel_Nasser_Assidi_0001.jpg", "abdel", "val_unknown"),
        ("Abdoulaye_Wade/Abdoulaye_Wade_0004.jpg", "wade", "val_unknown"),
        ("Aaron_Peirsol/Aaron_Peirsol_0003.jpg", "peirsol", "test_known"),
        ("Aaron_Sorkin/Aaron_Sorkin_0002.jpg", "sorkin", "test_known"),
        ("Orl_S33/Orl_S33_0004.jpg", "s33", "test_known"),  # no face: a known probe turned away
        ("Orl_S2/Orl_S2_0001.jpg", "s2", "test_known"),  # has a face, but s2 is not enrolled under reject
        ("Abdel_Nasser_Assidi/Abdel_Nasser_Assidi_0002.jpg", "abdel2", "test_unknown"),
        ("Orl_S33/Orl_S33_0002.jpg", "stranger", "test_unknown"),
        (str(tmp_path / "blank.png"), "blank", "test_unknown"),  # no face: an unknown probe turned away
    ]
    assert set(people) <= {r[0].split("/")[0] for r in rows}
    split = tmp_path / "split.csv"
    with open(split, "w", newline="") as f:
        csv.writer(f).writerows([("path", "identity", "subset"), *rows])

    rejected, _ = evaluate_files(embedder, open_set=split, images=orl, no_face="reject", progress=False)
    report, ident = rejected.summary.no_face, rejected.summary.identification
    assert report is not None and ident is not None and rejected.decisions is not None
    assert report.n_photos == 4 and report.n_pairs == 0
    assert report.open_set == {"gallery": 1, "test_known": 1, "test_unknown": 1, "val_known": 1}
    assert report.not_enrolled == ["s2"]
    assert ident.open_set.n_gallery_images == 3 and ident.open_set.n_gallery_identities == 3
    test = ident.open_set.test
    # known = enrolled people: peirsol, sorkin, s33 (turned away); s2/1 is an unknown person to the system
    assert (test.n_known, test.n_unknown) == (3, 4)
    assert test.dir <= 2 / 3 and test.rank1 <= 2 / 3  # the turned-away known probe is never identified
    assert ident.open_set.validation.n_known == 1  # s2/7 left out of calibration
    assert ident.closed_set.n_probes == 3 and ident.closed_set.ranks[-1] <= 2 / 3  # a miss at every rank
    decisions = dict(zip(*rejected.decisions))
    assert decisions["Orl_S33/Orl_S33_0004.jpg"] == "no correspondence"
    assert decisions[str(tmp_path / "blank.png")] == "no correspondence"
    assert report.summary() == (
        "4 photos had no detectable face; open set: 1 gallery, 1 test_known, 1 test_unknown, 1 val_known; "
        "1 identity not enrolled (policy: reject)"
    )

    fallback, _ = evaluate_files(embedder, open_set=split, images=orl, no_face="fallback", progress=False)
    assert fallback.summary.no_face is not None and fallback.summary.identification is not None
    assert fallback.summary.no_face.not_enrolled == []
    full = fallback.summary.identification.open_set
    assert full.n_gallery_images == 4 and (full.test.n_known, full.test.n_unknown) == (4, 3)


def test_retrieval_dataset_follows_the_policy(embedder, shared_data: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for person, shots in {"s2": (1, 6, 7), "s33": (1, 2, 4), "s5": (1, 2)}.items():
        (photos / person).mkdir(parents=True)
        for k in shots:
            (photos / person / f"{k}.pgm").symlink_to(shared_data / "orl" / person / f"{k}.pgm")
    fallback, data = evaluate_files(embedder, retrieval=photos, no_face="fallback", progress=False)
    assert data["retrieval_images"] == 8 and fallback.summary.retrieval is not None
    ret = fallback.summary.no_face.retrieval if fallback.summary.no_face else None
    assert ret is not None and (ret.n_photos, ret.left_out) == (3, 0)
    listed = sorted(Path(p.path).relative_to(photos).as_posix() for p in ret.photos)
    assert listed == ["s2/6.pgm", "s2/7.pgm", "s33/4.pgm"]
    rejected, data = evaluate_files(embedder, retrieval=photos, no_face="reject", progress=False)
    assert data["retrieval_images"] == 5 and rejected.summary.retrieval is not None
    assert rejected.summary.retrieval.num_queries == 5
    assert rejected.summary.no_face is not None
    assert rejected.summary.no_face.summary() == (
        "3 photos of the retrieval dataset had no detectable face (3 left out) (policy: reject)"
    )
    with pytest.raises(EvaluationError, match="s33/4.pgm"):
        evaluate_files(embedder, retrieval=photos, no_face="fail", progress=False)


def test_cli_option_report_and_pairs_file_summary(
    embedder, lfw_folder: Path, tmp_path: Path, capsys, caplog, monkeypatch
) -> None:
    import facemetric.embedders
    from facemetric.cli import main
    from facemetric.report import render_report

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-face {fallback,reject,fail}" in text and "fallback (default)" in text
    assert "reject: turn it away" in text and "fail: stop the evaluation" in text
    monkeypatch.setattr(facemetric.embedders, "load_embedder", lambda name: embedder)  # loaded once per module
    out = tmp_path / "eval"
    code = main(
        [
            "-q",
            "eval",
            "--model",
            "dlib-resnet?detector=hog",
            "--pairs",
            str(lfw_folder / "pairs.txt"),
            "--data",
            str(lfw_folder / "images"),
            "--no-face",
            "reject",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0
    summary = json.loads(printed.out)["no_face"]
    assert summary["policy"] == "reject" and summary["n_photos"] == 3 and summary["n_pairs"] == 4
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("3 photos had no detectable face; 4 pairs affected (policy: reject)") for m in warned)
    # every photo dlib found a face in has its detection record, head pose included, by its shown path
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert len(records) == 14 - 3 and not {r["path"] for r in records} & set(NO_FACE)
    assert all(r["found"] and r["backend"] == "dlib-resnet" and len(r["landmarks"]) == 5 for r in records)
    assert all(set(r["pose"]) == {"yaw", "pitch", "roll"} and abs(r["pose"]["yaw"]) < 45 for r in records)
    paths = render_report(out)
    md = paths.markdown.read_text()
    assert "## Photos without a detectable face" in md
    assert "3 photos had no detectable face; 4 pairs affected (policy: reject)" in md
    assert "Orl\\_S33\\_0004.jpg" in md and "Photos without a face" in paths.html.read_text()
    brief = evaluate_pairs_file(embedder, lfw_folder / "pairs.txt", lfw_folder / "images", progress=False).model_dump()
    assert brief["no_face"] == {"policy": "fallback", "photos": 3, "pairs": 4} and brief["num_pairs"] == 12
