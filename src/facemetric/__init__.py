"""facemetric: train, evaluate and deploy face verification and identification models.

The public API, one import away (each name is loaded on first use, so ``import facemetric`` is cheap)::

    import facemetric

    cfg = facemetric.load_config("configs/orl.yaml", ["train.epochs=5"])
    result = facemetric.train_model(cfg)                # a run folder with checkpoints and logs
    model = facemetric.load_embedder(result.out_dir / "best.pt")   # or "model.onnx", or "dlib-resnet"
    summary, _ = facemetric.evaluate(model, pairs="pairs.txt", images="lfw/images")
    gallery = facemetric.Gallery.create("team", model)  # enrol / verify / identify
    # a hyper-parameter search: facemetric.tune_study(facemetric.TuneSettings(...)) (``facemetric tune``)
    # a course assignment: write_course_layout, head_from_checkpoint / centre_classifier + classify_folder,
    # map_unknowns (``facemetric protocol course``, ``facemetric predict classify|map``)
    # patch descriptors: build_patch_benchmark, read_hpatches, prepare_patches, evaluate_release,
    # evaluate_patch_tasks (``facemetric protocol patches``, ``prepare --patches``, ``eval --patches``)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from facemetric.core.version import VERSION

__version__ = VERSION

# public name -> module that defines it
_API = {
    "FacemetricError": "facemetric.core.errors",
    "ConfigError": "facemetric.core.errors",
    "Config": "facemetric.core.config",
    "load_config": "facemetric.core.config",
    "Embedder": "facemetric.core.embedder",
    "ImageSpec": "facemetric.core.spec",
    "load_embedder": "facemetric.embedders",
    "prepare": "facemetric.data.prepare",
    "PrepareOptions": "facemetric.data.prepare",
    "train_model": "facemetric.train.build",
    "build_run": "facemetric.train.build",
    "Trainer": "facemetric.train.trainer",
    "Callback": "facemetric.train.callbacks",
    "evaluate": "facemetric.eval.suite.files",
    "Gallery": "facemetric.gallery.service",
    "Photo": "facemetric.gallery.photos",
    "register_model": "facemetric.models",
    "register_loss": "facemetric.losses",
    "register_miner": "facemetric.miners",
    "register_optimizer": "facemetric.optim",
    "register_scheduler": "facemetric.optim",
    "register_callback": "facemetric.train.callbacks",
    "tune_study": "facemetric.tune.study",
    "TuneSettings": "facemetric.tune.study",
    "write_course_layout": "facemetric.eval.course.layout",
    "map_unknowns": "facemetric.eval.course.mapping",
    "head_from_checkpoint": "facemetric.eval.course.classifier",
    "centre_classifier": "facemetric.eval.course.classifier",
    "classify_folder": "facemetric.eval.course.classifier",
    "build_patch_benchmark": "facemetric.eval.patches.benchmark",
    "read_hpatches": "facemetric.data.hpatches",
    "prepare_patches": "facemetric.data.hpatches",
    "evaluate_release": "facemetric.eval.patches.run",
    "evaluate_patch_tasks": "facemetric.eval.patches.tasks",
}
# public name -> the module's own name, where they differ ("train" is the facemetric.train package)
_RENAMED = {"evaluate": "evaluate_files", "train_model": "train", "tune_study": "tune"}

__all__ = [  # the same names as _API (a static list, so linters and IDEs see them)
    "Callback",
    "Config",
    "ConfigError",
    "Embedder",
    "FacemetricError",
    "Gallery",
    "ImageSpec",
    "Photo",
    "PrepareOptions",
    "Trainer",
    "TuneSettings",
    "__version__",
    "build_patch_benchmark",
    "build_run",
    "centre_classifier",
    "classify_folder",
    "evaluate",
    "evaluate_patch_tasks",
    "evaluate_release",
    "head_from_checkpoint",
    "load_config",
    "load_embedder",
    "map_unknowns",
    "prepare",
    "prepare_patches",
    "read_hpatches",
    "register_callback",
    "register_loss",
    "register_miner",
    "register_model",
    "register_optimizer",
    "register_scheduler",
    "train_model",
    "tune_study",
    "write_course_layout",
]

if TYPE_CHECKING:
    from facemetric.core.config import Config, load_config
    from facemetric.core.embedder import Embedder
    from facemetric.core.errors import ConfigError, FacemetricError
    from facemetric.core.spec import ImageSpec
    from facemetric.data.hpatches import prepare_patches, read_hpatches
    from facemetric.data.prepare import PrepareOptions, prepare
    from facemetric.embedders import load_embedder
    from facemetric.eval.course.classifier import centre_classifier, classify_folder, head_from_checkpoint
    from facemetric.eval.course.layout import write_course_layout
    from facemetric.eval.course.mapping import map_unknowns
    from facemetric.eval.patches.benchmark import build_patch_benchmark
    from facemetric.eval.patches.run import evaluate_release
    from facemetric.eval.patches.tasks import evaluate_patch_tasks
    from facemetric.eval.suite.files import evaluate_files as evaluate
    from facemetric.gallery.photos import Photo
    from facemetric.gallery.service import Gallery
    from facemetric.losses import register_loss
    from facemetric.miners import register_miner
    from facemetric.models import register_model
    from facemetric.optim import register_optimizer, register_scheduler
    from facemetric.train.build import build_run
    from facemetric.train.build import train as train_model
    from facemetric.train.callbacks import Callback, register_callback
    from facemetric.train.trainer import Trainer
    from facemetric.tune.study import TuneSettings
    from facemetric.tune.study import tune as tune_study


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'facemetric' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
