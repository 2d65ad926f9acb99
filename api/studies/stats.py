"""The statistics of a study (pure: numbers in, numbers out; numpy and scipy do the work).

- Curves per configuration: mean, sample standard deviation (ddof=1), min, max and n of each
  metric at each step over the configuration's members. Members that stopped early have no
  points past their last epoch, so n falls there: the data says so.
- Summary values (a member's diagnosis: min val loss, best epoch, ...) per configuration:
  mean, std, min, max, n.
- Effects against a baseline configuration: the paired differences of a summary value over
  matching replicates (the same fold and seed), their mean, a 95% confidence interval and a
  p-value from Student's t: corrected for overlapping training sets when the members are
  folds (Nadeau and Bengio 2003), plain for seed repeats; p-values Holm-adjusted over one
  read's configurations x summary values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

CONFIDENCE = 0.95
# numpy and scipy are imported where they are used: an API that serves no study never loads
# them (tests/api/test_isolation.py keeps the server's start lean).


def _clean(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def describe(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, std (ddof=1; null under two values), min, max and n of the finite values."""
    import numpy as np

    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(finite.size)
    if n == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": _clean(finite.mean()),
        "std": _clean(finite.std(ddof=1)) if n > 1 else None,
        "min": _clean(finite.min()),
        "max": _clean(finite.max()),
        "n": n,
    }


def curve_bands(members: Sequence[Mapping[int, float]]) -> dict[str, list[Any]]:
    """Per step (the union of the members' steps): mean, std, min, max and n over the members
    holding a finite value there. Ready to plot as a line with a band."""
    steps = sorted({s for m in members for s in m})
    out: dict[str, list[Any]] = {k: [] for k in ("steps", "mean", "std", "min", "max", "n")}
    for step in steps:
        d = describe([m.get(step) for m in members])
        out["steps"].append(step)
        for key in ("mean", "std", "min", "max", "n"):
            out[key].append(d[key])
    return out


def paired_effect(
    baseline: Mapping[int, float | None],
    other: Mapping[int, float | None],
    inflation: float | None = None,
) -> dict[str, Any]:
    """other - baseline over the replicates both have a finite value for: the mean paired
    difference, its 95% interval and two-sided p-value from Student's t with J - 1 degrees of
    freedom (J pairs). ``inflation`` (n_test / n_train of the members) makes it the corrected
    resampled t-test of Nadeau and Bengio (2003) for cross-validation, whose training sets
    overlap: the variance of the mean is s^2 * (1/J + n_test/n_train) instead of s^2 / J
    (s^2: the differences' sample variance). None: the plain paired t-test (seed repeats on
    one fixed split: scipy.stats.ttest_rel)."""
    import numpy as np
    from scipy import stats

    pairs: list[tuple[float, float]] = []
    for r in sorted(set(baseline) & set(other)):
        b, o = baseline[r], other[r]
        if b is not None and o is not None and math.isfinite(b) and math.isfinite(o):
            pairs.append((b, o))
    n = len(pairs)
    if n == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None, "p_value": None}
    diff = np.array([o - b for b, o in pairs], dtype=float)
    mean = float(diff.mean())
    if n < 2:
        return {"n": n, "mean": mean, "ci_low": None, "ci_high": None, "p_value": None}
    if np.all(diff == diff[0]):  # no spread: the interval is the point, the test undefined
        return {"n": n, "mean": mean, "ci_low": mean, "ci_high": mean, "p_value": None}
    share = 1 / n if inflation is None else 1 / n + inflation
    se = math.sqrt(float(diff.var(ddof=1)) * share)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se
    p_value = 2 * float(stats.t.sf(abs(mean) / se, n - 1))
    return {
        "n": n,
        "mean": mean,
        "ci_low": _clean(mean - half),
        "ci_high": _clean(mean + half),
        "p_value": _clean(p_value),
    }


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of the p-values given (None stays None): the i-th smallest
    of m is multiplied by m - i + 1, capped at 1, and made non-decreasing in that order."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(ranked)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def mean_interval(values: Sequence[float | None]) -> dict[str, Any]:
    """The mean of the finite values and its 95% interval from Student's t (one sample:
    the members are the folds or seeds of one configuration); null bounds under two values."""
    import numpy as np
    from scipy import stats

    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(finite.size)
    if n == 0:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
    mean = float(finite.mean())
    if n < 2:
        return {"n": n, "mean": mean, "ci_low": None, "ci_high": None}
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=stats.sem(finite))
    return {"n": n, "mean": mean, "ci_low": _clean(low), "ci_high": _clean(high)}
