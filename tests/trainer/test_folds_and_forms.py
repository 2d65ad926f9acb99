"""Cross-validation folds, learning-curve subsets and the two L2 forms (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.datasets import load_diabetes, load_digits

from trainer.data import load_data
from trainer.dataspec import FoldSpec
from trainer.loop import _add_penalty_grads
from trainer.spec import JobSpec
from trainer.splits import fold_indices
from trainer.stats import penalty


@pytest.mark.parametrize(
    ("task", "name", "k", "n"),
    [("classification", "digits", 5, 1797), ("regression", "diabetes", 3, 442)],
)
def test_folds_are_disjoint_and_cover_the_data(task: str, name: str, k: int, n: int) -> None:
    """Each example is validated in exactly one fold and trained on in the other k - 1."""
    y = (load_digits() if name == "digits" else load_diabetes()).target
    seen = np.zeros(n, dtype=int)
    for index in range(k):
        folds = FoldSpec(k=k, index=index)
        train_idx, val_idx = fold_indices(y, folds, task == "classification")
        assert set(train_idx).isdisjoint(val_idx) and len(train_idx) + len(val_idx) == n
        seen[val_idx] += 1
        spec = JobSpec.model_validate(
            {"task": task, "dataset": {"name": name, "folds": folds.model_dump()}}
        )
        data = load_data(spec, torch.device("cpu"))
        assert (len(data.y_train), len(data.y_val)) == (len(train_idx), len(val_idx))
        assert abs(len(val_idx) - n / k) <= 1
    assert (seen == 1).all()


def test_classification_folds_keep_each_class_share() -> None:
    y = np.repeat(np.arange(4), [50, 100, 150, 200])
    counts = []
    for index in range(5):
        _, val = fold_indices(y, FoldSpec(k=5, index=index), classification=True)
        counts.append(np.bincount(y[val], minlength=4))
    assert (np.array(counts) == [10, 20, 30, 40]).all()
    # The same folds whatever the run's seed: they follow the fold seed only.
    again = fold_indices(y, FoldSpec(k=5, index=2), True)[1]
    other = fold_indices(y, FoldSpec(k=5, index=2, seed=7), True)[1]
    assert set(again) == set(fold_indices(y, FoldSpec(k=5, index=2), True)[1])
    assert set(again) != set(other)


def test_train_fraction_keeps_that_share_of_the_training_split() -> None:
    full = load_data(JobSpec(), torch.device("cpu"))
    half = load_data(
        JobSpec.model_validate({"dataset": {"train_fraction": 0.25}}), torch.device("cpu")
    )
    assert len(half.y_train) == round(0.25 * len(full.y_train))
    assert len(half.y_val) == len(full.y_val)  # validation is untouched


@pytest.mark.parametrize(
    ("dataset", "field"),
    [
        ({"folds": {"k": 3, "index": 3}}, "index"),
        ({"folds": {"k": 1}}, "k"),
        ({"name": "mnist", "use_official_test": True, "folds": {"k": 3}}, "folds"),
        ({"train_subset": 10, "train_fraction": 0.5}, "train_fraction"),
        ({"train_fraction": 0}, "train_fraction"),
    ],
)
def test_bad_folds_and_fractions_name_the_field(dataset: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        JobSpec.model_validate({"dataset": dataset})


def test_stratified_folds_need_classes() -> None:
    with pytest.raises(ValidationError, match="stratified"):
        JobSpec.model_validate(
            {"task": "regression", "dataset": {"name": "diabetes", "folds": {"stratified": True}}}
        )


@pytest.mark.parametrize("form", ["squared", "norm"])
def test_both_l2_forms_match_autograd(form: str) -> None:
    """The hand-added gradient and the reported penalty equal what autograd gives for the
    penalty written out: lambda * sum w^2, or seed 001's lambda * sum ||w||_2."""
    torch.manual_seed(0)
    params = [torch.randn(3, 4, requires_grad=True), torch.randn(4, requires_grad=True)]
    lam = 1e-2
    written = torch.stack(
        [p.square().sum() if form == "squared" else torch.linalg.vector_norm(p) for p in params]
    ).sum()
    (lam * written).backward()
    expected = [p.grad.clone() for p in params]  # type: ignore[union-attr]
    for p in params:
        p.grad = torch.zeros_like(p)
    with torch.no_grad():
        _add_penalty_grads(params, 0.0, lam, form)
        value = penalty(params, 0.0, lam, form)
    for p, e in zip(params, expected, strict=True):
        assert torch.allclose(p.grad, e, atol=1e-7)  # type: ignore[arg-type]
    assert value.item() == pytest.approx(lam * written.item(), rel=1e-6)


def test_a_run_uses_the_threads_it_is_given(tmp_path: Path) -> None:
    """FITLENS_TORCH_THREADS: workers sharing a machine each take their share of its cores."""
    spec = tmp_path / "spec.json"
    spec.write_text('{"epochs": 1, "model": {"hidden": [8]}}')
    out = tmp_path / "events.jsonl"
    env = {**os.environ, "FITLENS_TORCH_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "trainer", "run", str(spec), "--out", str(out)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    started = json.loads(out.read_text().splitlines()[0])
    assert started["event"] == "run_started" and "1 threads" in started["device_name"]
