"""What a ``postgresql://`` gallery URL says besides where the database is: how to search it.

facemetric takes its own parameters out of the URL before libpq sees it: ``search=hnsw|exact``
(pgvector's approximate HNSW index, the default, or an exact scan) and ``ef_search=N`` (HNSW's
candidate list). Every other parameter (``sslmode``, ``password`` ...) goes to libpq unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from facemetric.gallery.interface import GalleryError
from facemetric.gallery.stores.registry import redact_url

SEARCH_MODES = ("hnsw", "exact")
EF_SEARCH_RANGE = (1, 1000)  # pgvector's limits of hnsw.ef_search
# the smallest HNSW candidate list a search uses (deeper searches use more). Not pgvector's 40: face
# embeddings of different people are nearly orthogonal, where HNSW needs long lists to find the nearest
# (recall@1 against exact search at 100,000 people, 128-d: 0.56 at 40, 0.77 at 100, 0.99 at 400; 512-d: 0.37,
# 0.61, 0.94; BENCHMARKS.md)
EF_SEARCH_DEFAULT = 400


@dataclass(frozen=True)
class SearchOptions:
    """facemetric's own URL parameters: ``search=hnsw|exact`` and ``ef_search=N`` (HNSW's candidate list:
    larger finds the true nearest more often, and costs more; at least :data:`EF_SEARCH_DEFAULT`)."""

    exact: bool = False
    ef_search: int | None = None


def split_url(url: str) -> tuple[str, SearchOptions]:
    """(the URL libpq is given, the search options): facemetric's own parameters taken out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    mine = {key: value for key, value in query if key in ("search", "ef_search")}
    mode = mine.get("search", "hnsw")
    if mode not in SEARCH_MODES:
        raise GalleryError(
            f"{redact_url(url)}: search={mode!r} is not a search mode; use search=hnsw (approximate, the default) "
            "or search=exact"
        )
    ef = mine.get("ef_search")
    if ef is not None and (not ef.isdigit() or not EF_SEARCH_RANGE[0] <= int(ef) <= EF_SEARCH_RANGE[1]):
        raise GalleryError(
            f"{redact_url(url)}: ef_search={ef!r} must be a whole number from {EF_SEARCH_RANGE[0]} to "
            f"{EF_SEARCH_RANGE[1]} (pgvector's limits; default {EF_SEARCH_DEFAULT})"
        )
    options = SearchOptions(mode == "exact", None if ef is None else int(ef))
    if not mine:
        return url, options
    rest = urlencode([(k, v) for k, v in query if k not in mine], safe="/", quote_via=quote)  # spaces as %20
    return urlunsplit(parts._replace(query=rest)), options
