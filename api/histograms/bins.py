"""Histograms on other bins: several steps or runs drawn on shared edges (heat-maps, overlays)."""

from __future__ import annotations

from collections.abc import Sequence


def shared_edges(all_edges: Sequence[Sequence[float]], bins: int) -> list[float]:
    lo = min(e[0] for e in all_edges)
    hi = max(e[-1] for e in all_edges)
    # Interpolated, not lo + (hi - lo) * t: hi - lo overflows to inf for edges near +-1e308.
    return [lo * (1 - i / bins) + hi * (i / bins) for i in range(bins + 1)]


def rebin(
    edges: Sequence[float], counts: Sequence[float], new_edges: Sequence[float]
) -> list[float]:
    """Move counts onto new bin edges, spreading each source bin's count over the new bins in
    proportion to their overlap (a uniform density within each source bin). The total is kept."""
    out = [0.0] * (len(new_edges) - 1)
    j = 0
    for i, count in enumerate(counts):
        a, b = edges[i], edges[i + 1]
        if count == 0 or b <= a:
            continue
        while j > 0 and new_edges[j] > a:
            j -= 1
        while j < len(out) and new_edges[j + 1] <= a:
            j += 1
        k = j
        # Halved before subtracting: a width like 1e308 - (-1e308) would overflow to inf.
        width = b / 2 - a / 2
        if width <= 0:  # a bin narrower than the smallest float: it is a point
            out[min(j, len(out) - 1)] += count
            continue
        while k < len(out) and new_edges[k] < b:
            overlap = min(b, new_edges[k + 1]) / 2 - max(a, new_edges[k]) / 2
            if overlap > 0:
                out[k] += count * (overlap / width)
            k += 1
    # Float rounding can leave a sliver of the total outside [lo, hi]; put it back.
    total, placed = float(sum(counts)), sum(out)
    if placed > 0 and total > 0:
        out = [c * total / placed for c in out]
    return out
