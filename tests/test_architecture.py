"""The layers of docs/architecture.md hold: no module imports a higher layer, no two packages import each
other (directly or round a longer cycle), and no two files do. Every ``import`` statement counts, also
inside functions: a lazy import is still a dependency. ``TYPE_CHECKING`` blocks count for the layers, and
only there may two files name each other (for type hints, never at run time)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "facemetric"

# package (first name under facemetric) -> layer; docs/architecture.md draws the same table
LAYERS = {
    "core": 1,
    "ops": 2,
    "models": 2,
    "losses": 2,
    "miners": 2,
    "data": 2,
    "embedders": 2,
    "export": 2,
    "optim": 2,
    "train": 3,
    "eval": 3,
    "gallery": 3,
    "report": 4,
    "tune": 4,
    "demo": 4,
    "cli": 5,
    "serve": 5,
    "__main__": 5,
    "__init__": 5,  # the top-level __init__ is the public API
}


def package_of(module: str) -> str:
    """``facemetric.eval.runner`` -> ``eval``; the package root itself is ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """The ids of every node inside an ``if TYPE_CHECKING:`` block."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside |= {id(n) for statement in node.body for n in ast.walk(statement)}
    return inside


def imports_of(source: str, module: str, type_checking: bool = True) -> set[str]:
    """The facemetric modules ``source`` (the text of ``module``) imports, anywhere in it (without the
    ``TYPE_CHECKING`` blocks when ``type_checking`` is false)."""
    found = set()
    tree = ast.parse(source)
    skipped = set() if type_checking else _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("facemetric")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the module's package
                base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("facemetric"):
                found.add(name)
                # "from facemetric.pkg import sub": sub may be a module of that package
                found |= {f"{name}.{a.name}" for a in node.names if name != "facemetric"}
    return found


def violations(sources: dict[str, str]) -> list[str]:
    """Every upward import and every import cycle between packages, as readable lines."""
    problems, edges = [], {}
    for module, source in sorted(sources.items()):
        here = package_of(module)
        if here not in LAYERS:
            problems.append(f"{module}: package {here!r} has no layer; add it to docs/architecture.md and LAYERS")
            continue
        for target in sorted(imports_of(source, module)):
            there = package_of(target)
            if there == "__init__" and target == "facemetric":
                there = "__init__"
            if there not in LAYERS:
                continue  # a name imported from a module, not a package
            if LAYERS[there] > LAYERS[here]:
                problems.append(
                    f"{module} (layer {LAYERS[here]}, {here}) imports {target} (layer {LAYERS[there]}, {there}): upward"
                )
            if there != here:
                edges.setdefault(here, set()).add(there)
    problems += [f"import cycle between packages: {' -> '.join(c)}" for c in _cycles(edges)]
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of packages (Tarjan-free: a DFS that reports back edges)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def file_cycles(sources: dict[str, str]) -> list[list[str]]:
    """The import circles between files (``TYPE_CHECKING`` aside): each strongly connected group of modules,
    found by Tarjan's algorithm. ``from facemetric.pkg import name`` depends on ``pkg.name`` when that is a
    module, else on ``pkg`` itself."""
    edges: dict[str, set[str]] = {}
    for module, source in sources.items():
        targets = set()
        for name in imports_of(source, module, type_checking=False):
            while name not in sources and "." in name:
                name = name.rsplit(".", 1)[0]  # a name defined in a module: depend on the module
            if name in sources and name != module:
                targets.add(name)
        edges[module] = targets
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return groups


def package_sources() -> dict[str, str]:
    return {module_name(p, SRC): p.read_text(encoding="utf-8") for p in SRC.rglob("*.py")}


def test_no_upward_import_and_no_cycle() -> None:
    problems = violations(package_sources())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "module, line, expected",
    [
        # core importing the trainer: the bottom layer reaching up
        (
            "facemetric.core.bad",
            "from facemetric.train.build import train",
            "layer 1, core) imports facemetric.train.build",
        ),
        # a component importing a service, inside a function: still a dependency
        (
            "facemetric.losses.bad",
            "def f():\n    from facemetric.eval.runner import evaluate_files",
            "layer 2, losses) imports facemetric.eval.runner (layer 3, eval): upward",
        ),
        # two services importing each other: eval -> train closes a cycle with train -> eval
        ("facemetric.eval.bad", "import facemetric.train.trainer", "import cycle between packages"),
    ],
)
def test_a_deliberate_upward_import_is_caught(module: str, line: str, expected: str) -> None:
    sources = package_sources()
    assert not violations(sources)
    sources[module] = line + "\n"
    problems = violations(sources)
    assert any(expected in p for p in problems), problems


def test_no_import_circle_between_files() -> None:
    circles = file_cycles(package_sources())
    assert not circles, "import circles between files: " + "; ".join(" <-> ".join(c) for c in circles)


def test_a_deliberate_file_circle_is_caught_and_type_checking_is_not() -> None:
    sources = package_sources()
    assert not file_cycles(sources)
    # the trainer importing a module that imports the trainer back (lazily, in a function): a circle
    sources["facemetric.train.bad"] = "def f():\n    from facemetric.train.trainer import Trainer\n"
    sources["facemetric.train.trainer"] += "\nfrom facemetric.train.bad import f\n"
    assert file_cycles(sources) == [["facemetric.train.bad", "facemetric.train.trainer"]]
    # the same back-import for type hints only is allowed
    sources["facemetric.train.bad"] = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from facemetric.train.trainer import Trainer\n"
    )
    assert not file_cycles(sources)
