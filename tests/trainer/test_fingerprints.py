"""The reproducibility record: data fingerprints that pin the data and its splits, and the
threads a run trains with."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from tests.trainer.conftest import Recorder
from trainer.data import _sha256
from trainer.environment import environment
from trainer.loop import train
from trainer.spec import JobSpec


def started(spec: dict) -> dict[str, str]:
    recorder = Recorder()
    train(JobSpec.model_validate({"epochs": 1, **spec}), [recorder])
    assert recorder.started is not None
    return recorder.started.fingerprints


def test_the_same_split_has_the_same_fingerprint_and_another_does_not() -> None:
    one = started({"seed": 1})
    assert started({"seed": 1}) == one and set(one) == {"dataset", "train", "val"}
    # The hold-out split follows the run's seed; k folds follow their own.
    other_seed = started({"seed": 2})
    assert other_seed["dataset"] == one["dataset"] and other_seed["val"] != one["val"]
    folds = {"folds": {"k": 5, "index": 1}}
    fold = started({"seed": 1, "dataset": folds})
    assert started({"seed": 2, "dataset": folds}) == fold and fold["val"] != one["val"]
    noisy = started({"seed": 1, "dataset": {"label_noise": 0.5}})
    assert noisy["val"] == one["val"] and noisy["train"] != one["train"]  # labels trained on
    tested = started({"dataset": {"test_fraction": 0.2}})
    assert "test" in tested


def test_a_fingerprint_is_sha256_of_little_endian_bytes_by_hand() -> None:
    index, labels = np.array([3, 1], dtype="<i8"), np.array([7, 0], dtype=np.int64)
    expected = hashlib.sha256()
    for a in (index, labels):
        expected.update(f"{a.shape}{a.dtype.str}".encode())
        expected.update(a.tobytes())
    assert _sha256(index, labels) == expected.hexdigest()
    assert _sha256(index.astype(">i8"), labels) == expected.hexdigest()  # byte order aside


def test_the_record_names_the_threads_the_run_trains_with() -> None:
    threads = torch.get_num_threads()
    assert environment(torch.device("cpu"))["threads"] == str(threads)
