"""The fits of api.studies.fits against cases worked by hand."""

from __future__ import annotations

import math

import pytest

from api.studies.fits import examples_for_gap, path_choice, power_law

SIZES = [100.0, 200.0, 400.0, 800.0, 1600.0]


def test_a_noiseless_power_law_comes_back_with_tight_intervals() -> None:
    """val loss 0.1 + 2 * (n / 1600)^-0.7, three members a size with +-0.001 around it."""
    sizes, values = [], []
    for n in SIZES:
        for wiggle in (-0.001, 0.0, 0.001):
            sizes.append(n)
            values.append(0.1 + 2 * (n / 1600) ** -0.7 + wiggle)
    fit = power_law(sizes, values, floor=True)
    assert fit["fitted"] and fit["n0"] == 1600 and fit["dof"] == 12
    for name, truth in (("a", 2.0), ("b", 0.7), ("c", 0.1)):
        p = fit["params"][name]
        assert p["value"] == pytest.approx(truth, abs=0.01)
        assert p["ci_low"] < truth < p["ci_high"] and p["ci_high"] - p["ci_low"] < 0.05


def test_examples_for_a_gap_solve_the_fitted_law() -> None:
    """gap 0.5 * (n / 1600)^-0.5: under 0.25 at n = 1600 * (0.5 / 0.25)^2 = 6400."""
    sizes = [n for n in SIZES for _ in range(2)]
    gaps = [0.5 * (n / 1600) ** -0.5 * (1 + e) for n in SIZES for e in (-0.01, 0.01)]
    fit = power_law(sizes, gaps, floor=False)
    answer = examples_for_gap(fit, 0.25)
    assert answer["examples"] == pytest.approx(6400, rel=0.05) and answer["extrapolated"]
    assert "extrapolation" in answer["why"]
    under = examples_for_gap(fit, 0.9)  # the largest size is there already
    assert under["examples"] == 1600 and under["extrapolated"] is False


def test_a_flat_gap_cannot_tell() -> None:
    """Noise around a constant: b's interval holds 0, so no number of examples is claimed."""
    sizes = [n for n in SIZES for _ in range(3)]
    gaps = [0.3 + 0.05 * math.sin(7 * i) for i in range(len(sizes))]
    answer = examples_for_gap(power_law(sizes, gaps, floor=False), 0.1)
    assert answer["examples"] is None and "cannot tell" in answer["why"]


def test_too_few_sizes_say_so() -> None:
    fit = power_law([100, 100, 200], [1.0, 1.1, 0.9], floor=True)
    assert not fit["fitted"] and "2 training-set sizes" in fit["why"]
    assert examples_for_gap(fit, 0.1)["examples"] is None


def test_lambda_min_and_lambda_1se_by_hand() -> None:
    """The minimum 0.28 at 1e-3 with std 0.04 over 4 folds: standard error 0.02, so every
    mean up to 0.30 is within one; the largest such value is 1e-2 (0.29), not 1e-1 (0.35)."""
    points = [
        (1e-4, 0.30, 0.02, 4),
        (1e-3, 0.28, 0.04, 4),
        (1e-2, 0.29, 0.03, 4),
        (1e-1, 0.35, 0.05, 4),
    ]
    choice = path_choice(points)
    assert choice["lambda_min"] == 1e-3 and choice["lambda_1se"] == 1e-2
    assert choice["threshold"] == pytest.approx(0.30)
    single = path_choice([(v, m, None, 1) for v, m, _, _ in points])
    assert single == {"lambda_min": 1e-3, "lambda_1se": None, "threshold": None}
