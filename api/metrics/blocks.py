"""A series' points packed in blocks: the codec, and where new points go.

A series (run, key) is stored as blocks of up to ``BLOCK_POINTS`` points with consecutive
steps; blocks never overlap, so a step is found in one block at most. A block's row holds its
first and last step, its count, its minimum and maximum (with their steps; NaN is neither) and
three packed arrays:
- steps: NULL when the block is dense (every step from first to last: an epoch or batch log),
  else the int64 gaps between consecutive steps (steps up to 2**63 - 1 fit);
- values and wall times: float64, bit for bit (NaN, +-Infinity, -0.0 and 1e308 come back as
  they went in).
Each array is one codec byte then its bytes: raw little-endian, or zlib when that saves an
eighth or more (the steps' gaps and the wall times: a request's points share one wall time,
and a tail rewritten by every append writes that much less; values stay raw: a curve's noise
does not compress, and every read unpacks them).

Pure functions: the database work is api.metrics.points.
"""

from __future__ import annotations

import math
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from typing import Any

# Measured by bench/blocks.py: 1,024 points a block keeps a tail rewrite (an append of a few
# points) cheap and a full read at a hundred rows per 100,000 points.
BLOCK_POINTS = 1024
MAX_STEP = 2**63 - 1  # the largest step: int64's

_RAW, _ZLIB = 0, 1
_BIG_ENDIAN = sys.byteorder == "big"
_COMPRESS_FROM = 256  # bytes: smaller arrays are not worth a try


def pack(typecode: str, items: Any, compress: bool = True) -> bytes:
    data = array(typecode, items)
    if _BIG_ENDIAN:
        data.byteswap()
    raw = data.tobytes()
    if compress and len(raw) >= _COMPRESS_FROM:
        packed = zlib.compress(raw, 1)
        if len(packed) <= len(raw) - len(raw) // 8:
            return bytes([_ZLIB]) + packed
    return bytes([_RAW]) + raw


def payload(blob: bytes) -> bytes | memoryview:
    """A packed array's little-endian bytes, decompressed; a raw one's in place, not copied
    (a long read unpacks a hundred blocks per 100,000 points)."""
    return memoryview(blob)[1:] if blob[0] == _RAW else zlib.decompress(blob[1:])


def unpack(typecode: str, blob: bytes) -> list[Any]:
    data = array(typecode)
    data.frombytes(payload(blob))
    if _BIG_ENDIAN:
        data.byteswap()
    return data.tolist()


def pack_steps(steps: list[int]) -> bytes | None:
    if steps[-1] - steps[0] + 1 == len(steps):
        return None  # dense: first..last says it all
    return pack("q", [b - a for a, b in pairwise(steps)])


def unpack_steps(first: int, last: int, blob: bytes | None) -> list[int]:
    if blob is None:
        return list(range(first, last + 1))
    return list(accumulate(unpack("q", blob), initial=first))


@dataclass(slots=True)
class Block:
    """One block's points, steps ascending and unique."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)

    def row(self) -> tuple[Any, ...]:
        """(first, last, count, min_step, min_value, max_step, max_value, steps, values,
        wall times): the columns of metric_block after its run and key."""
        low, high = extremes(self.steps, self.values)
        return (
            self.steps[0],
            self.steps[-1],
            len(self.steps),
            *(low or (None, None)),
            *(high or (None, None)),
            pack_steps(self.steps),
            # Values stay raw: a real curve's noise does not compress, and reads unpack them.
            pack("d", self.values, compress=False),
            pack("d", self.walls),
        )

    def part(self, start: int, end: int) -> Block:
        return Block(self.steps[start:end], self.values[start:end], self.walls[start:end])

    def within(self, lo: int, hi: int) -> Block:
        """The points from step ``lo`` to ``hi``."""
        if self.steps[0] >= lo and self.steps[-1] <= hi:
            return self
        return self.part(bisect_left(self.steps, lo), bisect_right(self.steps, hi))

    def extend(self, other: Block) -> None:
        self.steps += other.steps
        self.values += other.values
        self.walls += other.walls

    def merge(self, new: Block) -> int:
        """Add ``new``'s points whose steps this block lacks (a stored point is kept as it
        was: retries are idempotent); how many were added. ``new`` loses the duplicates."""
        if not self.steps or new.steps[0] > self.steps[-1]:
            added = new
        else:
            have = set(self.steps)
            keep = [i for i, s in enumerate(new.steps) if s not in have]
            added = Block(
                [new.steps[i] for i in keep],
                [new.values[i] for i in keep],
                [new.walls[i] for i in keep],
            )
        new.steps, new.values, new.walls = added.steps, added.values, added.walls
        if not added.steps:
            return 0
        if not self.steps or added.steps[0] > self.steps[-1]:
            self.extend(added)
        else:
            rows = sorted(
                zip(
                    self.steps + added.steps,
                    self.values + added.values,
                    self.walls + added.walls,
                    strict=True,
                )
            )
            self.steps = [r[0] for r in rows]
            self.values = [r[1] for r in rows]
            self.walls = [r[2] for r in rows]
        return len(added.steps)

    def chunks(self, size: int) -> list[Block]:
        """This block cut into blocks of ``size`` points at most (the last may be shorter:
        the tail, which the next append fills)."""
        return [self.part(i, i + size) for i in range(0, len(self.steps), size)]


def extremes(
    steps: list[int], values: list[float]
) -> tuple[tuple[int, float] | None, tuple[int, float] | None]:
    """((step, min), (step, max)) of the values, NaN left out; None when all are NaN. Ties:
    the first."""
    found = extreme_indexes(values)
    if found is None:
        return None, None
    low, high = found
    return (steps[low], values[low]), (steps[high], values[high])


def extreme_indexes(values: list[float]) -> tuple[int, int] | None:
    """Where the minimum and the maximum are (the first of ties, NaN left out); None when
    there are only NaN. min() and index() run in C: a few microseconds a thousand values."""
    if not values:
        return None
    total = sum(values)
    if total != total:  # a NaN (or +inf and -inf together): compare only numbers
        numbers = [v for v in values if not math.isnan(v)]
        if not numbers:
            return None
    else:
        numbers = values
    return values.index(min(numbers)), values.index(max(numbers))


def place(steps: list[int], blocks: list[tuple[int, int]]) -> list[tuple[int | None, int, int]]:
    """Which stored block each new point goes to: ``steps`` ascending, ``blocks`` the stored
    (first, last) steps ascending. Answers (block's first step, or None when there are no
    blocks; start, end) slices of ``steps``. A point goes to the block holding its step, or
    else the block before it (an append extends the tail), or else the first block."""
    if not blocks:
        return [(None, 0, len(steps))]
    firsts = [b[0] for b in blocks]
    out: list[tuple[int | None, int, int]] = []
    i = 0
    while i < len(steps):
        at = max(bisect_right(firsts, steps[i]) - 1, 0)
        # Every step before the next block's first goes to this one.
        end = len(steps) if at + 1 == len(blocks) else bisect_right(steps, firsts[at + 1] - 1, i)
        out.append((firsts[at], i, end))
        i = end
    return out
