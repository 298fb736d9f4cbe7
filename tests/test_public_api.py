"""The curated public API: every name of ``facemetric.__all__`` resolves to what it says, also after the
packages it lives in have been imported (a name must not be shadowed by a sub-package)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import facemetric


def test_all_names_resolve_to_functions_and_classes() -> None:
    import facemetric.eval.suite.files
    import facemetric.train.build  # noqa: F401  (the facemetric.train package is now an attribute too)

    assert sorted(facemetric.__all__) == sorted(["__version__", *facemetric._API])
    for name in facemetric.__all__:
        value = getattr(facemetric, name)
        assert not inspect.ismodule(value), f"facemetric.{name} is a module, not the API object"
    assert facemetric.train_model is facemetric.train.build.train
    assert facemetric.evaluate is facemetric.eval.suite.files.evaluate_files
    assert issubclass(facemetric.ConfigError, facemetric.FacemetricError)


def test_import_is_cheap() -> None:
    """``import facemetric`` loads no torch: the API is loaded name by name."""
    code = "import sys, facemetric; print('torch' in sys.modules, facemetric.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", facemetric.__version__]
