"""The diagnosis rules on constructed curves: every verdict, the onset, the gap and its trend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from api.diagnosis.rules import Chance, DiagnosisRules, EarlyStop, diagnose


def curves(train: list[float], val: list[float], **extra: list[float]) -> dict[str, dict]:
    out = {"train_loss": dict(enumerate(train, 1)), "val_loss": dict(enumerate(val, 1))}
    out.update({k: dict(enumerate(v, 1)) for k, v in extra.items()})
    return out


def test_overfitting_onset_is_the_last_epoch_before_the_climb() -> None:
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    val = [1.1, 0.9, 0.7, 0.75, 0.8, 0.9, 1.0, 1.1]
    d = diagnose(curves(train, val, val_accuracy=[0.5, 0.6, 0.7, 0.7, 0.69, 0.68, 0.67, 0.66]))
    assert d is not None
    assert d.verdict == "overfitting"
    assert d.onset_epoch == 3 and d.best_epoch == 3
    assert d.min_val_loss == 0.7
    assert d.at_best["val_accuracy"] == 0.7
    assert d.gap_at_best == pytest.approx(0.1)
    assert d.final_gap == pytest.approx(1.0)
    # Least-squares slope of the gap over the last 5 epochs (epochs 4..8).
    assert d.gap_slope == pytest.approx(
        np.polyfit([4, 5, 6, 7, 8], [0.25, 0.4, 0.6, 0.8, 1.0], 1)[0]
    )
    assert "epoch 3" in d.why


def test_no_onset_while_training_loss_rises_too() -> None:
    # Validation climbs, but so does training loss: not the overfitting pattern.
    train = [1.0, 0.8, 0.6, 0.65, 0.7, 0.75, 0.8]
    val = [1.1, 0.9, 0.7, 0.8, 0.9, 1.0, 1.1]
    d = diagnose(curves(train, val))
    assert d is not None and d.onset_epoch is None
    assert d.verdict != "overfitting"


def test_a_climb_within_tolerance_or_shorter_than_patience_is_not_an_onset() -> None:
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2]
    within = [1.0, 0.8, 0.70, 0.71, 0.705, 0.71, 0.709]  # < 2% above the minimum
    assert diagnose(curves(train, within)).onset_epoch is None  # type: ignore[union-attr]
    short = [1.0, 0.8, 0.70, 0.9, 0.9, 0.71, 0.705]  # two epochs up, then back within 2%
    assert diagnose(curves(train, short)).onset_epoch is None  # type: ignore[union-attr]
    # The same climb counts with a looser patience or a tighter tolerance.
    assert diagnose(curves(train, short), DiagnosisRules(patience=2)).onset_epoch == 3  # type: ignore[union-attr]
    tight = DiagnosisRules(tolerance=0.001)
    assert diagnose(curves(train, within), tight).onset_epoch == 3  # type: ignore[union-attr]


def test_still_improving_when_the_best_epoch_is_among_the_last() -> None:
    d = diagnose(curves([1.0, 0.8, 0.6, 0.5, 0.4], [1.1, 0.9, 0.8, 0.75, 0.72]))
    assert d is not None and d.verdict == "still improving" and d.best_epoch == 5


def test_good_fit_when_validation_flattens_without_climbing() -> None:
    train = [1.0, 0.5, 0.3, 0.25, 0.24, 0.23, 0.22, 0.21]
    val = [1.0, 0.55, 0.35, 0.30, 0.30, 0.301, 0.30, 0.302]
    d = diagnose(curves(train, val))
    assert d is not None and d.verdict == "good fit" and d.onset_epoch is None


def test_underfitting_when_training_loss_stays_high_with_a_small_gap() -> None:
    train = [2.30, 2.25, 2.2, 2.0, 1.9, 1.9, 1.9, 1.9, 1.9, 1.9]
    val = [2.31, 2.26, 2.2, 2.0, 1.95, 1.95, 1.95, 1.95, 1.95, 1.95]
    d = diagnose(curves(train, val))
    assert d is not None and d.verdict == "underfitting"


def test_diverged_on_a_non_finite_loss_unstable_on_a_finite_blow_up() -> None:
    d = diagnose(curves([1.0, 0.8, math.inf], [1.0, 0.9, math.nan]))
    assert d is not None and d.verdict == "diverged" and "epoch 3" in d.why
    assert d.best_epoch == 2  # the best finite validation loss
    marked = diagnose(curves([1.0, 0.9], [1.0, 0.9]), diverged_epoch=2)
    assert marked is not None and marked.verdict == "diverged"
    # Finite, but 40 times where it started: unstable, not overfitting (issue 24).
    exploding = diagnose(curves([1.0, 5.0, 20.0, 40.0], [1.0, 6.0, 30.0, 50.0]))
    assert exploding is not None and exploding.verdict == "unstable"
    assert "50 at epoch 4, 50 times" in exploding.why
    # A climb that overfitting makes (val 0.7 -> 3.0) is no blow-up.
    val = [1.1, 0.9, 0.7, 0.9, 1.4, 2.0, 2.5, 3.0]
    overfit = diagnose(curves([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1], val))
    assert overfit is not None and overfit.verdict == "overfitting"


def test_a_blow_up_is_judged_against_what_a_model_that_learnt_nothing_scores() -> None:
    """The regression run that starts blown up (Adam at lr 3 on diabetes: val MSE 183,477 at
    epoch 1, standardised targets) is unstable next to the baseline's 1.0, though it falls."""
    val = [183_477.0, 275_625.0, 90_943.0, 20_404.0, 3_322.0]
    train = [196_083.0, 357_560.0, 122_189.0, 18_312.0, 4_404.0]
    chance = Chance(n_val=89, val_loss=1.0)
    d = diagnose(curves(train, val), chance=chance)
    assert d is not None and d.verdict == "unstable"
    assert "2.756e+05 at epoch 2" in d.why and "a model that learnt nothing" in d.why
    without = diagnose(curves(train, val))  # no baseline: against its own first epoch
    assert without is not None and without.verdict != "unstable"


