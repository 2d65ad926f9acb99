"""What the histogram endpoints take and answer: per-step bins in, series and overlays out."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field, model_validator

from api.core.schemas import In, Step, Text


class HistogramSummary(BaseModel):
    """One histogram's summary numbers, as they come in and go out (the trainer's
    trainer.events.ParamHistogram has the same fields and names)."""

    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    l1: float | None = None  # sum |w|
    l2: float | None = None  # sqrt(sum w^2)
    near_zero: float | None = None  # fraction of |w| below the run's near_zero threshold
    # Values no bin can hold (a diverged parameter): counted apart from the bins.
    nan_count: int = Field(default=0, ge=0, le=2**62)
    posinf_count: int = Field(default=0, ge=0, le=2**62)
    neginf_count: int = Field(default=0, ge=0, le=2**62)


class HistogramIn(HistogramSummary, In):
    param: Text = Field(min_length=1, max_length=200)
    step: Step
    edges: list[float] = Field(min_length=2, max_length=4097)
    counts: list[float] = Field(min_length=1, max_length=4096)
    numel: int | None = Field(default=None, ge=0, le=2**62)

    @model_validator(mode="after")
    def _check_bins(self) -> HistogramIn:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError("edges: need exactly one more edge than counts")
        if not all(math.isfinite(e) for e in self.edges):
            raise ValueError("edges: must be finite numbers")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges: must be strictly increasing")
        if any(not math.isfinite(c) or c < 0 or c > 2**53 for c in self.counts):
            raise ValueError("counts: must be finite, non-negative and at most 2**53")
        if sum(self.counts) > 2**62:
            raise ValueError("counts: must add up to at most 2**62 (the numel a run can have)")
        return self


class HistogramBatch(In):
    histograms: list[HistogramIn] = Field(max_length=1000)


class HistogramStep(HistogramSummary):
    step: int
    edges: list[float]
    counts: list[float]
    numel: int


class HistogramSeries(BaseModel):
    run_id: int
    param: str
    # True when every step was re-binned onto the same edges (a heat-map over steps).
    shared_edges: bool
    steps: list[HistogramStep]


class HistogramIndex(BaseModel):
    run_id: int
    params: dict[str, list[int]]  # param -> steps that have a histogram


class OverlayRun(BaseModel):
    run_id: int
    name: str
    step: int
    counts: list[float]
    numel: int


class HistogramOverlay(BaseModel):
    param: str
    edges: list[float]
    runs: list[OverlayRun]
