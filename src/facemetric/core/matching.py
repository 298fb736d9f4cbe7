"""How a probe is matched against enrolled people: the template modes, and the answer for nobody known.

A person enrolled with several photos is scored by ``max`` (their best-matching photo: robust to one
bad enrolment) or ``mean`` (the cosine with the mean of their embeddings: one vector per person,
cheaper at scale). An open-set search whose best score stays under the threshold answers
:data:`UNKNOWN`, which is therefore no one's name; thresholds are calibrated at a stated false-accept rate,
:data:`DEFAULT_FAR` unless told otherwise (``--far`` of every command). The evaluation's open-set search, the gallery's
indexes and its API all use these.
"""

from __future__ import annotations

from typing import Literal

Template = Literal["max", "mean"]
TEMPLATES: tuple[Template, ...] = ("max", "mean")
UNKNOWN = "no correspondence"
DEFAULT_FAR = 1e-2  # the false-accept rate thresholds are calibrated at unless told otherwise (--far)
