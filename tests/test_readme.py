"""The Python blocks of the README and docs/ run, and the README's first lines give the two commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


DOCS = [README, *sorted((README.parent / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_python_blocks_run(doc: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks, f"{doc.name} has no Python example"
    for block in blocks:
        exec(compile(block, str(doc), "exec"), {})


def test_first_lines_give_demo_and_test_commands() -> None:
    head = README.read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in head) and any(line.startswith("make test") for line in head)
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
