"""Every command refuses a bad path in one line: the test walks every parser (as tests/test_cli_grammar.py does)
and runs the real ``facemetric`` console script with each path argument replaced by something wrong.

Every argument of every command is listed below, as a path of some kind (:data:`PATHS`) or not (:data:`NOT_PATHS`),
so a new argument fails :func:`test_every_argument_is_listed` until it is given its cases. For each path argument
the cases of its kind (:data:`CASES`) run: a path that does not exist, an empty folder, a file where a folder is
expected and a folder where a file is expected, a file or folder that cannot be read (when the tests run as root,
the command runs without the capabilities that let root read anything), a text file named like an image. Each
must end with exit status 2 and exactly one line on stderr that names the argument or the path, and write
nothing: the scratch folder of the case (where every output of the command line points) holds what it held before.
Progress bars are drawn on a terminal only, so a refused command's stderr here is its one line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_cli_grammar import COMMANDS, arguments

# (command, argument) -> kind: what the argument names
PATHS: dict[tuple[str, str], str] = {
    ("config", "config"): "text",
    ("demo", "--data"): "dataset",
    ("demo", "--out"): "out-dir",
    ("embed", "--model"): "model",
    ("embed", "--data"): "dataset",
    ("embed", "--output"): "out-file",
    ("eval", "--model"): "model",
    ("eval", "--data"): "dataset",
    ("eval", "--pairs"): "text",
    ("eval", "--open-set"): "text",
    ("eval", "--splits-json"): "text",
    ("eval", "--patch-tasks"): "folder",
    ("eval", "--out"): "out-dir",
    ("export", "--model"): "model",
    ("export", "--output"): "out-file",
    ("gallery", "--gallery"): "gallery",
    ("gallery", "--model"): "model",
    ("gallery calibrate", "--data"): "dataset",
    ("gallery enroll", "images"): "image",
    ("gallery export", "--output"): "out-file",
    ("gallery identify", "image"): "image",
    ("gallery import", "--data"): "dataset",
    ("gallery init", "--model"): "model",
    ("gallery reembed", "--model"): "model",
    ("gallery reembed", "--out"): "out-dir",
    ("gallery verify", "image"): "image",
    ("predict classify", "--model"): "model",
    ("predict classify", "--test"): "folder",
    ("predict classify", "--output"): "out-file",
    ("predict classify", "--known"): "dataset",
    ("predict classify", "--dev"): "folder",
    ("predict map", "--model"): "model",
    ("predict map", "--known"): "dataset",
    ("predict map", "--dev-csv"): "text",
    ("predict map", "--dev"): "folder",
    ("predict map", "--test"): "folder",
    ("predict map", "--output"): "out-file",
    ("prepare", "--data"): "dataset",
    ("prepare", "--out"): "out-dir",
    ("prepare", "--splits-json"): "text",
    ("protocol course", "--data"): "dataset",
    ("protocol course", "--out"): "out-dir",
    ("protocol open-set", "--data"): "dataset",
    ("protocol open-set", "--output"): "out-file",
    ("protocol pairs", "--data"): "dataset",
    ("protocol pairs", "--output"): "out-file",
    ("protocol patches", "--data"): "dataset",
    ("protocol patches", "--out"): "out-dir",
    ("report", "path"): "folder",
    ("report", "--model"): "model",
    ("report", "--screenshot"): "out-file",
    ("serve", "--gallery"): "gallery",
    ("serve", "--model"): "model",
    ("train", "config"): "text",
    ("train", "--data"): "dataset",
    ("train", "--out"): "out-dir",
    ("tune", "config"): "text",
    ("tune", "--data"): "dataset",
    ("tune", "--out"): "out-dir",
}
NOT_PATHS = {
    "config": {"--set"},
    "demo": {"--set"},
    "embed": {"--layout", "--flip", "--batch-size"},
    "eval": {"--retrieval", "--far", "--no-face", "--pose", "--patches", "--patch-split", "--patch-part", "--seed"}
    | {"--layout", "--flip", "--batch-size", "--workers"}
    | {"--patch-ap", "--patch-balanced", "--patch-distractors", "--patch-same-sequence-distractors"},
    "export": {"--legacy-exporter"},
    "gallery": {"--template"},
    "gallery calibrate": {"--far", "--layout"},
    "gallery enroll": {"name", "--max-photos", "--frames", "--min-face", "--min-sharpness"},
    "gallery identify": {"--top-k"},
    "gallery import": {"--per-person", "--layout", "--workers"},
    "gallery index": {"--kind", "--m", "--ef-construction", "--ef-search"},
    "gallery init": {"--keep-faces"},
    "gallery recall": {"--sample", "--top-k", "--seed"},
    "gallery remove": {"name"},
    "gallery verify": {"name"},
    "models": {"names", "--embedding-dim", "--max-params", "--no-speed", "--json"},
    "predict classify": {"--per-identity", "--flip", "--batch-size"},
    "predict map": {"--rule", "--far", "--threshold", "--template", "--no-match-label", "--folds", "--flip"}
    | {"--batch-size"},
    "prepare": {"--size", "--align", "--channels", "--center-fraction", "--max-upsample", "--detector", "--layout"}
    | {"--patches", "--patch-split", "--patch-part", "--workers", "--overwrite"},
    "protocol course": {"--seed", "--verification-fraction", "--dev-fraction", "--test-fraction"}
    | {"--known-per-identity", "--absent-fraction", "--min-class-images", "--link", "--overwrite", "--layout"},
    "protocol open-set": {"--unknown-fraction", "--gallery-per-identity", "--seed", "--layout"},
    "protocol pairs": {"--folds", "--pairs-per-fold", "--seed", "--layout"},
    "protocol patches": {"--points", "--seed", "--kinds", "--max-photos", "--magnification", "--train-fraction"}
    | {"--max-side", "--overwrite"},
    "report": {"--far", "--refresh", "--title"},
    "serve": {"--template", "--host", "--port", "--token", "--max-upload-mb", "--max-pixels", "--workers"}
    | {"--max-batch", "--batch-window-ms"},
    "train": {"--epochs", "--device", "--resume", "--set"},
    "tune": {"--param", "--trials", "--epochs", "--sampler", "--pruner", "--metric", "--direction", "--prune-after"}
    | {"--seed", "--startup", "--timeout", "--set"},
}


def name_of(action) -> str:
    return action.option_strings[-1] if action.option_strings else action.dest


def test_every_argument_is_listed() -> None:
    """A new argument needs its cases here (a path) or a place among the others (not a path)."""
    seen = {(command, name_of(a)) for command, parser in COMMANDS.items() for a in arguments(parser)}
    listed = set(PATHS) | {(command, arg) for command, args in NOT_PATHS.items() for arg in args}
    assert seen - listed == set(), f"arguments without bad-path cases: add them to PATHS or NOT_PATHS: {seen - listed}"
    assert listed - seen == set(), f"listed, but no command has them: {listed - seen}"


# what each kind of path is given instead of a good one: (case, how to make it in the scratch folder)
Maker = Callable[[Path], Path]


def _missing(scratch: Path) -> Path:
    return scratch / "no-such-thing"


def _empty_dir(scratch: Path) -> Path:
    (scratch / "empty").mkdir()
    return scratch / "empty"


def _text_file(scratch: Path) -> Path:
    (scratch / "notes.txt").write_text("not what was asked for\n")
    return scratch / "notes.txt"


def _unreadable_file(scratch: Path) -> Path:
    path = scratch / "locked.yaml"
    path.write_text("data: x\n")
    path.chmod(0)
    return path


def _unreadable_dir(scratch: Path) -> Path:
    path = scratch / "locked"
    (path / "ada").mkdir(parents=True)
    (path / "ada" / "1.jpg").write_text("x")
    path.chmod(0)
    return path


def _fake_image(scratch: Path) -> Path:
    (scratch / "photo.jpg").write_text("this is text, named like a JPEG\n")
    return scratch / "photo.jpg"


def _fake_images_dir(scratch: Path) -> Path:
    for person in ("person_000", "person_001"):  # people of the good inputs (predict map's dev CSV names them)
        (scratch / "photos" / person).mkdir(parents=True)
        for k in (1, 2):
            (scratch / "photos" / person / f"{k}.jpg").write_text("this is text, named like a JPEG\n")
    return scratch / "photos"


def _fake_model(scratch: Path) -> Path:
    (scratch / "model.pt").write_text("this is text, named like a checkpoint\n")
    return scratch / "model.pt"


INPUT_FILE = {"missing": _missing, "a folder": _empty_dir, "unreadable": _unreadable_file}
INPUT_DIR = {"missing": _missing, "empty folder": _empty_dir, "a file": _text_file, "unreadable": _unreadable_dir}
CASES: dict[str, dict[str, Maker]] = {
    "text": {**INPUT_FILE, "an image instead": _fake_image},
    "image": {**INPUT_FILE, "text named .jpg": _fake_image},
    "model": {**INPUT_FILE, "text named .pt": _fake_model},
    "folder": INPUT_DIR,
    "dataset": {**INPUT_DIR, "text named .jpg": _fake_images_dir},
    "gallery": INPUT_DIR,
    "out-dir": {"a file": _text_file},
    "out-file": {"a folder": _empty_dir, "inside a file": lambda s: _text_file(s) / "out.csv"},
}


def test_every_kind_has_cases() -> None:
    assert set(PATHS.values()) <= set(CASES)


@dataclass(frozen=True)
class Inputs:
    """Good values for every argument, so that only the one replaced is wrong."""

    dataset: Path
    flat: Path
    checkpoint: Path
    gallery: Path
    pairs: Path
    split: Path
    dev_csv: Path
    config: Path
    run: Path
    release: Path


@pytest.fixture(scope="module")
def inputs(synthetic_faces: Path, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    from facemetric.cli import main
    from hpatches_fakes import write_release

    root = tmp_path_factory.mktemp("bad_paths_inputs")
    flat = root / "flat"
    flat.mkdir()
    for person in sorted(synthetic_faces.iterdir())[:2]:
        for photo in sorted(person.iterdir())[:2]:
            shutil.copy(photo, flat / f"{person.name}_{photo.name}")
    assert (
        main(["-q", "protocol", "pairs", "--data", str(synthetic_faces), "-o", str(root / "pairs.txt"), "--folds", "2"])
        == 0
    )
    assert main(["-q", "protocol", "open-set", "--data", str(synthetic_faces), "-o", str(root / "split.csv")]) == 0
    dev = [
        f"{p.name},{'_'.join(p.name.split('_')[:2])}\n" for p in sorted(flat.iterdir())
    ]  # person_000_... -> person_000
    (root / "dev.csv").write_text("image,label\n" + "".join(dev))
    gallery = root / "gallery"
    assert (
        main(["-q", "gallery", "--gallery", str(gallery), "--model", str(tiny_checkpoint), "init", "--keep-faces"]) == 0
    )
    photos = [str(p) for p in sorted((synthetic_faces / sorted(os.listdir(synthetic_faces))[0]).iterdir())[:2]]
    assert main(["-q", "gallery", "--gallery", str(gallery), "enroll", "ada", *photos]) == 0
    config = root / "config.yaml"
    config.write_text("data:\n  image_size: [48, 48]\n  val_identities: 4\nsampler: {p: 4}\ntrain:\n  epochs: 1\n")
    release = write_release(root / "release")
    return Inputs(
        synthetic_faces,
        flat,
        tiny_checkpoint,
        gallery,
        root / "pairs.txt",
        root / "split.csv",
        root / "dev.csv",
        config,
        tiny_checkpoint.parent,
        release,
    )


def command_line(command: str, arg: str, bad: Path, good: Inputs, out: Path) -> list[str]:
    """The command line of ``command`` with every argument good except ``arg``, which is ``bad``; outputs in ``out``."""
    model = str(good.checkpoint)
    value = {
        "--model": model,
        "--data": str(good.dataset),
        "--out": str(out / "result"),
        "--output": str(out / "out.csv"),
        "--gallery": str(good.gallery),
        "--test": str(good.flat),
        "--known": str(good.dataset),
        "--dev": str(good.flat),
        "--dev-csv": str(good.dev_csv),
        "--pairs": str(good.pairs),
        "--open-set": str(good.split),
        "--splits-json": str(good.release / "splits.json"),
        "--screenshot": str(out / "shot.png"),
        "config": str(good.config),
        "path": str(good.run),
        "images": str(next(next(good.dataset.iterdir()).iterdir())),
        "image": str(next(good.flat.iterdir())),
    }
    # "@ARG": the argument's value (after its option string when it has one); other words as they are
    line = {
        "config": ["config", "@config"],
        "demo": ["demo", "@--data", "@--out", "--set", "train.epochs=1"],
        "embed": ["embed", "@--model", "@--data", "@--output"],
        "eval": ["eval", "@--model", "@--data", "@--pairs", "@--out"],
        "export": ["export", "@--model", "@--output"],
        "gallery": ["gallery", "@--gallery", "@--model", "list"],
        "gallery calibrate": ["gallery", "@--gallery", "calibrate", "@--data"],
        "gallery enroll": ["gallery", "@--gallery", "enroll", "bob", "@images"],
        "gallery export": ["gallery", "@--gallery", "export", "@--output"],
        "gallery identify": ["gallery", "@--gallery", "identify", "@image"],
        "gallery import": ["gallery", "@--gallery", "import", "@--data"],
        "gallery init": ["gallery", "@--gallery", "init", "@--model"],
        "gallery reembed": ["gallery", "@--gallery", "reembed", "@--model", "@--out"],
        "gallery verify": ["gallery", "@--gallery", "verify", "ada", "@image"],
        "predict classify": ["predict", "classify", "@--model", "@--test", "@--output", "@--known", "@--dev"],
        "predict map": ["predict", "map", "@--model", "@--known", "@--dev-csv", "@--dev", "@--test", "@--output"],
        "prepare": ["prepare", "@--data", "@--out", "--size", "48", "--align", "none"],
        "protocol course": ["protocol", "course", "@--data", "@--out"],
        "protocol open-set": ["protocol", "open-set", "@--data", "@--output"],
        "protocol pairs": ["protocol", "pairs", "@--data", "@--output"],
        "protocol patches": ["protocol", "patches", "@--data", "@--out"],
        "report": ["report", "@path", "@--model", "@--screenshot"],
        "serve": ["serve", "@--gallery", "--port", "1"],  # a model named makes a missing gallery: only when tested
        "train": ["train", "@config", "@--data", "@--out", "--epochs", "1"],
        "tune": [
            "tune",
            "@config",
            "@--data",
            "@--out",
            "--trials",
            "1",
            "--epochs",
            "1",
            "--param",
            "optim.lr=log(1e-3,1e-2)",
        ],
    }
    words = line[command]
    if command == "eval" and arg == "--open-set":
        words = ["eval", "@--model", "@--data", "@--open-set", "@--out"]
    elif command == "eval" and arg == "--splits-json":
        words = ["eval", "@--model", "@--data", "--patches", "--patch-split", "a", "@--splits-json", "@--out"]
        value.update({"--data": str(good.release), "--model": "sift"})
    elif command == "eval" and arg == "--patch-tasks":
        words = ["eval", "@--model", "@--data", "--patches", "@--patch-tasks", "@--out"]
        value.update({"--data": str(good.release), "--model": "raw"})
    elif command == "prepare" and arg == "--splits-json":
        words = ["prepare", "@--data", "@--out", "--patches", "--patch-split", "a", "@--splits-json"]
        value["--data"] = str(good.release)
    elif command == "serve" and arg == "--model":
        words = ["serve", "@--gallery", "@--model", "--port", "1"]
    elif command == "gallery init":
        value["--gallery"] = str(out / "new-gallery")
    elif command == "report":  # a report is written into the run folder: a copy of it in the scratch folder
        value["path"] = str(shutil.copytree(good.run, out / "run"))
    argv = []
    for word in words:
        if not word.startswith("@"):
            argv.append(word)
            continue
        name = word[1:]
        given = str(bad) if name == arg else value[name]
        argv += [name, given] if name.startswith("-") else [given]
    assert str(bad) in argv, (command, arg)
    return argv


def _tree(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with a digest of what it holds (folders: "")."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        try:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        except PermissionError:
            out[rel] = "unreadable"
    return out


CASE_IDS = [(command, arg, case) for (command, arg), kind in PATHS.items() for case in CASES[kind]]


# root reads any file: the unreadable cases run without the capabilities that let it (root is then held to the
# permission bits like anyone)
NO_OVERRIDE = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


def _run(argv: list[str], scratch: Path, unprivileged: bool) -> subprocess.CompletedProcess:
    script = [str(Path(sys.executable).with_name("facemetric"))]
    if unprivileged and os.geteuid() == 0:
        assert shutil.which("setpriv"), "running as root, the unreadable cases need util-linux's setpriv"
        script = NO_OVERRIDE + script
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*script, *argv], capture_output=True, text=True, timeout=180, env=env, cwd=scratch)


def test_every_bad_path_is_refused_in_one_line(inputs: Inputs, tmp_path: Path) -> None:
    """All cases, four at a time (each is a new process); the failures are listed together."""

    def one(case: tuple[str, str, str]) -> str | None:
        command, arg, name = case
        scratch = tmp_path / "-".join(case).replace(" ", "_").replace("--", "")
        scratch.mkdir()
        bad = CASES[PATHS[command, arg]][name](scratch)
        argv = command_line(command, arg, bad, inputs, scratch)
        before = _tree(scratch)
        try:
            done = _run(argv, scratch, unprivileged=name == "unreadable")
        except subprocess.TimeoutExpired:
            return f"facemetric {' '.join(argv)}  [{name}]: still running after 180 s"
        after = _tree(scratch)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        where = f"facemetric {' '.join(argv)}  [{name}]"
        if done.returncode != 2:
            return f"{where}: exit {done.returncode}: {done.stderr.strip()[-600:]}"
        if len(lines) != 1:
            return f"{where}: {len(lines)} stderr lines: {done.stderr.strip()[-600:]}"
        if str(bad) not in lines[0] and arg not in lines[0] and bad.name not in lines[0]:
            return f"{where}: the line names neither {arg} nor the path: {lines[0]}"
        if after != before:
            return f"{where}: wrote {sorted(set(after) - set(before)) or 'into existing files'}"
        return None

    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(one, CASE_IDS) if f]
    assert not failures, f"{len(failures)} of {len(CASE_IDS)} cases:\n" + "\n".join(failures)
