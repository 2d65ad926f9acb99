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
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from api.metrics.blocks import MAX_STEP, payload
from api.metrics.points import block_summaries

if TYPE_CHECKING:
    import numpy as np

_DOUBLE = struct.Struct("<d")


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
    step, as NaN, where it holds NaN only). Built in bulk: one join of the values' bytes, the
    dense steps from one ramp (numpy calls per block cost more than the blocks' points)."""
    import numpy as np

    firsts: list[int] = []  # per piece (a block across, or a summary's point): its first step,
    counts: list[int] = []  # its number of points,
    chunks: list[Any] = []  # its values' bytes
    gapped: list[tuple[int, int, bytes]] = []  # (piece, first, gaps) of blocks that are not dense
    for first, _last, count, min_s, min_v, max_s, max_v, packed_steps, packed_values in rows:
        if packed_values is None:
            for step, value in _summary_points(first, min_s, min_v, max_s, max_v):
                firsts.append(step)
                counts.append(1)
                chunks.append(_DOUBLE.pack(value))
            continue
        if packed_steps is not None:
            gapped.append((len(firsts), first, packed_steps))
        firsts.append(first)
        counts.append(count)
        chunks.append(payload(packed_values))
    values = np.frombuffer(b"".join(chunks), dtype="<f8")
    sizes = np.array(counts, dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    steps = np.arange(len(values), dtype=np.int64) + np.repeat(
        np.array(firsts, dtype=np.int64) - offsets, sizes
    )
    for piece, first, packed in gapped:
        gaps = np.frombuffer(payload(packed), dtype="<i8")
        at = int(offsets[piece])
        steps[at : at + len(gaps) + 1] = first + np.concatenate(([0], np.cumsum(gaps)))
    cut = slice(np.searchsorted(steps, lo), np.searchsorted(steps, hi, side="right"))
    return steps[cut], values[cut]


def _summary_points(
    first: int, min_s: int | None, min_v: float, max_s: int | None, max_v: float
) -> list[tuple[int, float]]:
    """What stands for a block inside one bucket: its minimum and maximum, in step order."""
    if min_s is None or max_s is None:
        return [(first, math.nan)]  # NaN only
    if min_s == max_s:
        return [(min_s, min_v)]
    return sorted([(min_s, min_v), (max_s, max_v)])


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
