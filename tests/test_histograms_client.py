"""The client's histograms (numpy, fitlens.histograms) agree with the trainer's (torch, on the
device: trainer.stats), on ordinary weights and on the values that break naive binning."""

from __future__ import annotations

import math

import pytest
import torch

from fitlens.histograms import histogram, model_histograms
from trainer.stats import pack_histograms, unpack_histograms

CASES = {
    "normal": torch.randn(40, 30, generator=torch.Generator().manual_seed(0)),
    "constant zeros": torch.zeros(17),
    "constant huge": torch.full((5,), 3.0e300, dtype=torch.float64),
    "extremes": torch.tensor([-1.7e308, 1.7e308, 0.0], dtype=torch.float64),
    "non-finite": torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0, 2.0, 2.0]),
    "all nan": torch.tensor([float("nan"), float("nan")]),
    "diverged": torch.tensor([-2.5e16, -2.5e16 + 4, 1.0], dtype=torch.float64),
}


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_client_bins_as_the_trainer_does(case: str) -> None:
    values, bins = CASES[case], 16
    params = [("w", values)]
    trainer = unpack_histograms(pack_histograms(params, bins, 1e-3).tolist(), params, bins, 3)[0]
    client = histogram("w", values.numpy(), step=3, bins=bins, near_zero=1e-3)
    assert client["counts"] == trainer.counts
    assert sum(client["counts"]) == int(torch.isfinite(values).sum())
    assert all(_same(a, b) for a, b in zip(client["edges"], trainer.edges, strict=True))
    assert all(b > a for a, b in zip(client["edges"], client["edges"][1:], strict=False))
    for field in ("mean", "std", "min", "max", "l1", "l2", "near_zero"):
        assert _same(client[field], getattr(trainer, field)), field
    for field in ("nan_count", "posinf_count", "neginf_count", "numel"):
        assert client[field] == getattr(trainer, field), field


def test_a_models_histograms_name_each_parameter_at_its_step() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    found = model_histograms(model, step=7, bins=8)
    assert [h["param"] for h in found] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert {h["step"] for h in found} == {7}
    assert [sum(h["counts"]) for h in found] == [12, 3, 6, 2]
