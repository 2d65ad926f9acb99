"""What the metric endpoints take and answer: points in, curves and comparisons out."""

from __future__ import annotations

import math
from typing import Annotated, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, with_config
from typing_extensions import TypedDict

from api.core.schemas import In
from api.metrics.blocks import MAX_STEP
from api.runs.models import Verdict
from api.runs.schemas import RunOut

MetricKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_./:-]+$")]
# A metric's step: any int64 from 0 (a series' blocks hold steps up to 2**63 - 1).
MetricStep = Annotated[int, Field(ge=0, le=MAX_STEP)]


class MetricPointIn(In):
    key: MetricKey
    step: MetricStep
    # Any float, NaN and +-Infinity included (as JSON numbers or the strings "NaN",
    # "Infinity", "-Infinity").
    value: float
    wall_time: float | None = Field(default=None, description="unix seconds; default: now")

    @field_validator("wall_time")
    @classmethod
    def _finite_time(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("wall_time must be a finite number")
        return v


WallTime = Annotated[float, Field(allow_inf_nan=False, description="unix seconds")]


class MetricSeriesIn(In):
    """One key's points as columns: ``steps[i]``, ``values[i]`` (and ``wall_times[i]``) are
    one point. What a logger holds anyway: half the bytes of the same points one by one, a
    seventh of the time to validate (fitlens's client sends these)."""

    key: MetricKey
    steps: list[MetricStep]
    values: list[float]  # NaN and +-Infinity as in MetricPointIn
    wall_times: list[WallTime] | None = Field(default=None, description="default: now")


class MetricBatch(In):
    """Points one by one, a series' points as columns, or both (points first): a step
    repeated in one batch keeps its first value."""

    points: list[MetricPointIn] = Field(default_factory=list)
    series: list[MetricSeriesIn] = Field(default_factory=list)


# The ingest hot path validates with TypedDicts straight from the JSON bytes: the same rules as
# MetricBatch (which documents the body in OpenAPI), about 7x faster than building models.
@with_config(ConfigDict(extra="forbid"))
class MetricPointDict(TypedDict):
    key: MetricKey
    step: MetricStep
    value: float
    wall_time: NotRequired[WallTime | None]


@with_config(ConfigDict(extra="forbid"))
class MetricSeriesDict(TypedDict):
    key: MetricKey
    steps: list[MetricStep]
    values: list[float]
    wall_times: NotRequired[list[WallTime] | None]


@with_config(ConfigDict(extra="forbid"))
class MetricBatchDict(TypedDict):
    points: NotRequired[list[MetricPointDict]]
    series: NotRequired[list[MetricSeriesDict]]


METRIC_BATCH = TypeAdapter(MetricBatchDict)


def series_problem(series: list[MetricSeriesDict]) -> tuple[str, str] | None:
    """(field, message) of the first series whose columns differ in length; None if none."""
    for i, one in enumerate(series):
        n = len(one["steps"])
        walls = one.get("wall_times")
        for name, column in (("values", one["values"]), ("wall_times", walls)):
            if column is not None and len(column) != n:
                return f"series.{i}.{name}", f"{len(column)} {name} for {n} steps"
    return None


class Series(BaseModel):
    # Non-finite values as the strings "NaN", "Infinity", "-Infinity", by the fast serializer.
    model_config = ConfigDict(ser_json_inf_nan="strings")

    key: str
    steps: list[int]
    values: list[float]
    total_points: int  # points stored for this key (whole run)
    downsampled: bool
    # Full-resolution pages (downsample=false): the ``start`` of the next page; null at the end.
    next_start: int | None = None


class Curves(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="strings")

    run_id: int
    revision: int
    series: list[Series]


class RunSummary(BaseModel):
    best_epoch: int | None  # step of the lowest val_loss
    min_val_loss: float | None
    final_gap: float | None
    final_val_accuracy: float | None  # at the last epoch trained
    final_train_loss: float | None
    # The model the evaluation scored: after an early stop with restore, the best epoch's
    # weights, not the last epoch's; its validation accuracy is the one to compare.
    evaluated_epoch: int | None = None
    val_accuracy: float | None = None
    onset_epoch: int | None = None  # overfitting began after this epoch (the diagnosis)
    verdict: Verdict | None = None


class CompareRun(BaseModel):
    run: RunOut
    summary: RunSummary
    series: list[Series]


class Comparison(BaseModel):
    keys: list[str]
    runs: list[CompareRun]
