"""The evaluations a run makes: per class while training (both splits), the held-out test
split, the per-batch loss, the most confident mistakes, regression predictions; checked
against the epoch's own metrics and against hand-made splits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from tests.trainer.conftest import run
from trainer.data import load_data
from trainer.spec import EvaluationSpec, JobSpec


def test_evaluated_epochs_are_a_few_over_the_run_and_always_the_last() -> None:
    assert EvaluationSpec().epochs(30) == {3, 6, 9, 12, 15, 18, 21, 24, 27, 30}
    assert EvaluationSpec().epochs(7) == set(range(1, 8))
    assert EvaluationSpec(every=4).epochs(10) == {4, 8, 10}
    assert EvaluationSpec(enabled=False).epochs(10) == set()


def test_per_class_evaluations_add_up_to_the_epoch_metrics() -> None:
    result, rec = run({"model": {"hidden": [32]}, "epochs": 6, "evaluation": {"every": 2}})
    evaluated = {e.epoch: e.evaluations for e in rec.epochs if e.evaluations}
    assert sorted(evaluated) == [2, 4, 6]
    for epoch, evaluations in evaluated.items():
        metrics = result.history[epoch - 1]
        assert [(e.split, e.final) for e in evaluations] == [("train", False), ("val", False)]
        for ev in evaluations:
            per_class = ev.per_class or []
            assert len(per_class) == 10
            n = sum(c.support for c in per_class)
            # The support-weighted class losses and recalls are the split's loss and accuracy.
            mean_loss = sum((c.loss or 0) * c.support for c in per_class) / n
            hits = sum(c.recall * c.support for c in per_class) / n
            assert mean_loss == pytest.approx(metrics[f"{ev.split}_loss"], rel=1e-5)
            assert hits == pytest.approx(metrics[f"{ev.split}_accuracy"], abs=1e-6)
            assert ev.loss == pytest.approx(mean_loss)
    # At the end: the validation split in full, the training split per class.
    assert [(e.split, e.final, e.epoch) for e in rec.evaluations] == [
        ("val", True, 6),
        ("train", True, 6),
    ]
    assert all(c.loss is not None for c in rec.evaluations[1].per_class or [])


def _splits(seed: int = 0, **dataset: object) -> tuple[set[bytes], set[bytes], set[bytes], Any]:
    spec = JobSpec.model_validate(
        {"device": "cpu", "seed": seed, "dataset": {"test_fraction": 0.2, **dataset}}
    )
    data = load_data(spec, torch.device("cpu"))
    assert data.x_test is not None and data.y_test is not None

    def rows(x: torch.Tensor) -> set[bytes]:
        return {r.numpy().tobytes() for r in x}

    return rows(data.x_train), rows(data.x_val), rows(data.x_test), data.y_test.numpy()


def test_the_test_split_is_held_out_stratified_and_the_same_for_every_seed_and_fold() -> None:
    train, val, test, y_test = _splits(normalize="none")
    assert not (train & test) and not (val & test) and not (train & val)
    assert len(y_test) == math.ceil(1797 * 0.2)
    # Stratified: each class's share of the test split is its share of the data set.
    share = np.bincount(load_digits().target) / 1797
    assert np.abs(np.bincount(y_test, minlength=10) / len(y_test) - share).max() < 0.01
    for other in (_splits(seed=5, normalize="none"), _splits(normalize="none", folds={"k": 3})):
        assert other[2] == test and other[0] != train


def test_the_test_split_is_scored_once_at_the_evaluated_epoch() -> None:
    result, rec = run(
        {
            "dataset": {"test_fraction": 0.2, "train_subset": 300},
            "model": {"hidden": [256]},
            "epochs": 12,
            "early_stopping": {"patience": 2, "restore_best": True},
        }
    )
    test = next(e for e in rec.evaluations if e.split == "test")
    val = rec.evaluation
    assert val is not None and test.epoch == val.epoch and test.final
    assert sum(c.support for c in test.per_class or []) == 360
    assert test.roc and test.pr and not test.weight_matrices and not test.misclassified
    # Nothing during training looked at it: no epoch metric names it.
    assert not any(k.startswith("test") for h in result.history for k in h)


def test_batch_losses_are_a_bounded_number_of_means_per_epoch() -> None:
    result, rec = run({"epochs": 2, "batch_size": 32, "evaluation": {"batch_points": 7}})
    n_batches = math.ceil(rec.started.n_train / 32)  # type: ignore[union-attr]
    for epoch in rec.epochs:
        steps = [s for s, _ in epoch.batch_losses]
        assert len(steps) == 7 and steps[-1] == epoch.epoch * n_batches
        assert steps == sorted(steps) and steps[0] > (epoch.epoch - 1) * n_batches
    # With equal-sized runs of batches, the mean of the points is the epoch's running loss.
    _, even = run({"epochs": 1, "batch_size": 1437, "evaluation": {"batch_points": 3}})
    assert even.epochs[0].batch_losses == [
        (1, pytest.approx(even.epochs[0].metrics["train_loss_running"]))
    ]
    assert run({"epochs": 1, "evaluation": {"batch_points": 0}})[1].epochs[0].batch_losses == []
    assert result.history


def test_misclassified_examples_are_the_most_confident_mistakes_with_their_image() -> None:
    _, rec = run({"model": {"hidden": [16]}, "epochs": 2})
    ev = rec.evaluation
    assert ev is not None and ev.misclassified
    digits = load_digits()
    confidences = [m.confidence for m in ev.misclassified]
    assert confidences == sorted(confidences, reverse=True) and len(confidences) <= 32
    for m in ev.misclassified:
        assert m.true != m.predicted and m.true == str(digits.target[m.index])
        image = np.asarray(m.image)
        assert image.shape == (1, 8, 8) and image.min() == 0 and image.max() == 1
        # The example itself: the data set's image at that index, scaled to [0, 1].
        raw = digits.images[m.index]
        scaled = (raw - raw.min()) / (raw.max() - raw.min())
        assert np.allclose(image[0], scaled, atol=1e-3)


def test_regression_reports_predictions_and_residuals() -> None:
    _, rec = run({"task": "regression", "dataset": {"name": "diabetes"}, "epochs": 3})
    ev = rec.evaluation
    assert ev is not None and ev.predictions is not None
    p = ev.predictions
    assert len(p.actual) == len(p.predicted) == len(p.residual) == len(p.index) == 89
    assert np.allclose(np.asarray(p.predicted) - p.actual, p.residual)
    rmse = float(np.sqrt(np.mean(np.square(p.residual))))
    assert rmse == pytest.approx(ev.rmse)
    assert ev.per_class is None and not any(e.evaluations for e in rec.epochs)


def test_a_diverged_run_names_its_last_finite_epoch() -> None:
    result, rec = run(
        {
            "optimizer": {"name": "sgd", "lr": 10.0, "momentum": 0.9},
            "model": {"hidden": [64], "activation": "leaky_relu"},
            "dataset": {"normalize": "none"},
            "epochs": 3,
        }
    )
    ev = rec.evaluation
    assert ev is not None and result.status == "diverged"
    finite = [
        i + 1
        for i, h in enumerate(result.history)
        if math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"])
    ]
    assert ev.last_finite_epoch == (finite[-1] if finite else None)
    assert ev.best_val_loss is None or math.isfinite(ev.best_val_loss)


def test_label_noise_replaces_that_share_of_training_labels_and_nothing_else() -> None:
    def labels(noise: float, seed: int = 0) -> tuple[Any, Any, Any]:
        spec = JobSpec.model_validate(
            {
                "device": "cpu",
                "dataset": {
                    "test_fraction": 0.2,
                    "train_subset": 400,
                    "label_noise": noise,
                    "label_noise_seed": seed,
                },
            }
        )
        data = load_data(spec, torch.device("cpu"))
        assert data.y_test is not None
        return data.y_train.numpy(), data.y_val.numpy(), data.y_test.numpy()

    clean, val, test = labels(0.0)
    noisy, noisy_val, noisy_test = labels(0.5)
    assert (noisy_val == val).all() and (noisy_test == test).all()  # never validation or test
    changed = int((noisy != clean).sum())
    # 200 labels redrawn uniformly over 10 classes: about a tenth come out as they were.
    assert 150 <= changed <= 200
    assert (labels(0.5, seed=1)[0] != noisy).any()  # its own seed
    everything = labels(1.0)[0]
    assert abs(float((everything == clean).mean()) - 0.1) < 0.05  # chance agreement only
