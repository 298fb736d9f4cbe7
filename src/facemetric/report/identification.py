"""The report's identification section: closed-set CMC, the open-set threshold and figures, DIR at FAR."""

from __future__ import annotations

import json
from pathlib import Path

from facemetric.eval.identification.result import DirAtFar, IdentificationResult, OpenSetResult
from facemetric.eval.suite.document import EvalDocument
from facemetric.report.document import Block, Figure, Para, Section, Table, how_to_read, not_available
from facemetric.report.formatting import num, paren, scalars, words
from facemetric.report.plots import cmc_plot, dir_far_plot


def identification_rows(ident: IdentificationResult) -> list[tuple[str, str]]:
    closed, threshold, test = ident.closed_set, ident.open_set.threshold, ident.open_set.test
    text = (
        f"{num(threshold.value)} for target FAR {num(threshold.target_far)}; achieved FAR "
        f"{num(threshold.achieved_far)} on validation{paren(threshold.source)}"
    )
    if threshold.below_resolution:
        text += "; the target FAR is below 1 / number of validation impostors, so it could not be measured"
    detail = f"measured false-alarm rate {num(test.false_alarm_rate)} on {num(test.n_unknown)} unknown test probes"
    return [
        ("Closed-set rank-1 identification rate", num(closed.rank1)),
        ("Closed-set rank-5 identification rate", num(closed.rank5)),
        ("Open-set threshold", text),
        ("Open-set test DIR at that threshold", num(test.dir) + paren(detail)),
    ]


def _dir_at_far_blocks(curve: DirAtFar) -> list[Block]:
    """DIR @ FAR as a table (the lists as long as ``far`` as columns), the other fields as text, and a plot."""
    length = len(curve.far)
    columns = {name: x for name, x in curve if isinstance(x, list) and len(x) == length}
    blocks: list[Block] = []
    if length:
        blocks.append(Table(tuple(columns), [tuple(num(x[i]) for x in columns.values()) for i in range(length)]))
    extras = [f"{name}: {json.dumps(x) if isinstance(x, list) else num(x)}" for name, x in curve if name not in columns]
    if extras:
        blocks.append(Para("; ".join(extras) + "."))
    png = dir_far_plot(curve.model_dump())
    if png is not None:
        blocks.append(Figure("dir_at_far.png", "DIR at FAR", png))
    return blocks


def _open_set_rows(open_set: OpenSetResult) -> list[tuple[str, str]]:
    # the threshold record's gallery fields (template, gallery size, when calibrated) are null in an evaluation
    threshold = [(name, x) for name, x in scalars(open_set.threshold) if x is not None]
    groups = ((threshold, "Threshold"), (scalars(open_set.validation), "Validation"), (scalars(open_set.test), "Test"))
    rows = [(f"{label}: {words(name)}", num(x)) for values, label in groups for name, x in values]
    return rows + [(words(name), num(x)) for name, x in scalars(open_set)]


def identification_section(doc: EvalDocument, eval_dir: Path) -> Section:
    section = Section(
        "Identification",
        [
            how_to_read(
                "Closed set: each probe is compared with a gallery of enrolled identities; the CMC curve gives the "
                "fraction of probes whose true identity is among the k best-scoring gallery identities. Open set: some "
                "probes are not enrolled. DIR (detection and identification rate) is the fraction of enrolled probes "
                "identified correctly at rank 1 with a score at or above the threshold; FAR (false-alarm rate) is the "
                "fraction of unknown probes whose best score reaches the threshold. The threshold is calibrated on a "
                "validation split; the DIR @ FAR table re-chooses thresholds on the test unknowns, to compare models."
            )
        ],
    )
    ident = doc.identification
    if ident is None:
        section.blocks.append(not_available("eval.json has no identification results."))
        return section
    closed = ident.closed_set
    if closed.ranks:
        section.blocks.append(
            Para(
                f"Closed set: {num(closed.n_probes)} probes, {num(closed.n_identities)} gallery "
                f"identities, template {closed.template}."
            )
        )
        section.blocks.append(Figure("cmc.png", "CMC", cmc_plot(closed.ranks)))
    else:
        section.blocks.append(not_available("eval.json has no identification.closed_set.ranks (CMC)."))
    section.blocks.append(Table(("Open-set quantity", "Value"), _open_set_rows(ident.open_set)))
    section.blocks += _dir_at_far_blocks(ident.open_set.test.dir_at_far)
    if ident.decisions_csv:
        where = "in this folder" if (eval_dir / ident.decisions_csv).is_file() else "listed in eval.json but not found"
        section.blocks.append(Para(f"Per-probe open-set decisions: {ident.decisions_csv} ({where})."))
    return section
