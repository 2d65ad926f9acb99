"""How a run's curves are diagnosed: best epoch, overfitting onset, gap trend, and a verdict.

Pure functions over per-epoch values (no database): the same rules run when the API stores a
run's diagnosis and when a client asks for one with rules of its own. docs/api.md, "Diagnosis",
states them for users; in short, with the defaults of ``DiagnosisRules``:

- **best epoch**: the epoch of the lowest finite validation loss (the first, on ties).
- **onset of overfitting**: the first epoch ``e`` after which, for ``patience`` epochs, the
  validation loss stays above its running minimum by more than ``tolerance`` (relative to that
  minimum's size, at least ``min_delta``) while the training loss keeps falling (lower at the
  window's end than at ``e``), and never comes back below the minimum it had at ``e`` (a climb
  that validation recovers from is noise). ``e`` is the last epoch before the climb: usually
  the best epoch.
- **gap** (validation minus training loss) at the best epoch and at the end, and its **trend**:
  the least-squares slope per epoch over the last ``trend_window`` epochs.
- **verdict**, the first that holds: ``diverged`` (a non-finite loss, or a final training loss
  ``explode_factor`` times the first epoch's), ``overfitting`` (an onset was found),
  ``still improving`` (validation loss ended at its minimum, within ``tolerance``, and its
  least-squares line over the last ``trend_window`` epochs falls by more than ``tolerance``),
  ``underfitting`` (the training loss ended above ``underfit_fraction`` of where it started,
  and the final gap is within ``underfit_gap`` of the final training loss), else
  ``good fit``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from api.runs.models import Verdict


@dataclass(frozen=True)
class DiagnosisRules:
    patience: int = 3  # epochs the climb must last
    tolerance: float = 0.02  # relative to the running minimum of the validation loss
    min_delta: float = 1e-4  # the least climb that counts, whatever the loss's scale
    trend_window: int = 5  # epochs the gap's slope is fitted over
    explode_factor: float = 10.0  # final train loss / first train loss that counts as diverged
    underfit_fraction: float = 0.5  # final train loss / first train loss above this: high
    underfit_gap: float = 0.1  # |final gap| / final train loss within this: small


@dataclass(frozen=True)
class EarlyStop:
    """What the trainer said when its stopping rule fired."""

    epoch: int  # the last epoch trained
    reason: str
    restored_epoch: int | None  # whose weights the evaluation used, when they were restored


@dataclass
class Diagnosis:
    epochs: int
    verdict: Verdict
    why: str  # the numbers behind the verdict, in words
    best_epoch: int | None = None
    min_val_loss: float | None = None
    at_best: dict[str, float] = field(default_factory=dict)  # every metric at the best epoch
    final: dict[str, float] = field(default_factory=dict)  # every metric at the last epoch
    onset_epoch: int | None = None
    gap_at_best: float | None = None
    final_gap: float | None = None
    gap_slope: float | None = None  # per epoch, over the last trend_window epochs
    early_stopped: bool = False
    stop_reason: str | None = None
    restored_epoch: int | None = None
    # The epoch whose weights the evaluation used: the restored one, else the last.
    evaluated_epoch: int | None = None
    at_evaluated: dict[str, float] = field(default_factory=dict)
    diverged_epoch: int | None = None


def diagnose(
    curves: Mapping[str, Mapping[int, float]],
    rules: DiagnosisRules | None = None,
    early_stop: EarlyStop | None = None,
    diverged_epoch: int | None = None,
) -> Diagnosis | None:
    """The diagnosis of per-epoch ``curves`` (metric -> epoch -> value); None without both a
    training and a validation loss for at least one epoch."""
    rules = rules or DiagnosisRules()
    train, val = curves.get("train_loss", {}), curves.get("val_loss", {})
    epochs = sorted(set(train) & set(val))
    if not epochs:
        return None
    t = [train[e] for e in epochs]
    v = [val[e] for e in epochs]
    gap = [b - a for a, b in zip(t, v, strict=True)]

    def row(epoch: int) -> dict[str, float]:
        return {k: series[epoch] for k, series in curves.items() if epoch in series}

    finite = [(x, e) for e, x in zip(epochs, v, strict=True) if math.isfinite(x)]
    best_value, best_epoch = min(finite) if finite else (None, None)
    last = epochs[-1]
    d = Diagnosis(epochs=len(epochs), verdict="good fit", why="", final=row(last))
    d.best_epoch, d.min_val_loss = best_epoch, best_value
    if best_epoch is not None:
        d.at_best = row(best_epoch)
        d.gap_at_best = gap[epochs.index(best_epoch)]
    d.final_gap = gap[-1]
    tail = [(e, g) for e, g in zip(epochs, gap, strict=True) if math.isfinite(g)]
    tail = tail[-rules.trend_window :]
    if len(tail) >= 2:
        d.gap_slope = _slope(tail)
    d.onset_epoch = _onset(epochs, t, v, rules)
    if early_stop is not None:
        d.early_stopped, d.stop_reason = True, early_stop.reason
        d.restored_epoch = early_stop.restored_epoch
    d.evaluated_epoch = d.restored_epoch or last
    d.at_evaluated = row(d.evaluated_epoch)
    d.diverged_epoch = diverged_epoch
    d.verdict, d.why = _verdict(d, epochs, t, v, rules)
    return d


def _onset(
    epochs: Sequence[int], train: Sequence[float], val: Sequence[float], rules: DiagnosisRules
) -> int | None:
    running, lowest = [], math.inf  # the running minimum of the finite values
    for x in val:
        if math.isfinite(x) and x < lowest:
            lowest = x
        running.append(lowest)
    for i in range(len(epochs) - rules.patience):
        window = range(i + 1, i + 1 + rules.patience)
        if not all(math.isfinite(val[j]) and math.isfinite(running[j]) for j in window):
            continue
        above = all(val[j] > running[j] + _margin(running[j], rules) for j in window)
        if not above or train[i + rules.patience] >= train[i]:
            continue
        # A climb that validation later recovers from (a new minimum) was noise, not the onset.
        if not any(math.isfinite(x) and x < running[i] for x in val[i + 1 :]):
            return epochs[i]
    return None


def _margin(minimum: float, rules: DiagnosisRules) -> float:
    """How far above its minimum the validation loss must be to count as above it."""
    return max(rules.tolerance * abs(minimum), rules.min_delta)


def _slope(points: Sequence[tuple[int, float]]) -> float:
    """Least-squares slope per epoch."""
    return statistics.linear_regression([e for e, _ in points], [y for _, y in points])[0]


def _verdict(
    d: Diagnosis,
    epochs: Sequence[int],
    train: Sequence[float],
    val: Sequence[float],
    rules: DiagnosisRules,
) -> tuple[Verdict, str]:
    blown = [
        (e, name)
        for e, a, b in zip(epochs, train, val, strict=True)
        for name, x in (("train_loss", a), ("val_loss", b))
        if not math.isfinite(x)
    ]
    if d.diverged_epoch is not None or blown:
        epoch, name = blown[0] if blown else (d.diverged_epoch, "a loss")
        return "diverged", f"{name} was not finite at epoch {epoch}"
    if train[-1] > rules.explode_factor * train[0]:
        return "diverged", (
            f"train_loss grew from {train[0]:.4g} to {train[-1]:.4g}, over "
            f"{rules.explode_factor:g} times its first value"
        )
    if d.onset_epoch is not None:
        return "overfitting", (
            f"val_loss stayed above its minimum ({d.min_val_loss:.4g}, epoch {d.best_epoch}) by "
            f"more than {rules.tolerance:.0%} for {rules.patience} epochs after epoch "
            f"{d.onset_epoch} while train_loss kept falling; the gap went from "
            f"{d.gap_at_best:.4g} at the best epoch to {d.final_gap:.4g}"
        )
    assert d.best_epoch is not None and d.min_val_loss is not None  # every loss is finite here
    near_best = val[-1] <= d.min_val_loss + _margin(d.min_val_loss, rules)
    recent = list(zip(epochs, val, strict=True))[-rules.trend_window :]
    # Falling: over the window, the fitted line drops by more than the tolerance.
    falling = len(recent) >= 2 and -_slope(recent) * (len(recent) - 1) > _margin(val[-1], rules)
    if near_best and falling:
        return "still improving", (
            f"val_loss ended at {val[-1]:.4g}, at its lowest (within {rules.tolerance:.0%}), "
            f"and was falling over the last {len(recent)} epochs: more epochs may help"
        )
    high = train[-1] > rules.underfit_fraction * train[0]
    small = abs(d.final_gap or 0.0) <= rules.underfit_gap * abs(train[-1])
    if high and small:
        return "underfitting", (
            f"train_loss ended at {train[-1]:.4g}, {train[-1] / train[0]:.0%} of its first "
            f"value, with a gap of {d.final_gap:.4g}: the model fits the training data poorly"
        )
    return "good fit", (
        f"val_loss reached {d.min_val_loss:.4g} at epoch {d.best_epoch} and did not climb "
        f"by more than {rules.tolerance:.0%} for {rules.patience} epochs; final gap "
        f"{d.final_gap:.4g}"
    )
