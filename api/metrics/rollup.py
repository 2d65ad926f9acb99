"""Summaries that make curves of any length cheap to read, kept up to date on ingest.

Every ingested point also updates
- ``metric_series``: one row per (run, key) with count, first/last step, last value, min, max;
- ``metric_rollup``: min and max (with their steps) per bucket of 16, 256, 4096, 65536 and
  1048576 steps.
A curve read picks the finest rollup level that keeps the rows read to a few thousand and
merges them into ``max_points / 2`` buckets, each contributing its minimum and its maximum point:
a one-step spike survives any zoom level, which stride or random sampling cannot promise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, or_

ROLLUP_LEVELS = (1, 2, 3, 4, 5)  # bucket width 16**level steps
ROLLUP_BASE = 16


def aggregate(
    points: list[tuple[str, int, float | None]],
) -> tuple[dict[str, Agg], dict[tuple[str, int, int], Agg]]:
    """The series and every rollup level's buckets of new points: (key -> Agg, (key, level,
    bucket) -> Agg). Level 1 from the points; every coarser level (and the series) by merging
    the finer one: ~1.07 aggregations per point instead of one per level."""
    width = ROLLUP_BASE
    rollups: dict[tuple[str, int, int], Agg] = {}
    level_aggs: dict[tuple[str, int], Agg] = {}
    for key, step, value in points:
        bk = (key, step // width)
        agg = level_aggs.get(bk)
        if agg is None:
            agg = level_aggs[bk] = Agg(step)
        agg.add(step, value)
    for level in ROLLUP_LEVELS:
        for (key, bucket), agg in level_aggs.items():
            rollups[(key, level, bucket)] = agg
        if level == ROLLUP_LEVELS[-1]:
            break
        coarser: dict[tuple[str, int], Agg] = {}
        for (key, bucket), agg in level_aggs.items():
            ck = (key, bucket // ROLLUP_BASE)
            target = coarser.get(ck)
            if target is None:
                coarser[ck] = agg.copy()
            else:
                target.merge(agg)
        level_aggs = coarser
    series: dict[str, Agg] = {}
    for (key, _), agg in level_aggs.items():
        target = series.get(key)
        if target is None:
            series[key] = agg.copy()
        else:
            target.merge(agg)
    return series, rollups


class Agg:
    """Running count / first / last / min / max of (step, value) pairs; NaN (None) uncounted
    in min and max."""

    __slots__ = ("count", "first", "last", "last_value", "max_s", "max_v", "min_s", "min_v")

    def __init__(self, step: int) -> None:
        self.count = 0
        self.first = self.last = step
        self.last_value: float | None = None
        self.min_s: int | None = None
        self.min_v: float | None = None
        self.max_s: int | None = None
        self.max_v: float | None = None

    def add(self, step: int, value: float | None) -> None:
        self.count += 1
        if step < self.first:
            self.first = step
        if step >= self.last:
            self.last, self.last_value = step, value
        if value is not None:
            if self.min_v is None or value < self.min_v:
                self.min_v, self.min_s = value, step
            if self.max_v is None or value > self.max_v:
                self.max_v, self.max_s = value, step

    def copy(self) -> Agg:
        other = Agg(self.first)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.first = min(self.first, other.first)
        if other.last >= self.last:
            self.last, self.last_value = other.last, other.last_value
        if other.min_v is not None and (self.min_v is None or other.min_v < self.min_v):
            self.min_v, self.min_s = other.min_v, other.min_s
        if other.max_v is not None and (self.max_v is None or other.max_v > self.max_v):
            self.max_v, self.max_s = other.max_v, other.max_s

    def series_row(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_step": self.first,
            "last_step": self.last,
            "last_value": self.last_value,
            "min_value": self.min_v,
            "min_step": self.min_s,
            "max_value": self.max_v,
            "max_step": self.max_s,
        }

    def rollup_row(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_step": self.first,
            "min_value": self.min_v,
            "min_step": self.min_s,
            "max_value": self.max_v,
            "max_step": self.max_s,
        }


def minmax_set(t: Any, ex: Any) -> dict[str, Any]:
    """ON CONFLICT updates that merge an incoming min/max into the stored one."""
    lower = or_(t.min_value.is_(None), ex.min_value < t.min_value)
    higher = or_(t.max_value.is_(None), ex.max_value > t.max_value)
    lower = and_(ex.min_value.is_not(None), lower)
    higher = and_(ex.max_value.is_not(None), higher)
    return {
        "min_value": case((lower, ex.min_value), else_=t.min_value),
        "min_step": case((lower, ex.min_step), else_=t.min_step),
        "max_value": case((higher, ex.max_value), else_=t.max_value),
        "max_step": case((higher, ex.max_step), else_=t.max_step),
    }


def merge_buckets(
    parts: Iterable[tuple[int, int | None, float | None, int | None, float | None]],
    lo: int,
    hi: int,
    width: int,
    n_buckets: int,
) -> tuple[list[int], list[float]]:
    """Merge (first_step, min_step, min, max_step, max) parts into output buckets of ``width``
    steps; each bucket yields its min and max point, in step order."""
    mins: dict[int, tuple[float, int]] = {}
    maxs: dict[int, tuple[float, int]] = {}
    empty: dict[int, int] = {}  # buckets holding only NaN points: shown as one NaN
    for first, min_s, min_v, max_s, max_v in parts:
        b = min(max((first - lo) // width, 0), n_buckets - 1)
        if min_v is None or min_s is None or max_s is None or max_v is None:
            if lo <= first <= hi:
                empty.setdefault(b, first)
            continue
        if lo <= min_s <= hi and (b not in mins or min_v < mins[b][0]):
            mins[b] = (min_v, min_s)
        if lo <= max_s <= hi and (b not in maxs or max_v > maxs[b][0]):
            maxs[b] = (max_v, max_s)
    points: dict[int, float] = {}
    for b, step in empty.items():
        if b not in mins and b not in maxs:
            points[step] = math.nan
    for table in (mins, maxs):
        for value, step in table.values():
            points[step] = value
    steps = sorted(points)
    return steps, [points[s] for s in steps]
