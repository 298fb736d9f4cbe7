"""What a ``postgresql://`` gallery URL says besides where the database is: how to search it.

facemetric takes its own parameters out of the URL before libpq sees it: ``search=hnsw|exact``
(pgvector's approximate HNSW index, the default, or an exact scan), ``ef_search=N`` (HNSW's
candidate list, per request) and the HNSW build of a new gallery, ``m=M&ef_construction=E`` (links per
node and the build's candidate list: :data:`M_DEFAULT`, :data:`EF_CONSTRUCTION_DEFAULT`, measured). Every other
parameter (``sslmode``, ``password`` ...) goes to libpq unchanged.
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
M_RANGE, EF_CONSTRUCTION_RANGE = (2, 100), (4, 1000)  # pgvector's limits (and ef_construction >= 2 m)
# a new gallery's build: at 100,000 people (face-like embeddings) recall@1 at ef_search 100 is 1.00 (128-d) and
# 0.99 (512-d) against pgvector's 16 / 64's 0.945 and 0.825, for a build 2.7-3.6x as long (BENCHMARKS.md)
M_DEFAULT, EF_CONSTRUCTION_DEFAULT = 32, 128
OWN = ("search", "ef_search", "m", "ef_construction")


@dataclass(frozen=True)
class SearchOptions:
    """facemetric's own URL parameters: ``search=hnsw|exact``, ``ef_search=N`` (HNSW's candidate list:
    larger finds the true nearest more often, and costs more; at least :data:`EF_SEARCH_DEFAULT`), and the
    HNSW build ``m`` / ``ef_construction`` (None: not given)."""

    exact: bool = False
    ef_search: int | None = None
    m: int | None = None
    ef_construction: int | None = None

    def build(self) -> tuple[int, int]:
        """(m, ef_construction) a new HNSW index is built with: the URL's, else the defaults."""
        return self.m or M_DEFAULT, self.ef_construction or EF_CONSTRUCTION_DEFAULT


def _whole(url: str, key: str, value: str | None, bounds: tuple[int, int], note: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not bounds[0] <= int(value) <= bounds[1]:
        raise GalleryError(
            f"{redact_url(url)}: {key}={value!r} must be a whole number from {bounds[0]} to {bounds[1]} ({note})"
        )
    return int(value)


def split_url(url: str) -> tuple[str, SearchOptions]:
    """(the URL libpq is given, the search options): facemetric's own parameters taken out."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    mine = {key: value for key, value in query if key in OWN}
    mode = mine.get("search", "hnsw")
    if mode not in SEARCH_MODES:
        raise GalleryError(
            f"{redact_url(url)}: search={mode!r} is not a search mode; use search=hnsw (approximate, the default) "
            "or search=exact"
        )
    ef = _whole(
        url, "ef_search", mine.get("ef_search"), EF_SEARCH_RANGE, f"pgvector's limits; default {EF_SEARCH_DEFAULT}"
    )
    m = _whole(url, "m", mine.get("m"), M_RANGE, f"HNSW links per node, pgvector's limits; default {M_DEFAULT}")
    ef_c = _whole(
        url,
        "ef_construction",
        mine.get("ef_construction"),
        EF_CONSTRUCTION_RANGE,
        f"HNSW's build candidate list, pgvector's limits; default {EF_CONSTRUCTION_DEFAULT}",
    )
    options = SearchOptions(mode == "exact", ef, m, ef_c)
    built_m, built_ef = options.build()
    if built_ef < 2 * built_m:
        raise GalleryError(
            f"{redact_url(url)}: ef_construction={built_ef} is less than twice m={built_m}; pgvector needs "
            f"ef_construction >= 2 m (give ef_construction={2 * built_m} or more)"
        )
    if not mine:
        return url, options
    rest = urlencode([(k, v) for k, v in query if k not in mine], safe="/", quote_via=quote)  # spaces as %20
    return urlunsplit(parts._replace(query=rest)), options
