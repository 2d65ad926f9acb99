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
- **memorized epoch** (label-noise controls): the first epoch the training accuracy reached
  ``memorized_at`` while the validation accuracy was at chance by that same binomial test.
- **verdict**, the first that holds: ``diverged`` (a loss was not finite), ``unstable`` (a loss
  rose far without becoming non-finite: the validation loss above ``explode_factor`` times
  that of a model that learnt nothing, or, without that baseline, times its first epoch's; or
  the training loss above ``explode_factor`` times its first epoch's), ``not learning`` (with
  the baseline: the best validation loss was not below the baseline's, or the validation
  accuracy at the best epoch was not significantly above that of always answering the most
  frequent class, by a one-sided binomial test at ``chance_level``), ``overfitting`` (an
  onset was found),
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
from typing import Any

from api.runs.models import Verdict


@dataclass(frozen=True)
class DiagnosisRules:
    patience: int = 3  # epochs the climb must last
    tolerance: float = 0.02  # relative to the running minimum of the validation loss
    min_delta: float = 1e-4  # the least climb that counts, whatever the loss's scale
    trend_window: int = 5  # epochs the gap's slope is fitted over
    explode_factor: float = 10.0  # a loss this many times its start is unstable
    chance_level: float = 0.05  # the binomial test's level: above chance only below it
    memorized_at: float = 0.9  # training accuracy that counts as having memorized (noise)
    underfit_fraction: float = 0.5  # final train loss / first train loss above this: high
    underfit_gap: float = 0.1  # |final gap| / final train loss within this: small


@dataclass(frozen=True)
class EarlyStop:
    """What the trainer said when its stopping rule fired."""

    epoch: int  # the last epoch trained
    reason: str
    restored_epoch: int | None  # whose weights the evaluation used, when they were restored


@dataclass(frozen=True)
class Chance:
    """What a model that learnt nothing scores on the validation split (the trainer's
    baseline: class frequencies for the loss, the most frequent class for the accuracy)."""

    n_val: int
    val_loss: float
    val_accuracy: float | None = None


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
    # Validation's score at the evaluated epoch against the test split's there, signed so that
    # positive means validation looked better than the test split (``optimism``).
    optimism: dict[str, float] = field(default_factory=dict)
    per_class: list[Any] = field(default_factory=list)  # api.diagnosis.per_class.ClassOnset
    # A memorization control (label noise): the first epoch training accuracy reached
    # memorized_at while validation accuracy was still at chance.
    memorized_epoch: int | None = None


