"""Metric points out: curves at any length (downsampled keeping every spike, zoomed, or page
by page at full resolution), their ETag validators, and every point in order for exports. How
a downsampled read stays cheap: api.metrics.downsample.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, select
from sqlmodel import col

from api.core.exceptions import NotFound
from api.core.store import StoreBase
from api.metrics.blocks import MAX_STEP
from api.metrics.downsample import downsample
from api.metrics.models import MetricSeries
from api.metrics.points import iter_blocks, read_points
from api.metrics.schemas import Series
from api.runs.access import RunAccess
from api.runs.models import Run


class MetricReads(StoreBase):
    """The metrics domain's reads; built with the runs' access (a curve of a run that is gone
    is NotFound)."""

    def __init__(self, access: RunAccess) -> None:
        super().__init__(access.engine)
        self.access = access

    def curves_state(self, run_id: int, keys: Sequence[str] | None) -> CurvesState:
        """The state of a run's curves (all, or ``keys``): its attempt and each series' span,
        in one query; its validator is what a curves read's ETag is made of."""
        params: dict[str, Any] = {"run_id": run_id}
        if keys:
            params["keys"] = list(keys)
        with self.reader.connect() as conn:
            rows = conn.execute(_SERIES_STATE_OF if keys else _SERIES_STATE, params).all()
        if not rows:
            raise NotFound(f"run {run_id} not found")
        spans = {r[1]: Span(*r[1:]) for r in rows if r[1] is not None}
        return CurvesState(rows[0][0], spans)

    def get_curves(
        self,
        run_id: int,
        keys: Sequence[str] | None,
        max_points: int,
        start: int | None = None,
        end: int | None = None,
        downsample: bool = True,
        state: CurvesState | None = None,
    ) -> list[Series]:
        """Per key, the points from ``start`` to ``end``: downsampled to ``max_points`` when
        there are more, or (``downsample=False``) the first ``max_points`` of them at full
        resolution with ``next_start``, the step a next page starts from. ``state``: the
        curves' state as read for the ETag (read again without it); the points read are the
        ones up to its last steps."""
        found = (state or self.curves_state(run_id, keys)).spans
        order = list(keys) if keys else sorted(found)
        with self.reader.connect() as conn:
            out = []
            for key in order:
                s = found.get(key)
                if s is None:
                    out.append(_series_of(key, [], [], 0, downsampled=False))
                elif downsample:
                    out.append(self.series(conn, run_id, s, max_points, start, end))
                else:
                    out.append(self._page(conn, run_id, s, max_points, start, end))
            return out

    def _page(
        self,
        conn: Connection,
        run_id: int,
        s: SeriesSpan,
        limit: int,
        start: int | None,
        end: int | None,
    ) -> Series:
        lo, hi = _span(s, start, end)
        page = read_points(conn, run_id, s.key, lo, hi, limit + 1)
        more = len(page.steps) > limit
        if more:
            del page.steps[limit:], page.values[limit:]
        return _series_of(
            s.key,
            page.steps,
            page.values,
            s.count,
            downsampled=False,
            next_start=page.steps[-1] + 1 if more else None,
        )

    def series(
        self,
        conn: Connection,
        run_id: int,
        s: SeriesSpan,
        max_points: int,
        start: int | None,
        end: int | None,
    ) -> Series:
        lo, hi = _span(s, start, end)
        if hi < lo:
            return _series_of(s.key, [], [], s.count, downsampled=False)
        if s.count <= max_points or hi - lo + 1 <= max_points:
            read = read_points(conn, run_id, s.key, lo, hi)
            return _series_of(s.key, read.steps, read.values, s.count, downsampled=False)
        steps, values = downsample(conn, run_id, s.key, lo, hi, max_points)
        return _series_of(s.key, steps, values, s.count, downsampled=True)

    def iter_metric_batches(
        self, run_id: int, keys: Sequence[str] | None = None, size: int = 10_000
    ) -> Iterator[list[tuple[str, int, float, float]]]:
        """Every point of a run (or of ``keys``), ordered by key then step, in batches of
        about ``size`` points, for exports of any length: blocks are read a few at a time,
        so memory stays flat whatever the run's length."""
        with self.engine.connect() as conn:
            query = select(col(MetricSeries.key)).where(col(MetricSeries.run_id) == run_id)
            if keys:
                query = query.where(col(MetricSeries.key).in_(keys))
            stored = sorted(conn.execute(query).scalars())
            batch: list[tuple[str, int, float, float]] = []
            for key in stored:
                for block in iter_blocks(conn, run_id, key, 0, MAX_STEP, walls=True):
                    batch += zip(repeat(key), block.steps, block.values, block.walls, strict=False)
                    if len(batch) >= size:
                        yield batch
                        batch = []
            if batch:
                yield batch


class SeriesSpan(Protocol):
    """What a read needs of a series' summary (a MetricSeries, or a row of one)."""

    @property
    def key(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def first_step(self) -> int: ...
    @property
    def last_step(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Span:
    key: str
    count: int
    first_step: int
    last_step: int


@dataclass(frozen=True, slots=True)
class CurvesState:
    """A run's attempt and the spans of its series (all, or the keys asked for)."""

    attempt: int
    spans: dict[str, Span]

    @property
    def validator(self) -> str:
        """The run's attempt and, per key, how many points it has and its last step. Points
        are never rewritten (a repeat is ignored), so these change exactly when the curves
        do: a heartbeat, or a point of another key, leaves them alone (and a poll gets its
        304)."""
        state = ";".join(f"{k}:{s.count}:{s.last_step}" for k, s in sorted(self.spans.items()))
        return f"a{self.attempt}|{state}"


def _span(s: SeriesSpan, start: int | None, end: int | None) -> tuple[int, int]:
    """The steps a read covers: ``start``..``end`` within the series' own first and last."""
    lo = s.first_step if start is None else max(start, s.first_step)
    hi = s.last_step if end is None else min(end, s.last_step)
    return lo, hi


def _series_of(
    key: str,
    steps: list[int],
    values: list[float],
    total: int,
    downsampled: bool,
    next_start: int | None = None,
) -> Series:
    # Built from the database's own blocks (no validation to repeat: up to 100,000 points).
    return Series.model_construct(
        key=key,
        steps=steps,
        values=values,
        total_points=total,
        downsampled=downsampled,
        next_start=next_start,
    )


# Built once (they run on every poll): the run (a row even without series: it exists), its
# attempt and the spans of its series, all keys or some.
def _series_state(keys: bool) -> Any:
    on = col(MetricSeries.run_id) == Run.id
    if keys:
        on = and_(on, col(MetricSeries.key).in_(bindparam("keys", expanding=True)))
    return (
        select(
            col(Run.attempt),
            col(MetricSeries.key),
            col(MetricSeries.count),
            col(MetricSeries.first_step),
            col(MetricSeries.last_step),
        )
        .select_from(Run)
        .outerjoin(MetricSeries, on)
        .where(col(Run.id) == bindparam("run_id"))
    )


_SERIES_STATE = _series_state(keys=False)
_SERIES_STATE_OF = _series_state(keys=True)
