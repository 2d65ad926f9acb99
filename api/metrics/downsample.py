"""Curves of any length, read cheaply from the blocks' summaries.

A downsampled read splits the steps asked for into ``max_points / 2`` buckets and keeps each
bucket's minimum and its maximum point (the first of ties; NaN is neither, and a bucket of NaN
only shows one NaN): a one-step spike survives any zoom level, which stride or random sampling
cannot promise.

A block that lies inside one bucket is read as its summary alone: its stored minimum and
maximum stand for it, two points (no packed array is read). The blocks across buckets are
unpacked. Both go, in step order, into one array that numpy cuts at the buckets' edges and
reduces, so every bucket's extremes are its own points, exactly: a Python loop over a
100,000-point read cost 15 ms, numpy's reductions a tenth of that. numpy is imported on the
first such read, so a server that never reads a long curve never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from api.metrics.blocks import MAX_STEP, RAW, payload
from api.metrics.points import block_summaries

if TYPE_CHECKING:
    import numpy as np


def downsample(
    conn: Connection, run_id: int, key: str, lo: int, hi: int, max_points: int
) -> tuple[list[int], list[float]]:
    """About ``max_points`` points of (run, key) from ``lo`` to ``hi``: each bucket's minimum
    and maximum, in step order."""
    n_buckets = max(1, max_points // 2)
    width = -(-(hi - lo + 1) // n_buckets)  # ceil; 2**63 for one bucket over every step
    rows = block_summaries(conn, run_id, key, lo, hi, min(width, MAX_STEP))
    steps, values = _points([row for row in rows if row[1] >= lo], lo, hi)
    return bucket_extremes(steps, values, lo, width, n_buckets)


def _points(rows: Sequence[Any], lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The points from ``lo`` to ``hi`` that can be a bucket's extreme, in step order: every
    point of a block across buckets, the minimum and maximum of one inside a bucket (its first
    step, as NaN, where it holds NaN only)."""
    import numpy as np

    steps: list[np.ndarray] = []
    values: list[np.ndarray] = []
    summary_steps: list[int] = []  # of blocks inside a bucket, since the last block across
    summary_values: list[float] = []
    for first, _last, count, min_s, min_v, max_s, max_v, packed_steps, packed_values in rows:
        if packed_values is None:
            if min_s is None:
                summary_steps.append(first)
                summary_values.append(math.nan)
            else:
                low, high = sorted([(min_s, min_v), (max_s, max_v)])
                summary_steps += [low[0], high[0]] if low[0] != high[0] else [low[0]]
                summary_values += [low[1], high[1]] if low[0] != high[0] else [low[1]]
            continue
        if summary_steps:
            steps.append(np.array(summary_steps, dtype=np.int64))
            values.append(np.array(summary_values, dtype=np.float64))
            summary_steps, summary_values = [], []
        steps.append(_block_steps(np, first, count, packed_steps))
        values.append(_block_values(np, packed_values))
    steps.append(np.array(summary_steps, dtype=np.int64))
    values.append(np.array(summary_values, dtype=np.float64))
    all_steps, all_values = np.concatenate(steps), np.concatenate(values)
    cut = slice(np.searchsorted(all_steps, lo), np.searchsorted(all_steps, hi, side="right"))
    return all_steps[cut], all_values[cut]


def _block_steps(np: Any, first: int, count: int, packed: bytes | None) -> np.ndarray:
    if packed is None:  # dense
        return first + np.arange(count, dtype=np.int64)
    gaps = np.frombuffer(payload(packed), dtype="<i8")
    return first + np.concatenate(([0], np.cumsum(gaps)))


def _block_values(np: Any, packed: bytes) -> np.ndarray:
    if packed[0] == RAW:  # as values are written: read in place, no copy
        return np.frombuffer(packed, dtype="<f8", offset=1)
    return np.frombuffer(payload(packed), dtype="<f8")


def bucket_extremes(
    steps: np.ndarray, values: np.ndarray, lo: int, width: int, n_buckets: int
) -> tuple[list[int], list[float]]:
    """Per bucket of ``width`` steps from ``lo`` holding points (``steps`` ascending), its
    minimum and maximum point, or its first step as NaN when it holds NaN only; in step
    order."""
    import numpy as np

    if not len(steps):
        return [], []
    # Bucket k holds the steps from lo + k * width (each edge fits int64: it is below hi).
    edges = np.array([width * k for k in range(1, n_buckets)], dtype=np.int64)
    cuts = np.searchsorted(steps - lo, edges)
    starts, ends = np.concatenate(([0], cuts)), np.concatenate((cuts, [len(steps)]))
    held = starts < ends
    starts, ends = starts[held], ends[held]
    low_at = _first_equal(values, np.fmin.reduceat(values, starts), starts, ends)
    high_at = _first_equal(values, np.fmax.reduceat(values, starts), starts, ends)
    found = low_at >= 0
    kept_steps = np.concatenate(
        (steps[low_at[found]], steps[high_at[found]], steps[starts[~found]])
    )
    kept_values = np.concatenate(
        (values[low_at[found]], values[high_at[found]], np.full(int((~found).sum()), np.nan))
    )
    ordered, first = np.unique(kept_steps, return_index=True)
    return ordered.tolist(), kept_values[first].tolist()


def _first_equal(
    values: np.ndarray, best: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Per segment ``starts[i]:ends[i]``, the index of its first value equal to ``best[i]``
    (fmin's or fmax's: NaN only where the segment is all NaN, which nothing equals); -1 if
    none."""
    import numpy as np

    hits = np.flatnonzero(values == np.repeat(best, ends - starts))
    if not len(hits):
        return np.full(len(starts), -1, dtype=np.int64)
    at = np.searchsorted(hits, starts)
    first = hits[np.minimum(at, len(hits) - 1)]
    return np.where((at < len(hits)) & (first < ends), first, -1)
