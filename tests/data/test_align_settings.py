"""A cache cut with non-default detector settings says so in its spec (``dlib-chip?detector=yunet``), so a model
trained on it cuts photos the same way at inference; default settings keep the plain name."""

from __future__ import annotations

from pathlib import Path

import pytest

from facemetric.core.spec import ImageSpec
from facemetric.data.align import aligner_for
from facemetric.data.prepared import align_with_settings


def test_the_align_string_carries_the_settings_that_differ_from_the_defaults() -> None:
    opts = {"align_options": {"detector": "yunet", "upsample": 1, "pad": 0.25}}  # upsample, pad: the defaults
    assert align_with_settings("dlib-chip", opts) == "dlib-chip?detector=yunet"
    assert align_with_settings("dlib-chip", {"align_options": {"detector": "hog"}}) == "dlib-chip"
    assert align_with_settings("dlib", {"align_options": {"max_upsample": 2, "detector": "cnn"}}) == (
        "dlib?detector=cnn&max_upsample=2"
    )
    spec = ImageSpec(112, 112, 3, align="dlib?detector=cnn&max_upsample=2")
    assert spec.align_name == "dlib" and spec.align_options == {"detector": "cnn", "max_upsample": 2}
    assert ImageSpec(align="yunet").align_options == {}


def test_a_model_of_such_a_cache_cuts_photos_with_the_same_detector(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    pytest.importorskip("cv2")
    from facemetric.core.errors import MissingDependencyError
    from facemetric.core.weight_files import YUNET
    from facemetric.data.prepare import PrepareOptions, prepare
    from facemetric.data.prepared import prepared_spec

    try:
        YUNET.locate()
    except MissingDependencyError as exc:
        pytest.skip(str(exc))
    photos = tmp_path / "photos"
    for person in ("s1", "s2"):
        (photos / person).mkdir(parents=True)
        for k in (1, 2):
            (photos / person / f"{k}.pgm").write_bytes((shared_data / "orl" / person / f"{k}.pgm").read_bytes())
    options = PrepareOptions(size=112, align="dlib-chip", align_options={"detector": "yunet"})
    prepare(photos, tmp_path / "cache", options, progress=False)
    spec = prepared_spec(tmp_path / "cache")
    assert spec.align == "dlib-chip?detector=yunet"
    aligner = aligner_for(spec)
    assert type(aligner).__name__ == "DlibChipAligner" and aligner.detector == "yunet" and aligner.size == 112
