"""What a run must show: overfitting, what fixes it, and metrics that add up."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from tests.trainer.conftest import merge, run

# Seed 001's set-up on digits: a wide MLP on a small training subset overfits.
SEED001: dict[str, Any] = {
    "dataset": {"name": "digits", "train_subset": 300},
    "model": {"hidden": [1000]},
    "optimizer": {"name": "adam", "lr": 1e-3},
    "epochs": 40,
    "batch_size": 64,
    "seed": 0,
    "histograms": {"every": 10},
}


@pytest.fixture(scope="module")
def baseline() -> list[dict[str, float]]:
    return run(SEED001)[0].history


def final_gap(history: list[dict[str, float]]) -> float:
    return statistics.mean(h["gap"] for h in history[-3:])


def test_gap_grows_without_regularization(baseline: list[dict[str, float]]) -> None:
    early = statistics.mean(h["gap"] for h in baseline[:5])
    late = statistics.mean(h["gap"] for h in baseline[-5:])
    assert late > early * 1.1, (early, late)
    # Overfitting in the plain sense: the model fits its training set almost perfectly.
    assert baseline[-1]["train_accuracy"] > 0.99 > baseline[-1]["val_accuracy"]


def test_dropout_shrinks_the_gap(baseline: list[dict[str, float]]) -> None:
    dropout = run(merge(SEED001, model={"dropout": 0.5, "input_dropout": 0.5}))[0].history
    assert final_gap(dropout) < 0.9 * final_gap(baseline)


def test_l2_penalty_shrinks_the_gap(baseline: list[dict[str, float]]) -> None:
    l2 = run(merge(SEED001, regularization={"l2": 1e-2}))[0].history
    assert final_gap(l2) < 0.9 * final_gap(baseline)
    assert all(h["reg_penalty"] > 0 for h in l2)
    assert "reg_penalty" not in baseline[-1]


def test_l1_raises_the_fraction_of_near_zero_weights() -> None:
    spec = merge(SEED001, model={"hidden": [256]}, epochs=20)
    plain = run(spec)[1].epochs[-1].histograms
    sparse = run(merge(spec, regularization={"l1": 1e-3}))[1].epochs[-1].histograms
    plain_nz = {h.param: h.near_zero for h in plain}
    sparse_nz = {h.param: h.near_zero for h in sparse}
    assert sparse_nz["fc1.weight"] > 5 * plain_nz["fc1.weight"]
    assert sparse_nz["fc1.weight"] > 0.1


def test_reduce_on_plateau_lowers_the_lr_after_a_plateau() -> None:
    spec = merge(SEED001, epochs=25, lr_schedule={"kind": "reduce_on_plateau"})
    result, rec = run(spec)
    lrs = [h["lr"] for h in result.history]
    changes = [c for e in rec.epochs for c in e.lr_changes]
    assert changes, "val loss plateaus on digits within 25 epochs"
    first = changes[0]
    assert first.new_lr == pytest.approx(first.old_lr * 0.5)
    # The cut follows an epoch whose val loss did not improve on the best by 1e-3 (abs mode).
    before = [h["val_loss"] for h in result.history[: first.epoch]]
    assert before[-1] > min(before[:-1]) - 1e-3
    assert lrs[first.epoch] == first.new_lr  # the next epoch trains at the new rate
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] >= 1e-5


def test_histograms_count_every_weight_and_summaries_are_consistent() -> None:
    _result, rec = run(
        {"model": {"hidden": [32, 16]}, "epochs": 5, "histograms": {"bins": 20, "every": 2}}
    )
    with_hist = [e.epoch for e in rec.epochs if e.histograms]
    assert with_hist == [2, 4, 5]  # every 2 epochs, and always the last
    numel = {
        "fc1.weight": 64 * 32,
        "fc1.bias": 32,
        "fc2.weight": 32 * 16,
        "fc2.bias": 16,
        "fc3.weight": 16 * 10,
        "fc3.bias": 10,
    }
    for epoch in rec.epochs:
        for h in epoch.histograms:
            assert sum(h.counts) == numel[h.param] == h.numel
            assert len(h.edges) == len(h.counts) + 1 == 21
            assert all(a < b for a, b in zip(h.edges, h.edges[1:], strict=False))
            assert h.edges[0] <= h.min <= h.mean <= h.max <= h.edges[-1] + 1e-9
            assert h.l2 <= h.l1 + 1e-9 and 0 <= h.near_zero <= 1


def test_constant_parameters_still_get_a_valid_histogram() -> None:
    # Seed 003 zero-initialises biases; before the first step every bias is exactly 0.
    _, rec = run(
        {
            "model": {"hidden": [8], "init": {"scheme": "normal", "std": 0.01}},
            "optimizer": {"name": "sgd", "lr": 1e-12},
            "epochs": 1,
        }
    )
    bias = next(h for h in rec.epochs[0].histograms if h.param == "fc1.bias")
    assert sum(bias.counts) == 8 and bias.near_zero == 1.0
    assert bias.edges[0] < 0 < bias.edges[-1]


def test_evaluation_adds_up() -> None:
    result, rec = run({"model": {"hidden": [64, 32]}, "epochs": 8})
    ev = rec.evaluation
    assert ev is not None and rec.started is not None
    n_val = rec.started.n_val
    assert sum(map(sum, ev.confusion_matrix or [])) == n_val
    assert sum(c.support for c in ev.per_class or []) == n_val
    assert ev.confusion_matrix is not None
    diagonal = sum(ev.confusion_matrix[i][i] for i in range(10))
    assert ev.accuracy == pytest.approx(diagonal / n_val)
    assert ev.accuracy == pytest.approx(result.history[-1]["val_accuracy"], abs=1e-6)
    assert ev.macro_f1 == pytest.approx(statistics.mean(c.f1 for c in ev.per_class or []))
    assert ev.roc is not None and len(ev.roc) == 10
    for curve in ev.roc:
        assert len(curve.fpr) == len(curve.tpr) <= 200
        assert (curve.fpr[0], curve.tpr[0], curve.fpr[-1], curve.tpr[-1]) == (0, 0, 1, 1)
        assert 0.5 < curve.auc <= 1
    assert ev.best_epoch == min(range(1, 9), key=lambda e: result.history[e - 1]["val_loss"])
    shapes = [(m.param, m.shape, len(m.values), len(m.values[0])) for m in ev.weight_matrices]
    assert shapes == [
        ("fc1.weight", [64, 64], 64, 64),
        ("fc2.weight", [32, 64], 32, 64),
        ("fc3.weight", [10, 32], 10, 32),
    ]
    assert rec.order == ["run_started"] + ["epoch"] * 8 + ["evaluation"] * 2 + ["run_ended"]


def test_heatmaps_are_pooled_to_64x64() -> None:
    _, rec = run({"model": {"hidden": [200]}, "epochs": 1})
    first = rec.evaluation.weight_matrices[0]  # type: ignore[union-attr]
    assert first.shape == [200, 64] and (len(first.values), len(first.values[0])) == (64, 64)


def test_same_spec_and_seed_give_the_same_metrics() -> None:
    spec = {"model": {"hidden": [64], "dropout": 0.3}, "epochs": 4, "seed": 7}
    timing = {"epoch_seconds", "samples_per_second"}

    def strip(history: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in h.items() if k not in timing} for h in history]

    first, rec1 = run(spec)
    second, rec2 = run(spec)
    assert strip(first.history) == strip(second.history)
    assert rec1.evaluation == rec2.evaluation
    other = run({**spec, "seed": 8})[0]
    assert strip(other.history) != strip(first.history)


def test_cancellation_is_checked_between_epochs() -> None:
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) >= 2

    result, rec = run({"epochs": 10}, should_stop=should_stop)
    assert result.status == "cancelled" and result.epochs_run == 2
    assert rec.ended is not None and rec.ended.status == "cancelled"
    assert rec.evaluation is None


def test_early_stopping_stops_and_evaluates_the_best_epoch() -> None:
    spec = merge(
        SEED001,
        optimizer={"lr": 5e-3},
        epochs=60,
        early_stopping={"monitor": "val_loss", "patience": 3},
    )
    result, rec = run(spec)
    assert result.status == "early_stopped" and result.epochs_run < 60
    losses = [h["val_loss"] for h in result.history]
    best = losses.index(min(losses)) + 1
    assert result.epochs_run == best + 3
    assert rec.evaluation is not None and rec.evaluation.epoch == best
    assert "did not improve" in rec.ended.reason  # type: ignore[union-attr]


def test_regression_reports_rmse_and_mae_in_target_units() -> None:
    result, rec = run(
        {
            "task": "regression",
            "dataset": {"name": "diabetes"},
            "model": {"hidden": [32]},
            "optimizer": {"lr": 3e-3},
            "epochs": 5,
        }
    )
    last = result.history[-1]
    assert {"val_rmse", "val_mae", "train_rmse", "train_mae"} <= last.keys()
    assert "val_accuracy" not in last
    # The diabetes target spans ~25..346; RMSE in its units is tens, not ~1.
    assert 20 < last["val_rmse"] < 150 and last["val_mae"] <= last["val_rmse"]
    ev = rec.evaluation
    assert ev is not None and ev.confusion_matrix is None
    assert ev.rmse == pytest.approx(last["val_rmse"], rel=1e-4)


def test_cnn_trains_on_digit_images() -> None:
    result, rec = run({"model": {"kind": "cnn", "channels": [8, 16], "hidden": [32]}, "epochs": 3})
    assert rec.started is not None and rec.started.input_shape == [1, 8, 8]
    assert result.history[-1]["val_accuracy"] > 0.5
    assert {h.param for h in rec.epochs[-1].histograms} >= {"conv1.weight", "conv2.bias"}


def test_synthetic_data_takes_any_shape_and_class_count() -> None:
    _result, rec = run(
        {
            "dataset": {
                "name": "synthetic",
                "synthetic": {"n_samples": 500, "shape": [3, 8, 8], "n_classes": 4},
            },
            "model": {"kind": "cnn", "channels": [4]},
            "epochs": 2,
        }
    )
    assert rec.started is not None
    assert (rec.started.input_shape, rec.started.n_classes) == ([3, 8, 8], 4)
    assert rec.started.n_train + rec.started.n_val == 500


def test_train_subset_larger_than_the_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"dataset\.train_subset"):
        run({"dataset": {"train_subset": 10_000}, "epochs": 1})


def test_divergent_training_reports_non_finite_values_instead_of_crashing() -> None:
    result, rec = run(
        {
            "optimizer": {"name": "sgd", "lr": 10.0, "momentum": 0.9},
            "model": {"hidden": [64], "activation": "leaky_relu"},
            "dataset": {"normalize": "none"},
            "epochs": 3,
        }
    )
    assert any(not math.isfinite(h["train_loss"]) for h in result.history)
    assert rec.ended is not None and rec.evaluation is not None
    assert rec.evaluation.roc == [] and rec.evaluation.macro_auc is None
    assert sum(map(sum, rec.evaluation.confusion_matrix or [])) == rec.started.n_val  # type: ignore[union-attr]


def test_running_train_metrics_use_the_batch_mean() -> None:
    spec = {"model": {"dropout": 0.5}, "epochs": 2}
    running = run({**spec, "train_metrics": "running"})[0].history[-1]
    scored = run(spec)[0].history[-1]
    # Same training either way; only which measurement is called train_loss differs.
    assert running["train_loss"] == scored["train_loss_running"]
    assert running["train_loss_eval"] == scored["train_loss"]
    # With dropout on, the batch mean overstates the loss the model really has on its data.
    assert running["train_loss"] > running["train_loss_eval"]
    assert running["gap"] == pytest.approx(running["val_loss"] - running["train_loss"])


def test_a_diverging_run_stops_with_its_mark_and_histograms_that_can_be_stored() -> None:
    """Issue 10's run: regression on diabetes with SGD at lr 10 drives weights to ~1e16 and
    beyond, where equal-width bins over float64 used to give 65 equal edges."""
    result, rec = run(
        {
            "task": "regression",
            "dataset": {"name": "diabetes"},
            "optimizer": {"name": "sgd", "lr": 10.0},
            "epochs": 30,
        }
    )
    assert result.status == "diverged" and rec.ended is not None
    assert rec.ended.status == "diverged" and "at epoch" in rec.ended.reason
    last = result.history[-1]
    assert not (math.isfinite(last["train_loss"]) and math.isfinite(last["val_loss"]))
    assert len(result.history) < 30  # it stopped where it diverged
    assert rec.evaluation is not None  # and was still evaluated
    for epoch in rec.epochs:
        for h in epoch.histograms:
            assert all(math.isfinite(e) for e in h.edges), h.param
            assert all(b > a for a, b in zip(h.edges, h.edges[1:], strict=False)), h.param
            assert sum(h.counts) + h.nan_count + h.posinf_count + h.neginf_count == h.numel
