"""LFW-format pairs files (``pairs.txt``): parse, resolve to image paths, write.

Format (as in the official ``pairs.txt`` / ``pairsDevTrain.txt``): the first
line is ``N`` (one set of N matched pairs followed by N mismatched pairs) or
``F N`` (F folds, each N matched then N mismatched). A matched line is
``name i j`` and a mismatched line is ``name1 i name2 j``, separated by tabs or
spaces. Image ``i`` of ``name`` lives at ``<images>/name/name_{i:04d}.jpg``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facemetric.core.atomic import write_atomic
from facemetric.eval.errors import MissingImageError, PairsFormatError

StrPath = str | os.PathLike[str]

_POSITIVE_INT = re.compile(r"[0-9]+")
_MAX_LINES_IN_MESSAGE = 5
_IMAGES_HINT = (
    "--data should point at the folder that contains one sub-folder per person, "
    "e.g. <images>/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
)


@dataclass(frozen=True)
class Pair:
    """One verification pair; ``fold`` is 0-based, None when the file has no folds."""

    name1: str
    index1: int
    name2: str
    index2: int
    same: bool
    fold: int | None
    line: int


def _positive_int(text: str) -> int | None:
    """``int(text)`` if it is a positive decimal integer, else None."""
    if _POSITIVE_INT.fullmatch(text) and int(text) > 0:
        return int(text)
    return None


def _parse_header(path: Path, line_no: int, text: str) -> tuple[int, int]:
    """Return ``(num_folds, pairs_per_class)``; ``num_folds`` is 0 for the ``N`` form."""
    fields = text.split()
    parsed = [_positive_int(f) for f in fields]
    values = [v for v in parsed if v is not None]
    if len(fields) not in (1, 2) or len(values) != len(fields):
        raise PairsFormatError(
            f"{path}:{line_no}: bad header {text!r}; the first line must be 'N' "
            "(N matched then N mismatched pairs) or 'FOLDS N' (FOLDS blocks of N "
            "matched then N mismatched pairs) with positive integers"
        )
    if len(values) == 1:
        return 0, values[0]
    return values[0], values[1]


def _parse_pair_line(path: Path, line_no: int, text: str, same: bool, fold: int | None, where: str) -> Pair:
    """Parse one pair line that the header places in a matched or mismatched block."""
    fields = text.split()
    expected = "'name i j'" if same else "'name1 i name2 j'"
    if len(fields) != (3 if same else 4):
        raise PairsFormatError(
            f"{path}:{line_no}: {where} must be a {'matched' if same else 'mismatched'} "
            f"pair {expected} ({3 if same else 4} fields) but the line has "
            f"{len(fields)} fields: {text!r}; check that each block has exactly the "
            "number of matched and mismatched lines given in the header"
        )
    if same:
        name1, raw1, raw2 = fields
        name2 = name1
    else:
        name1, raw1, name2, raw2 = fields
    index1, index2 = _positive_int(raw1), _positive_int(raw2)
    if index1 is None or index2 is None:
        bad = raw1 if index1 is None else raw2
        raise PairsFormatError(
            f"{path}:{line_no}: image index {bad!r} is not a positive integer in "
            f"{text!r}; expected {expected} with 1-based image numbers"
        )
    if same and index1 == index2:
        raise PairsFormatError(
            f"{path}:{line_no}: matched pair compares image {index1} of {name1} with "
            f"itself: {text!r}; a matched pair needs two different images"
        )
    if not same and name1 == name2:
        raise PairsFormatError(
            f"{path}:{line_no}: mismatched pair names the same person twice: "
            f"{text!r}; a mismatched pair needs two different people"
        )
    return Pair(name1, index1, name2, index2, same, fold, line_no)


def parse_pairs(path: StrPath) -> list[Pair]:
    """Read an LFW pairs file strictly, raising PairsFormatError on any deviation.

    Blank lines, trailing whitespace and CRLF line endings are tolerated; the
    number of pair lines must match the header, and each line must be the kind
    (matched or mismatched) that its position in the file calls for.
    """
    path = Path(path)
    lines = [
        (number, text.strip())
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if text.strip()
    ]
    if not lines:
        raise PairsFormatError(f"{path}: file is empty; expected an LFW pairs file")
    header_line, header = lines[0]
    num_folds, n = _parse_header(path, header_line, header)
    body = lines[1:]
    blocks = max(num_folds, 1)
    expected = blocks * 2 * n
    if len(body) != expected:
        layout = f"{num_folds} folds x " if num_folds else ""
        raise PairsFormatError(
            f"{path}: header {header!r} (line {header_line}) promises {layout}"
            f"({n} matched + {n} mismatched) = {expected} pair lines, but the file "
            f"has {len(body)}; fix the header or the missing/extra lines"
        )
    pairs = []
    for k, (line_no, text) in enumerate(body):
        block, within = divmod(k, 2 * n)
        same = within < n
        fold = block if num_folds else None
        position = within + 1 if same else within - n + 1
        kind = "matched" if same else "mismatched"
        where = (f"fold {block + 1} " if num_folds else "") + f"{kind} line {position}/{n}"
        pairs.append(_parse_pair_line(path, line_no, text, same, fold, where))
    return pairs


def pair_image_path(
    images_root: StrPath,
    name: str,
    index: int,
    extensions: Sequence[str] = (".jpg", ".jpeg", ".png"),
) -> Path:
    """Path of image ``index`` of ``name``: the first of the extensions that exists.

    Returns the path with the first extension when none exists, so that the
    caller can report the path LFW would normally use.
    """
    folder = Path(images_root) / name
    candidates = [folder / f"{name}_{index:04d}{ext}" for ext in extensions]
    return next((p for p in candidates if p.is_file()), candidates[0])


def resolve_pairs(
    pairs: Iterable[Pair], images_root: StrPath, pairs_path: StrPath | None = None
) -> list[tuple[Path, Path]]:
    """Image paths for every pair, checked up front so a run never fails midway.

    Raises MissingImageError naming the pairs file, the first few offending
    line numbers with their expected paths, and how many lines are affected.
    """
    root = Path(images_root)
    resolved: list[tuple[Path, Path]] = []
    missing: list[tuple[int, Path]] = []
    for pair in pairs:
        first = pair_image_path(root, pair.name1, pair.index1)
        second = pair_image_path(root, pair.name2, pair.index2)
        resolved.append((first, second))
        absent = [p for p in (first, second) if not p.is_file()]
        if absent:
            missing.append((pair.line, absent[0]))
    if missing:
        source = str(pairs_path) if pairs_path is not None else "the pairs list"
        shown = "; ".join(f"line {line}: {path}" for line, path in missing[:_MAX_LINES_IN_MESSAGE])
        more = len(missing) - _MAX_LINES_IN_MESSAGE
        extra = f"; and {more} more line(s)" if more > 0 else ""
        root_note = "" if root.is_dir() else f" (the folder {root} does not exist)"
        raise MissingImageError(
            f"{len(missing)} of {len(resolved)} pairs in {source} reference images "
            f"missing under {root}{root_note}: {shown}{extra}. {_IMAGES_HINT}"
        )
    return resolved


def _format_pair(pair: Pair) -> str:
    if pair.same:
        return f"{pair.name1}\t{pair.index1}\t{pair.index2}"
    return f"{pair.name1}\t{pair.index1}\t{pair.name2}\t{pair.index2}"


def write_pairs(path: str | Path, pairs: Iterable[Pair], folds: int | None = None) -> None:
    """Write pairs in the LFW format that :func:`parse_pairs` reads back.

    With ``folds=None`` the header is ``N`` and all pairs form one set; with
    ``folds=F`` the header is ``F N`` and each pair goes to the block of its
    ``fold`` attribute (0-based). Every set needs as many matched as mismatched
    pairs, and with folds every fold needs the same N. Order within a block is
    kept. Raises ValueError when the pairs cannot be written in this format.
    """
    if folds is not None and folds < 1:
        raise ValueError(f"folds must be a positive integer or None, got {folds}")
    blocks: list[list[Pair]] = [[] for _ in range(folds or 1)]
    for pair in pairs:
        if any(not name or len(name.split()) != 1 for name in (pair.name1, pair.name2)):
            raise ValueError(f"names must be non-empty and contain no whitespace: {pair}")
        if pair.same and (pair.name1 != pair.name2 or pair.index1 == pair.index2):
            raise ValueError(f"a matched pair needs one name and two images: {pair}")
        if not pair.same and pair.name1 == pair.name2:
            raise ValueError(f"a mismatched pair needs two different names: {pair}")
        if folds is None:
            blocks[0].append(pair)
        elif pair.fold is None or not 0 <= pair.fold < folds:
            raise ValueError(f"pair fold must be in 0..{folds - 1} for folds={folds}: {pair}")
        else:
            blocks[pair.fold].append(pair)
    per_block = [(sum(p.same for p in b), sum(not p.same for p in b)) for b in blocks]
    n = per_block[0][0]
    if n == 0 or any(counts != (n, n) for counts in per_block):
        raise ValueError(
            "every set/fold needs the same positive number N of matched and of "
            f"mismatched pairs; got (matched, mismatched) per block: {per_block}"
        )
    lines = [f"{folds}\t{n}" if folds is not None else str(n)]
    for block in blocks:
        lines.extend(_format_pair(p) for p in block if p.same)
        lines.extend(_format_pair(p) for p in block if not p.same)
    write_atomic(path, "\n".join(lines) + "\n")