def test_not_learning_when_the_loss_never_beats_the_class_frequencies() -> None:
    chance = Chance(n_val=360, val_loss=2.3025, val_accuracy=0.1)
    flat = [2.315] * 6
    d = diagnose(curves(flat, flat, val_accuracy=[0.0806] * 6), chance=chance)
    assert d is not None and d.verdict == "not learning"
    assert "never went below 2.303" in d.why


def test_not_learning_when_the_accuracy_is_within_chance_by_a_binomial_test() -> None:
    """The loss dips below the baseline (by luck, or by learning the class balance), but 11.4%
    right of 360 at the best epoch (the lowest val_loss, epoch 4) is not significantly more
    than the 10% of the most frequent class (by hand: P(X >= 41 | n=360, p=0.1) = 0.21),
    while 15% is (P = 0.0018). The test is made once, at the best epoch: a higher accuracy at
    another epoch (15% at epoch 2 here) is one of many noisy scores, not evidence."""
    chance = Chance(n_val=360, val_loss=2.3025, val_accuracy=0.1)
    train, val = [2.30, 2.29, 2.28, 2.27], [2.30, 2.29, 2.28, 2.27]
    d = diagnose(curves(train, val, val_accuracy=[0.1, 0.15, 0.1, 0.114]), chance=chance)
    assert d is not None and d.verdict == "not learning"
    assert "best epoch (4), 11.4%" in d.why and "p = 0.21" in d.why
    learning = diagnose(curves(train, val, val_accuracy=[0.1, 0.12, 0.12, 0.15]), chance=chance)
    assert learning is not None and learning.verdict != "not learning"


def test_an_early_stop_names_the_restored_epoch_and_the_summary_uses_it() -> None:
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3]
    val = [1.1, 0.9, 0.7, 0.75, 0.8, 0.9]
    acc = [0.5, 0.6, 0.8, 0.78, 0.75, 0.7]
    stop = EarlyStop(epoch=6, reason="val_loss did not improve", restored_epoch=3)
    d = diagnose(curves(train, val, val_accuracy=acc), early_stop=stop)
    assert d is not None and d.early_stopped and d.stop_reason == "val_loss did not improve"
    assert d.evaluated_epoch == 3 and d.at_evaluated["val_accuracy"] == 0.8
    assert d.final["val_accuracy"] == 0.7
    no_restore = EarlyStop(epoch=6, reason="x", restored_epoch=None)
    assert diagnose(curves(train, val), early_stop=no_restore).evaluated_epoch == 6  # type: ignore[union-attr]


def test_nothing_to_diagnose_without_both_losses() -> None:
    assert diagnose({"train_loss": {1: 1.0}}) is None
    assert diagnose({}) is None


def test_a_climb_that_validation_recovers_from_is_not_the_onset() -> None:
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05]
    val = [1.0, 0.8, 0.7, 0.8, 0.8, 0.8, 0.65, 0.7, 0.75, 0.8]  # recovers at 7, then climbs
    d = diagnose(curves(train, val))
    assert d is not None and d.onset_epoch == 7 and d.best_epoch == 7


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (41, 360, 0.1),
        (54, 360, 0.1),
        (0, 5, 0.3),
        (5, 5, 0.3),
        (3, 10, 0.5),
        (900, 10_000, 0.1),
        (6, 5, 0.2),
    ],
)
def test_the_binomial_tail_agrees_with_scipy(k: int, n: int, p: float) -> None:
    from scipy.stats import binom

    from api.diagnosis.rules import binomial_tail

    assert binomial_tail(k, n, p) == pytest.approx(
        float(binom.sf(k - 1, n, p)), rel=1e-9, abs=1e-300
    )
