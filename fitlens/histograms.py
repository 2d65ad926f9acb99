"""Weight histograms of your own model, in the API's shape, computed with numpy: the client
needs no torch of its own (a torch module's parameters are read through ``named_parameters``
and copied to the host one by one).

The bins follow the trainer's (trainer.stats, which bins on the device): they span the finite
values (NaN and +-Inf are counted apart), and their edges are finite and strictly increasing
even for huge or constant values; tests/test_histograms_client.py checks that both agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

# Bins at least this much of the values' magnitude wide (as trainer.stats): float64 then tells
# every edge apart, however large the values.
_MIN_RELATIVE_BIN = 2.0**-40


def model_histograms(
    model: Any, step: int, bins: int = 64, near_zero: float = 1e-3
) -> list[dict[str, Any]]:
    """One histogram per non-empty parameter of a torch module (anything with
    ``named_parameters()`` whose values have ``detach().cpu().numpy()``)."""
    params = ((n, p.detach().cpu().numpy()) for n, p in model.named_parameters())
    return histograms(((n, v) for n, v in params if v.size > 0), step, bins, near_zero)


def histograms(
    params: Iterable[tuple[str, Any]], step: int, bins: int = 64, near_zero: float = 1e-3
) -> list[dict[str, Any]]:
    """One histogram per (name, array) in the API's shape (POST /runs/{id}/histograms)."""
    return [histogram(name, values, step, bins, near_zero) for name, values in params]


def histogram(
    param: str, values: Any, step: int, bins: int = 64, near_zero: float = 1e-3
) -> dict[str, Any]:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = np.isfinite(flat)
    lo, hi = _span(flat[finite], bins)
    fractions = np.arange(bins + 1, dtype=np.float64) / bins
    edges = lo * (1 - fractions) + hi * fractions
    position = (np.where(finite, flat, lo) / 2 - lo / 2) / (hi / 2 - lo / 2)
    index = np.clip((position * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, weights=finite.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", over="ignore"):
        stats = {
            "mean": float(flat.mean()),
            "std": float(flat.std()),
            "min": float(flat.min()),
            "max": float(flat.max()),
            "l1": float(np.abs(flat).sum()),
            "l2": float(np.sqrt(np.square(flat).sum())),
            "near_zero": float((np.abs(flat) < near_zero).mean()),
        }
    return {
        "param": param,
        "step": step,
        "numel": int(flat.size),
        "edges": edges.tolist(),
        "counts": [int(c) for c in counts],
        **stats,
        "nan_count": int(np.isnan(flat).sum()),
        "posinf_count": int(np.isposinf(flat).sum()),
        "neginf_count": int(np.isneginf(flat).sum()),
    }


def _span(finite: np.ndarray, bins: int) -> tuple[float, float]:
    """The finite values' range, widened around its centre when too narrow to split (a
    constant gets a range of at least 1); halves before subtracting, so +-1.8e308 cannot
    overflow."""
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    least = max(abs(lo), abs(hi)) * (_MIN_RELATIVE_BIN * bins)
    if not hi > lo:
        least = max(least, 1.0)
    if (hi / 2 - lo / 2) * 2 < least:
        centre = lo / 2 + hi / 2
        lo, hi = centre - least / 2, centre + least / 2
    return lo, hi
