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


def _anchor(heading: str) -> str:
    """GitHub's id of a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_links_reach_their_files_and_headings(doc: Path) -> None:
    """Every relative link of the README and docs/ names a file that exists, and a heading of it after ``#``."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https://, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
            if anchor not in {_anchor(h) for h in headings}:
                broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, f"{doc.name}: " + "; ".join(broken)
