"""Data augmentation: the warp itself, its own seed, and a run that trains with it."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError

from tests.trainer.conftest import Recorder
from trainer.augment import Augmenter
from trainer.dataspec import AugmentationSpec
from trainer.loop import train
from trainer.spec import JobSpec

CPU = torch.device("cpu")


def images() -> torch.Tensor:
    x = torch.zeros(16, 1, 8, 8)
    x[:, 0, 2:6, 3:5] = 1.0  # a bar in the middle of each
    return x


def test_no_shift_rotation_or_zoom_is_the_identity() -> None:
    still = Augmenter(AugmentationSpec(shift=0, rotate=0, scale=0), CPU)
    assert torch.allclose(still(images()), images(), atol=1e-5)


def test_each_example_gets_its_own_warp_from_its_own_seed() -> None:
    x = images()
    out = Augmenter(AugmentationSpec(seed=1), CPU)(x)
    again = Augmenter(AugmentationSpec(seed=1), CPU)(x)
    other = Augmenter(AugmentationSpec(seed=2), CPU)(x)
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert not torch.allclose(out, x)
    flat = out.flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == len(flat)  # no two alike
    # A shift of at most a tenth of a side moves the bar's centre by at most 0.8 pixels
    # (plus what a 10 degree turn and a 10% zoom move it about the centre).
    columns = torch.arange(8.0)
    centre = (out[:, 0].sum(1) * columns).sum(1) / out[:, 0].sum((1, 2))
    assert (centre - 3.5).abs().max() < 1.5


def test_a_run_trains_on_warped_images_and_validates_on_the_real_ones() -> None:
    data: dict[str, Any] = {"name": "digits", "train_subset": 300}
    plain = {"dataset": data, "epochs": 2, "seed": 3}
    warped = {**plain, "dataset": {**data, "augmentation": {"seed": 5}}}
    runs = []
    for spec in (plain, warped, warped):
        recorder = Recorder()
        train(JobSpec.model_validate(spec), [recorder])
        runs.append(recorder)
    assert runs[0].started is not None and runs[1].started is not None
    # The same data: the baseline is scored on the untouched validation split.
    assert runs[0].started.baseline == runs[1].started.baseline
    first, second, third = (r.epochs[-1].metrics for r in runs)
    assert first["val_loss"] != second["val_loss"]  # it trained on other inputs
    assert second["val_loss"] == third["val_loss"]  # and the same ones every time


def test_augmentation_is_for_images_only() -> None:
    with pytest.raises(ValidationError, match=r"dataset\.augmentation: only image data"):
        JobSpec.model_validate(
            {"dataset": {"name": "diabetes", "augmentation": {}}, "task": "regression"}
        )
    with pytest.raises(ValidationError):
        AugmentationSpec(shift=0.9)
