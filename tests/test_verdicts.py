"""Verdicts of real runs (issue 24): trained here by the trainer, diagnosed by the API's rules
with the trainer's own baseline (what a model that learnt nothing scores). Through a real
worker and the API: tests/e2e/test_diagnosis.py."""

from __future__ import annotations

from typing import Any

import pytest

from api.diagnosis.rules import Chance, Diagnosis, diagnose
from trainer.callbacks import Callback
from trainer.events import EpochEnd, RunStarted
from trainer.loop import train
from trainer.spec import JobSpec

# SGD at lr 1e-7: the weights barely move from their initialisation, at chance.
AT_CHANCE = {"epochs": 4, "optimizer": {"name": "sgd", "lr": 1e-7}}
# A linear model under Adam at lr 10: the loss stays finite but far above the baseline's.
BLOWN_UP = {"epochs": 6, "model": {"hidden": []}, "optimizer": {"name": "adam", "lr": 10.0}}


class _Curves(Callback):
    def __init__(self) -> None:
        self.curves: dict[str, dict[int, float]] = {}
        self.chance: Chance | None = None

    def on_run_start(self, event: RunStarted) -> None:
        b = event.baseline
        assert b is not None
        self.chance = Chance(n_val=b.n_val, val_loss=b.val_loss, val_accuracy=b.val_accuracy)

    def on_epoch_end(self, event: EpochEnd) -> None:
        for key, value in event.metrics.items():
            self.curves.setdefault(key, {})[event.epoch] = value


def diagnosed(spec: dict[str, Any]) -> tuple[Diagnosis, Chance]:
    seen = _Curves()
    train(JobSpec.model_validate(spec), [seen])
    assert seen.chance is not None
    found = diagnose(seen.curves, chance=seen.chance)
    assert found is not None
    return found, seen.chance


def test_the_baseline_is_what_a_model_that_learnt_nothing_scores() -> None:
    _, chance = diagnosed({"epochs": 1})
    # digits: 10 nearly balanced classes, 20% of 1,797 for validation.
    assert chance.n_val == 360
    assert chance.val_loss == pytest.approx(2.3026, abs=0.01)  # about ln 10
    assert chance.val_accuracy == pytest.approx(0.1, abs=0.01)


def test_a_run_at_chance_is_not_learning() -> None:
    d, chance = diagnosed(AT_CHANCE)
    assert d.verdict == "not learning", d.why
    assert d.min_val_loss is not None and d.min_val_loss >= chance.val_loss


def test_a_finite_blow_up_is_unstable_not_overfitting() -> None:
    d, chance = diagnosed(BLOWN_UP)
    assert d.verdict == "unstable", d.why
    assert "times the" in d.why and "a model that learnt nothing" in d.why
    assert d.final["val_loss"] > 10 * chance.val_loss or d.at_best["val_loss"] > chance.val_loss


def test_a_run_that_learns_is_neither() -> None:
    d, _ = diagnosed({"epochs": 4})
    assert d.verdict not in ("not learning", "unstable", "diverged"), d.why


MEMORIZING = {
    "epochs": 40,
    "batch_size": 16,
    "dataset": {"normalize": "unit", "train_subset": 300, "label_noise": 1.0},
    "model": {"hidden": [1000]},
    "optimizer": {"lr": 3e-3},
    "histograms": {"enabled": False},
}


def test_a_wide_network_memorizes_random_labels_while_validation_stays_at_chance() -> None:
    """Issue 25's control: every training label replaced by a random class. The 1000-unit
    MLP fits them anyway (training accuracy above 0.9) while validation stays near 0.1: it
    memorized the examples, and the diagnosis says when."""
    d, chance = diagnosed(MEMORIZING)
    assert d.final["train_accuracy"] > 0.9 and abs(d.final["val_accuracy"] - 0.1) < 0.06
    assert d.verdict == "not learning", d.why
    assert d.memorized_epoch is not None and 5 < d.memorized_epoch < 40
    # The labels of validation were never touched: the baseline is the clean split's.
    assert chance.val_accuracy is not None and chance.val_accuracy < 0.15
