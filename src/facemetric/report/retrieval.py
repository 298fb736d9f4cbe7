"""The report's retrieval section: P@1, R-precision, MAP@R, Recall@K and how the search was made."""

from __future__ import annotations

from facemetric.eval.retrieval.result import RetrievalResult
from facemetric.eval.suite.document import EvalDocument
from facemetric.report.document import Section, Table, how_to_read, not_available
from facemetric.report.formatting import key_order, num, scalars, words


def retrieval_rows(ret: RetrievalResult) -> list[tuple[str, str]]:
    rows = [
        ("Retrieval precision@1", num(ret.precision_at_1)),
        ("Retrieval R-precision", num(ret.r_precision)),
        ("Retrieval MAP@R", num(ret.map_at_r)),
    ]
    rows += [(f"Retrieval Recall@{k}", num(ret.recall_at_k[k])) for k in sorted(ret.recall_at_k, key=key_order)]
    return rows


def retrieval_section(doc: EvalDocument) -> Section:
    section = Section(
        "Retrieval",
        [
            how_to_read(
                "Every query image searches all other images. Precision@1 is the fraction of queries whose nearest "
                "neighbour shows the same person; Recall@K the fraction with at least one same-person image among the "
                "K nearest. With R the number of other images of the query's person, R-precision is the fraction of "
                "same-person images among the first R results and MAP@R the mean average precision over those R "
                "results, which rewards ranking all of them first."
            )
        ],
    )
    ret = doc.retrieval
    if ret is None:
        section.blocks.append(not_available("eval.json has no retrieval results."))
        return section
    headline = {"precision_at_1", "r_precision", "map_at_r"}
    rows = retrieval_rows(ret) + [(words(name), num(x)) for name, x in scalars(ret) if name not in headline]
    section.blocks.append(Table(("Quantity", "Value"), rows))
    return section
