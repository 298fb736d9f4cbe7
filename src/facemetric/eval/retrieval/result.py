"""The typed result of retrieval: what :func:`~facemetric.eval.retrieval.metrics.retrieval_metrics` returns,
the ``retrieval`` section of ``eval.json``."""

from __future__ import annotations

from facemetric.core.results import Result


class RetrievalResult(Result):
    """P@1, R-precision, MAP@R and Recall@K (key: K) of every query, and how the search was made."""

    precision_at_1: float
    r_precision: float
    map_at_r: float
    recall_at_k: dict[str, float]  # key: K
    num_queries: int
    num_evaluated: int
    queries_without_positives: int
    queries_r_capped: int
    max_r: int | None
    k_searched: int
    leave_one_out: bool
    index: str
    exact: bool
