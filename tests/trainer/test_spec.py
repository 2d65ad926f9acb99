"""The job spec: defaults, field-named errors, canonical hashing, and no torch on import."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from trainer.spec import JobSpec, MLPSpec, ReduceOnPlateauSpec


def error_locations(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]


def error_text(data: dict) -> str:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(data)
    return str(info.value)


def test_empty_spec_is_a_digits_mlp() -> None:
    spec = JobSpec.model_validate({})
    assert spec.dataset.name == "digits"
    assert isinstance(spec.model, MLPSpec)
    assert spec.resolved_loss == "cross_entropy"
    assert spec.task == "classification"


def test_model_without_kind_is_an_mlp() -> None:
    assert isinstance(JobSpec.model_validate({"model": {"hidden": [32]}}).model, MLPSpec)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
        ({"optimizer": {"lr": 0}}, "optimizer.lr"),
        ({"model": {"dropout": 1.0}}, "model.mlp.dropout"),
        ({"model": {"input_dropout": -0.1}}, "model.mlp.input_dropout"),
        ({"dataset": {"name": "imagenet"}}, "dataset.name"),
        ({"dataset": {"val_fraction": 1.5}}, "dataset.val_fraction"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"regularization": {"l1": -1e-4}}, "regularization.l1"),
        (
            {"lr_schedule": {"kind": "reduce_on_plateau", "factor": 1.5}},
            "lr_schedule.reduce_on_plateau.factor",
        ),
        ({"lr_schedule": {"kind": "warp"}}, "lr_schedule"),
        ({"histograms": {"bins": 1}}, "histograms.bins"),
        ({"dropuot": 0.5}, "dropuot"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_invalid_field_is_named(data: dict, field: str) -> None:
    assert field in error_locations(data)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"task": "regression"}, "task: regression needs a regression dataset"),
        (
            {
                "task": "regression",
                "dataset": {"name": "diabetes"},
                "early_stopping": {"monitor": "val_accuracy"},
            },
            "early_stopping.monitor: regression has no val_accuracy",
        ),
        (
            {"task": "regression", "dataset": {"name": "diabetes"}, "loss": "cross_entropy"},
            "loss: regression uses mse or l1",
        ),
        ({"loss": "mse"}, "loss: classification uses cross_entropy"),
        ({"optimizer": {"name": "adam", "momentum": 0.9}}, "momentum: only sgd"),
        ({"dataset": {"use_official_test": True}}, "use_official_test"),
        (
            {
                "dataset": {"name": "synthetic", "synthetic": {"shape": [64]}},
                "model": {"kind": "cnn"},
            },
            "model: a cnn needs image data",
        ),
        ({"model": {"kind": "cnn", "channels": [4, 4, 4, 4]}}, "model.channels"),
        # 0.99 of 1797 leaves 18 examples: 4 to validate on, fewer than digits' 10 classes.
        (
            {"dataset": {"test_fraction": 0.99}},
            "test_fraction: 0.99 of 1797 examples leaves 4 for the validation split",
        ),
        (
            {
                "dataset": {
                    "name": "synthetic",
                    "synthetic": {"n_samples": 40, "n_classes": 8},
                    "test_fraction": 0.1,
                }
            },
            "leaves 4 for the test split, fewer than 8 (one per class)",
        ),
        (
            {"dataset": {"test_fraction": 0.5, "train_fraction": 0.6}},
            "test_fraction: 0.5 with train_fraction 0.6 is over 1",
        ),
        ({"dataset": {"test_fraction": "official"}}, "test_fraction: dataset 'digits' has no"),
        (
            {"dataset": {"test_fraction": 0.9, "train_subset": 150}},
            "test_fraction: 0.9 leaves 143 training examples, fewer than train_subset 150",
        ),
    ],
)
def test_cross_field_errors_name_the_field(data: dict, words: str) -> None:
    assert words in error_text(data)


def test_spec_hash_ignores_key_order_and_spelled_out_defaults() -> None:
    a = JobSpec.model_validate({"epochs": 5, "optimizer": {"lr": 0.01, "name": "sgd"}})
    b = JobSpec.model_validate({"optimizer": {"name": "sgd", "lr": 0.01}, "epochs": 5, "seed": 0})
    c = JobSpec.model_validate({"epochs": 6, "optimizer": {"lr": 0.01, "name": "sgd"}})
    assert a.spec_hash() == b.spec_hash()
    assert a.spec_hash() != c.spec_hash()


def test_plateau_defaults_follow_seed_001() -> None:
    sched = JobSpec.model_validate({"lr_schedule": {"kind": "reduce_on_plateau"}}).lr_schedule
    assert isinstance(sched, ReduceOnPlateauSpec)
    assert (sched.factor, sched.patience, sched.threshold, sched.threshold_mode, sched.min_lr) == (
        0.5,
        0,
        1e-3,
        "abs",
        1e-5,
    )


def test_spec_and_events_import_without_torch() -> None:
    # The API validates specs and parses events without a deep-learning stack.
    code = (
        "import sys, trainer, trainer.spec, trainer.events, trainer.callbacks;"
        "trainer.spec.JobSpec();"
        "print(sorted(m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
