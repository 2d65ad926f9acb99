"""Issue 25's answers on runs that real Celery workers train: a learning curve whose sizes
train the same optimizer steps, an L2 path with lambda_min and lambda_1se, and a fix study
made in one call from a run (digits, a few epochs each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import Worker
from tests.waits import wait_for

SMALL = {
    "dataset": {"normalize": "unit", "train_subset": 300},
    "model": {"hidden": [32]},
    "batch_size": 32,
    "histograms": {"enabled": False},
}


def finished(api: httpx.Client, study_id: int) -> dict[str, Any] | None:
    study = api.get(f"/studies/{study_id}").json()
    return study if study["done"] else None


def run_study(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    made = api.post("/studies", json=body)
    assert made.status_code == 201, made.text
    study = made.json()
    done = wait_for(lambda: finished(api, study["id"]), 300, f"study {study['name']} to finish")
    assert set(done["status"]) == {"succeeded"}, done["status"]
    return done


def test_a_learning_curve_whose_sizes_train_the_same_steps(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    """300 examples in batches of 32 are 10 steps an epoch, 40 in 4 epochs; 30 examples (one
    batch) train 40 epochs: 40 steps. Under budget epochs they train 4."""
    start_worker("w-curve-1")
    start_worker("w-curve-2")
    spec = {**SMALL, "epochs": 4}
    steps = {}
    for budget in ("steps", "epochs"):
        curve = {"sizes": [30, 90, 300], "budget": budget}
        design = {"learning_curve": curve, "seeds": [0, 1]}
        study = run_study(api, {"spec": spec, "design": design, "name": f"curve-{budget}"})
        curve = api.get(f"/studies/{study['id']}/learning_curve", params={"x": 0.05}).json()
        assert curve["budget"] == budget and [p["n_train"] for p in curve["points"]] == [
            30,
            90,
            300,
        ]
        steps[budget] = [p["values"]["steps_trained"]["mean"] for p in curve["points"]]
        assert all(p["values"]["steps_trained"]["n"] == 2 for p in curve["points"])
        for name, fit in curve["fits"].items():
            assert fit["n0"] == 300 and (fit["fitted"] or fit["why"]), (name, fit)
        assert curve["examples_needed"]["target"] == 0.05 and curve["examples_needed"]["why"]
    assert steps["steps"] == [40, 42, 40]  # 30: 40 epochs x 1; 90: 14 x 3; 300: 4 x 10
    assert steps["epochs"] == [4, 12, 40]


def test_an_l2_path_answers_lambda_min_and_lambda_1se(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    start_worker("w-path-1")
    start_worker("w-path-2")
    spec = {**SMALL, "epochs": 6, "histograms": {"enabled": True, "every": 6}}
    grid = {"field": "regularization.l2", "start": 1e-4, "stop": 1e-1, "count": 4}
    study = run_study(
        api, {"spec": spec, "design": {"path": grid, "folds": {"k": 2}}, "name": "l2-path"}
    )
    path = api.get(f"/studies/{study['id']}/path").json()
    values = [p["value"] for p in path["points"]]
    assert len(values) == 4 and values[0] == 1e-4
    norms = [p["values"]["weight_l2"]["mean"] for p in path["points"]]
    assert all(p["values"]["weight_l2"]["n"] == 2 for p in path["points"])
    assert norms[-1] < norms[0]  # a strong squared penalty shrinks the weights
    assert path["lambda_min"] in values and path["lambda_1se"] in values
    assert path["lambda_1se"] >= path["lambda_min"]
    best = min(path["points"], key=lambda p: p["values"]["min_val_loss"]["mean"])
    assert best["value"] == path["lambda_min"]


def test_a_fix_study_in_one_call_ranks_the_fixes(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    start_worker("w-fix-1")
    start_worker("w-fix-2")
    made = api.post("/jobs", json={"spec": {**SMALL, "epochs": 5}}).json()
    wait_for(
        lambda: api.get(f"/runs/{made['id']}").json()["status"] == "succeeded",
        120,
        "the run to succeed",
    )
    body = {"folds": 2, "fixes": ["dropout", "more_data", "random_labels"]}
    response = api.post(f"/runs/{made['id']}/fix_study", json=body)
    assert response.status_code == 201, response.text
    study = response.json()
    names = [c["name"] for c in study["configs"]]
    assert names == ["baseline", "dropout", "more_data", "random_labels"]
    done = wait_for(lambda: finished(api, study["id"]), 300, "the fix study to finish")
    assert done["status"] == {"succeeded": 8}
    effects = api.get(f"/studies/{study['id']}/effects").json()
    ranking = [names[c] for c in effects["ranking"]["min_val_loss"]]
    # Random labels leave nothing to learn: the worst validation loss by far.
    assert ranking[-1] == "random_labels" and len(ranking) == 3
    assert ranking.index("more_data") < ranking.index("random_labels")
