"""Curves of any length, read cheaply from the blocks' summaries.

A downsampled read splits the steps asked for into ``max_points / 2`` buckets and keeps each
bucket's minimum and its maximum point: a one-step spike survives any zoom level, which stride
or random sampling cannot promise. A block that lies inside one bucket gives its stored
minimum and maximum (no packed array is read); the blocks across buckets are unpacked and cut
at their edges, so every bucket's extremes are its own points, exactly.

The unpacked points are bucketed with numpy (a 100,000-point read unpacks them all: a Python
loop over them cost 15 ms, numpy's reductions a tenth of that); numpy is imported on the first
such read, so a server that never reads a long curve never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from api.metrics.blocks import payload
from api.metrics.points import block_summaries

if TYPE_CHECKING:
    import numpy as np

# (first step, min step, min, max step, max): a block's or a bucket's part; None: only NaN.
Part = tuple[int, int | None, float | None, int | None, float | None]


def downsample(
    conn: Connection, run_id: int, key: str, lo: int, hi: int, max_points: int
) -> tuple[list[int], list[float]]:
    """About ``max_points`` points of (run, key) from ``lo`` to ``hi``: each bucket's minimum
    and maximum, in step order (a bucket of NaN only: one NaN)."""
    n_buckets = max(1, max_points // 2)
    width = -(-(hi - lo + 1) // n_buckets)  # ceil
    parts: list[Part] = []
    across: list[Any] = []
    for row in block_summaries(conn, run_id, key, lo, hi, width):
        first, last, count, min_s, min_v, max_s, max_v, steps, values = row
        if last < lo:
            continue  # the block before lo
        if values is None:  # inside one bucket: its summary is its part
            parts.append((first, min_s, min_v, max_s, max_v))
        else:
            across.append((first, last, count, steps, values))
    if across:
        parts += bucket_parts(across, lo, hi, width)
    return merge_buckets(parts, lo, hi, width, n_buckets)


def _arrays(rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The steps and values of packed blocks' rows (first, last, count, steps, values)."""
    import numpy as np

    steps, values = [], []
    for first, _, count, packed_steps, packed_values in rows:
        if packed_steps is None:
            steps.append(first + np.arange(count, dtype=np.int64))
        else:
            gaps = np.frombuffer(payload(packed_steps), dtype="<i8")
            steps.append(first + np.concatenate(([0], np.cumsum(gaps))))
        values.append(np.frombuffer(payload(packed_values), dtype="<f8"))
    return np.concatenate(steps), np.concatenate(values)


def bucket_parts(rows: Sequence[Any], lo: int, hi: int, width: int) -> list[Part]:
    """The points of the packed blocks ``rows`` from ``lo`` to ``hi`` cut into the buckets of
    ``width`` steps from ``lo``: each piece's extremes (the first of ties; NaN is neither)."""
    import numpy as np

    steps, values = _arrays(rows)  # in step order, as the blocks are
    keep = (steps >= lo) & (steps <= hi)
    steps, values = steps[keep], values[keep]
    if not len(steps):
        return []
    bucket = (steps - lo) // width
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(steps))))
    nan = np.isnan(values)
    low_at = _first_extreme(np.where(nan, np.inf, values), np.minimum, starts, segment, nan)
    high_at = _first_extreme(np.where(nan, -np.inf, values), np.maximum, starts, segment, nan)
    found = low_at >= 0
    low_at, high_at = np.where(found, low_at, 0), np.where(found, high_at, 0)
    return [
        (first, min_s, min_v, max_s, max_v) if ok else (first, None, None, None, None)
        for first, ok, min_s, min_v, max_s, max_v in zip(
            steps[starts].tolist(),
            found.tolist(),
            steps[low_at].tolist(),
            values[low_at].tolist(),
            steps[high_at].tolist(),
            values[high_at].tolist(),
            strict=True,
        )
    ]


def _first_extreme(
    values: np.ndarray, reduce: Any, starts: np.ndarray, segment: np.ndarray, nan: np.ndarray
) -> np.ndarray:
    """Per segment, the index of its first extreme value that is not NaN; -1 if none."""
    import numpy as np

    best = reduce.reduceat(values, starts)
    hits = np.flatnonzero((values == best[segment]) & ~nan)
    found = np.full(len(starts), -1, dtype=np.int64)
    owners, first_hit = np.unique(segment[hits], return_index=True)
    found[owners] = hits[first_hit]
    return found


def merge_buckets(
    parts: Iterable[Part], lo: int, hi: int, width: int, n_buckets: int
) -> tuple[list[int], list[float]]:
    """Merge parts into output buckets of ``width`` steps; each bucket yields its min and max
    point, in step order."""
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