def diagnose(
    curves: Mapping[str, Mapping[int, float]],
    rules: DiagnosisRules | None = None,
    early_stop: EarlyStop | None = None,
    diverged_epoch: int | None = None,
    chance: Chance | None = None,
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
    d.onset_epoch = onset_epoch(epochs, t, v, rules)
    if early_stop is not None:
        d.early_stopped, d.stop_reason = True, early_stop.reason
        d.restored_epoch = early_stop.restored_epoch
    d.evaluated_epoch = d.restored_epoch or last
    d.at_evaluated = row(d.evaluated_epoch)
    d.optimism = optimism(d.at_evaluated)
    d.diverged_epoch = diverged_epoch
    accuracy = curves.get("val_accuracy", {})
    d.memorized_epoch = _memorized(curves.get("train_accuracy", {}), accuracy, rules, chance)
    broken = _broken(d, epochs, t, v, rules, chance, accuracy)
    d.verdict, d.why = broken or _verdict(d, epochs, t, v, rules)
    return d


def optimism(row: Mapping[str, float]) -> dict[str, float]:
    """How much better the validation split scored than the test split at the same epoch:
    val - test for accuracy, test - val for losses and errors. The weights were chosen on
    validation (the best or restored epoch, a study's winner), never on test."""
    out = {}
    for name, higher_is_better in (("accuracy", True), ("loss", False), ("rmse", False)):
        val, test = row.get(f"val_{name}"), row.get(f"test_{name}")
        if val is not None and test is not None and math.isfinite(val - test):
            out[name] = val - test if higher_is_better else test - val
    return out


def onset_epoch(
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


def _broken(
    d: Diagnosis,
    epochs: Sequence[int],
    train: Sequence[float],
    val: Sequence[float],
    rules: DiagnosisRules,
    chance: Chance | None,
    accuracy: Mapping[int, float],
) -> tuple[Verdict, str] | None:
    """``diverged``, ``unstable`` or ``not learning``, decided before any other verdict (an
    onset or a trend of a run that is broken says nothing); None when none holds."""
    blown = [
        (e, name)
        for e, a, b in zip(epochs, train, val, strict=True)
        for name, x in (("train_loss", a), ("val_loss", b))
        if not math.isfinite(x)
    ]
    if d.diverged_epoch is not None or blown:
        epoch, name = blown[0] if blown else (d.diverged_epoch, "a loss")
        return "diverged", f"{name} was not finite at epoch {epoch}"
    if (why := _unstable(epochs, train, val, rules, chance)) is not None:
        return "unstable", why
    if chance is not None and (why := _not_learning(d, rules, chance, accuracy)) is not None:
        return "not learning", why
    return None


def _unstable(
    epochs: Sequence[int],
    train: Sequence[float],
    val: Sequence[float],
    rules: DiagnosisRules,
    chance: Chance | None,
) -> str | None:
    factor = rules.explode_factor
    peak, at = max(zip(val, epochs, strict=True))
    start, of = (chance.val_loss, "a model that learnt nothing") if chance else (val[0], "epoch 1")
    if start > 0 and peak > factor * start and (chance or at != epochs[0]):
        return (
            f"val_loss reached {peak:.4g} at epoch {at}, {peak / start:.3g} times the "
            f"{start:.4g} of {of} (unstable above {factor:g} times), without becoming non-finite"
        )
    peak, at = max(zip(train[1:], epochs[1:], strict=True), default=(0.0, 0))
    if train[0] > 0 and peak > factor * train[0]:
        return (
            f"train_loss rose from {train[0]:.4g} at epoch {epochs[0]} to {peak:.4g} at epoch "
            f"{at}, over {factor:g} times its first value, without becoming non-finite"
        )
    return None


def _not_learning(
    d: Diagnosis, rules: DiagnosisRules, chance: Chance, accuracy: Mapping[int, float]
) -> str | None:
    assert d.min_val_loss is not None  # every loss is finite here
    if d.min_val_loss >= chance.val_loss:
        return (
            f"val_loss never went below {chance.val_loss:.4g}, the loss of answering the "
            f"training split's class frequencies (best {d.min_val_loss:.4g}, epoch "
            f"{d.best_epoch})"
        )
    # One test, at the epoch of the lowest validation loss: the best accuracy over all the
    # epochs would be the largest of many noisy scores, above chance by luck alone.
    best = accuracy.get(d.best_epoch) if d.best_epoch is not None else None
    if best is None or not math.isfinite(best) or chance.val_accuracy is None or chance.n_val < 1:
        return None
    # One-sided: how likely a model that always answers the most frequent class would score
    # at least this well on this many validation examples by luck alone.
    hits = round(best * chance.n_val)
    p_value = binomial_tail(hits, chance.n_val, chance.val_accuracy)
    if p_value < rules.chance_level:
        return None
    return (
        f"val_accuracy at the best epoch ({d.best_epoch}), {best:.1%}, is not above the "
        f"{chance.val_accuracy:.1%} of "
        f"always answering the most frequent class (one-sided binomial test on "
        f"{chance.n_val} examples: p = {p_value:.2g}, at least {rules.chance_level:g} is chance)"
    )


def _memorized(
    train: Mapping[int, float],
    val: Mapping[int, float],
    rules: DiagnosisRules,
    chance: Chance | None,
) -> int | None:
    """The first epoch the training accuracy reached ``memorized_at`` while the validation
    accuracy was not above chance (the one-sided binomial test of ``not learning``)."""
    if chance is None or chance.val_accuracy is None or chance.n_val < 1:
        return None
    for epoch in sorted(set(train) & set(val)):
        if not (math.isfinite(train[epoch]) and math.isfinite(val[epoch])):
            continue
        if train[epoch] >= rules.memorized_at:
            hits = round(val[epoch] * chance.n_val)
            at_chance = binomial_tail(hits, chance.n_val, chance.val_accuracy) >= rules.chance_level
            return epoch if at_chance else None
    return None


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space. Not scipy's binom.sf
    (tests/api/test_diagnosis_rules.py checks they agree): this runs in a writer's
    transaction, under the run's lock, and importing scipy there the first time held the
    database for two seconds, long enough to make live runs look silent."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))
