"""The layers of docs/architecture.md hold: no module imports a higher layer, and no two packages import
each other (directly or round a longer cycle). Every ``import`` statement counts, also inside functions
and ``TYPE_CHECKING`` blocks: a lazy import is still a dependency."""

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


def imports_of(source: str, module: str) -> set[str]:
    """The facemetric modules ``source`` (the text of ``module``) imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
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
