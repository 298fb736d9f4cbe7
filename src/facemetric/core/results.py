"""Typed results: the base every result model derives from, and the one calibrated-threshold record.

Each evaluation task declares its own typed result beside its metrics (``facemetric.eval.<task>.result``:
what ``eval.json`` holds, checked when written and when read back by the report). Two things are shared
beyond evaluation, so they live here: :class:`Result` (unknown keys are refused, so a metric renamed on
one side without the other fails validation instead of silently dropping a row) and
:class:`CalibratedThreshold`, the one threshold record of an evaluation, a gallery and its HTTP API.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from facemetric.core.matching import Template


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalibratedThreshold(Result):
    """A decision threshold set at a stated false-accept rate: facemetric's one threshold record.

    Written by :func:`facemetric.eval.primitives.calibrate_threshold` for an evaluation's open-set
    split (``eval.json``) and by a gallery's calibration (stored with the gallery, answered by the API).
    The gallery fills ``template``, ``gallery_identities`` and ``calibrated``; an evaluation leaves them
    null (its result says the template and gallery size once, beside the threshold).
    """

    # the API's schema lists fields with a default as required: the JSON always has them (maybe null)
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    value: float = Field(description="the threshold: accept when score >= value")
    target_far: float = Field(description="the false-accept rate asked for")
    achieved_far: float = Field(description="the false-accept rate on the impostor scores it was set on (<= target)")
    n_impostors: int = Field(
        ge=0,
        description="impostor scores it was set on: for identification, searches by someone not enrolled; for "
        "verification, comparisons with another person",
    )
    source: str = Field(description="where the impostor scores came from")
    below_resolution: bool = Field(
        description="true when target_far < 1 / n_impostors: too few impostors to measure that rate (the "
        "threshold is then the strictest the data allows)"
    )
    template: Template | None = Field(
        None, description="the template the scores used (`max` or `mean`); a gallery's answers warn under another"
    )
    gallery_identities: int | None = Field(
        None,
        ge=0,
        description="people enrolled when calibrated; a gallery's identify answers warn once it has 1.5 times as many",
    )
    calibrated: str | None = Field(None, description="when a gallery was calibrated, as local time YYYY-MM-DDTHH:MM:SS")
