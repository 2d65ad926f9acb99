"""Curves of any length, read cheaply from the blocks' summaries.

A downsampled read splits the steps asked for into ``max_points / 2`` buckets and keeps each
bucket's minimum and its maximum point: a one-step spike survives any zoom level, which stride
or random sampling cannot promise. A block that lies inside one bucket gives its stored
minimum and maximum (no packed array is read); a block across buckets is unpacked and cut at
their edges, so every bucket's extremes are its own points, exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable

from sqlalchemy import Connection

from api.metrics.blocks import Block, extreme_indexes
from api.metrics.points import block_summaries, blocks_at

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
    across: list[int] = []
    for first, last, _, min_s, min_v, max_s, max_v in block_summaries(conn, run_id, key, lo, hi):
        if last < lo:
            continue  # the block before lo
        if lo <= first and last <= hi and (first - lo) // width == (last - lo) // width:
            parts.append((first, min_s, min_v, max_s, max_v))
        else:
            across.append(first)
    for block in blocks_at(conn, run_id, key, across).values():
        parts += bucket_parts(block.within(lo, hi), lo, width)
    return merge_buckets(parts, lo, hi, width, n_buckets)


def bucket_parts(block: Block, lo: int, width: int) -> list[Part]:
    """A block's points cut into the buckets of ``width`` steps from ``lo``: each piece's
    extremes."""
    steps, values = block.steps, block.values
    out: list[Part] = []
    i = 0
    while i < len(steps):
        edge = lo + ((steps[i] - lo) // width + 1) * width
        end = bisect_left(steps, edge, i)
        found = extreme_indexes(values[i:end])
        if found is None:
            out.append((steps[i], None, None, None, None))
        else:
            low, high = found[0] + i, found[1] + i
            out.append((steps[i], steps[low], values[low], steps[high], values[high]))
        i = end
    return out


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
