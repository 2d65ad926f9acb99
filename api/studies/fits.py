"""Curves fitted to a study's answers (pure: numbers in, numbers out; scipy does the work).

- A learning curve's power law: y = c + a * (n / n0)^(-b) for validation loss (c: the loss
  more data cannot remove) and y = a * (n / n0)^(-b) for the gap (which more data closes),
  n0 the largest size measured, so that a is the fitted excess there. Least squares on every
  member's value (scipy.optimize.curve_fit); 95% intervals from the parameters' covariance
  and Student's t with members - parameters degrees of freedom.
- A regularization path's choices, as glmnet and scikit-learn's path tools report them:
  lambda_min, the value with the lowest mean validation loss, and lambda_1se, the largest
  (most regularized) value whose mean is within one standard error of that minimum.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from api.studies.stats import CONFIDENCE

VAL_LOSS_LAW = "c + a * (n / n0)^(-b)"
GAP_LAW = "a * (n / n0)^(-b)"


def power_law(
    sizes: Sequence[float], values: Sequence[float | None], floor: bool
) -> dict[str, Any]:
    """The fit of ``values`` (one per member) against training-set ``sizes``: the law, n0,
    each parameter's estimate and interval, and ``fitted``; or why it cannot tell."""
    import numpy as np
    from scipy import optimize, stats

    pairs = [
        (n, v) for n, v in zip(sizes, values, strict=True) if v is not None and math.isfinite(v)
    ]
    law = VAL_LOSS_LAW if floor else GAP_LAW
    names = ["a", "b", "c"] if floor else ["a", "b"]
    out: dict[str, Any] = {"law": law, "n0": None, "fitted": False, "params": {}, "why": ""}
    distinct = len({n for n, _ in pairs})
    if distinct < len(names):
        out["why"] = f"{distinct} training-set sizes with values; this law needs {len(names)}"
        return out
    n0 = out["n0"] = max(n for n, _ in pairs)
    x = np.array([n / n0 for n, _ in pairs])
    y = np.array([v for _, v in pairs])

    def law_of(x: Any, a: float, b: float, c: float = 0.0) -> Any:
        return c + a * np.power(x, -b)

    start = [max(float(y.max() - y.min()), 1e-6), 0.5] + ([float(y.min())] if floor else [])
    low = [0.0, 0.0] + ([-np.inf] if floor else [])
    high = [np.inf, 10.0] + ([np.inf] if floor else [])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", optimize.OptimizeWarning)
            estimate, cov = optimize.curve_fit(law_of, x, y, p0=start, bounds=(low, high))
    except (RuntimeError, ValueError, optimize.OptimizeWarning) as exc:
        out["why"] = f"the least-squares fit did not converge ({exc})"
        return out
    dof = len(y) - len(names)
    spread = np.sqrt(np.diag(cov)) if dof > 0 else np.full(len(names), np.inf)
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) if dof > 0 else math.inf
    for name, value, se in zip(names, estimate, spread, strict=True):
        finite = math.isfinite(float(se))
        out["params"][name] = {
            "value": float(value),
            "ci_low": float(value - t * se) if finite else None,
            "ci_high": float(value + t * se) if finite else None,
        }
    out.update(n0=n0, fitted=True, dof=dof)
    if dof <= 0 or not all(p["ci_low"] is not None for p in out["params"].values()):
        out["why"] = f"{len(y)} values for {len(names)} parameters: no interval"
    return out


def examples_for_gap(fit: dict[str, Any], target: float) -> dict[str, Any]:
    """About how many training examples bring the fitted gap under ``target``, or why the fit
    cannot tell: it must have converged with an interval for b that excludes zero (the gap
    detectably shrinks with more data)."""
    answer: dict[str, Any] = {"target": target, "examples": None, "extrapolated": None}
    b = fit["params"].get("b")
    if not fit["fitted"] or b is None or b["ci_low"] is None:
        answer["why"] = "the fit cannot tell: " + (fit["why"] or "no interval for b")
        return answer
    if b["ci_low"] <= 0:
        answer["why"] = (
            f"the fit cannot tell: b's 95% interval [{b['ci_low']:.3g}, {b['ci_high']:.3g}] "
            "holds 0, so the gap may not shrink with more data"
        )
        return answer
    a, n0 = fit["params"]["a"]["value"], fit["n0"]
    if target <= 0:
        answer["why"] = "the fitted gap approaches 0 but never reaches it: give x above 0"
        return answer
    if a <= target:
        answer.update(examples=math.ceil(n0), extrapolated=False)
        answer["why"] = f"the fitted gap at the largest size measured ({n0:g}) is {a:.3g} already"
        return answer
    examples = n0 * (a / target) ** (1 / b["value"])
    answer.update(examples=math.ceil(examples), extrapolated=examples > n0)
    answer["why"] = (
        f"the fitted gap {a:.3g} * (n / {n0:g})^(-{b['value']:.3g}) falls under {target:g} at "
        f"about n = {math.ceil(examples)}"
        + (" (beyond the largest size measured: an extrapolation)" if examples > n0 else "")
    )
    return answer


def path_choice(points: Sequence[tuple[float, float | None, float | None, int]]) -> dict[str, Any]:
    """lambda_min and lambda_1se from (value, mean, std, n) of min validation loss per grid
    value; the standard error is std / sqrt(n) at lambda_min (lambda_1se is null without
    one: a single replicate a value)."""
    having = [(v, m, s, n) for v, m, s, n in points if m is not None]
    if not having:
        return {"lambda_min": None, "lambda_1se": None, "threshold": None}
    value, mean, std, n = min(having, key=lambda p: (p[1], p[0]))
    if std is None or n < 2:
        return {"lambda_min": value, "lambda_1se": None, "threshold": None}
    threshold = mean + std / math.sqrt(n)
    within = [v for v, m, _, _ in having if m is not None and m <= threshold]
    return {"lambda_min": value, "lambda_1se": max(within), "threshold": threshold}
