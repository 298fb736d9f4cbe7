"""Every sub-command speaks the grammar of docs/cli.md: the test walks every parser and reads the tables there.

A concept (model, dataset, outputs, false-accept rate, ...) has one spelling, one meaning and one default; the
table names the commands that use it, so a command that adds one without the docs (or spells it another way)
fails here."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from facemetric.cli import build_parser

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
SUBCOMMAND_DESTS = {"command", "action", "task", "protocol"}


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(``"gallery init"``, its parser) for every command and sub-command."""
    if path:
        yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction))
    ]


def table(heading: str) -> list[list[str]]:
    """The rows of the first markdown table after ``heading`` in docs/cli.md, cells stripped."""
    text = DOC.read_text(encoding="utf-8").split(heading, 1)[1]
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            if not set("".join(cells)) <= set("- "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # the header row


def grammar() -> list[dict]:
    """One entry per concept row: its option strings, dest, documented default and commands."""
    out = []
    for concept, spelling, _meaning, default, commands in table("## The grammar"):
        value = re.match(r"^`([^`]+)`", default)  # a value for every command; prose: each command's own
        out.append(
            {
                "concept": concept,
                "options": re.findall(r"(?<![\w-])-{1,2}[a-z][\w-]*", spelling),
                "default": value.group(1) if value else None,
                "exceptions": dict(re.findall(r";\s*`([^`]+)`:\s*`([^`]+)`", default)),
                "commands": {c.strip() for c in commands.split(",")},
            }
        )
    return out


def same_value(given: object, documented: str) -> bool:
    """An argparse default against the text of docs/cli.md (``0.01`` and ``1e-2`` are the same)."""
    try:
        return float(given) == float(documented)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(given) == documented


COMMANDS = dict(walk(build_parser()))
GRAMMAR = grammar()


def test_the_tables_were_read() -> None:
    assert {g["concept"] for g in GRAMMAR} >= {"model", "dataset", "folder output", "file output", "false-accept rate"}
    model = next(g for g in GRAMMAR if g["concept"] == "model")
    assert model["options"] == ["--model"] and "eval" in model["commands"]
    assert next(g for g in GRAMMAR if g["concept"] == "file output")["options"] == ["-o", "--output"]


@pytest.mark.parametrize("concept", GRAMMAR, ids=lambda g: g["concept"])
def test_one_spelling_and_default_per_concept(concept: dict) -> None:
    # the concept's name inside the programs: the dest of the arguments spelled as documented
    dests = {a.dest for p in COMMANDS.values() for a in arguments(p) if set(a.option_strings) & set(concept["options"])}
    assert len(dests) == 1, f"{concept['options']} means {sorted(dests)} in different commands"
    using = set()
    for name, parser in COMMANDS.items():
        for action in arguments(parser):
            spelled = set(action.option_strings) & set(concept["options"])
            if action.dest not in dests and not spelled:
                continue
            where = f"facemetric {name}: {'/'.join(action.option_strings) or action.dest}"
            assert action.option_strings == concept["options"], f"{where} must be spelled {concept['options']}"
            documented = concept["exceptions"].get(name, concept["default"])
            if documented is not None and action.default not in (None, argparse.SUPPRESS):
                assert same_value(action.default, documented), (
                    f"{where}: default {action.default!r}, docs/cli.md says {documented}"
                )
            using.add(name)
    assert using == concept["commands"], (
        f"{concept['concept']}: used by {sorted(using)}, docs/cli.md lists {sorted(concept['commands'])}"
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_follows_the_rules(name: str) -> None:
    parser = COMMANDS[name]
    dests = {a.dest for a in arguments(parser)}
    assert not {"out", "output"} <= dests, f"facemetric {name}: a folder output (--out) and a file output (-o) at once"
    documented = {row[0]: row[1].split() for row in table("## Positional operands")}
    positionals = [a.dest.upper() for a in arguments(parser) if not a.option_strings]
    assert positionals == documented.get(name, []), (
        f"facemetric {name}: positional operands {positionals}, docs/cli.md says {documented.get(name, [])}"
    )
    for action in arguments(parser):
        assert action.help, f"facemetric {name}: {'/'.join(action.option_strings) or action.dest} has no help"
    old = {"--checkpoint", "--embedder", "--images", "--target-fmr", "--report", "--onnx", "--study", "--split"}
    spelled = {o for a in arguments(parser) for o in a.option_strings}
    assert not spelled & old, f"facemetric {name}: {sorted(spelled & old)} are spelled otherwise now (docs/cli.md)"


def test_a_stray_spelling_is_caught() -> None:
    """The check above fails for a command that spells the model another way."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", "--checkpoint", dest="model", help="x")
    COMMANDS["stray"] = parser
    try:
        with pytest.raises(AssertionError, match="stray: --model/--checkpoint must be spelled"):
            test_one_spelling_and_default_per_concept(next(g for g in GRAMMAR if g["concept"] == "model"))
    finally:
        del COMMANDS["stray"]


def test_documented_commands_exist() -> None:
    named = {c for g in GRAMMAR for c in g["commands"]} | {row[0] for row in table("## Positional operands")}
    assert named <= set(COMMANDS), sorted(named - set(COMMANDS))
