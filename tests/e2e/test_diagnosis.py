"""Diagnoses of real runs, trained by a real worker (issue 12): the unregularized tiny-subset
example overfits, a run with a huge learning rate diverges, and the same example with early
stopping names its restored epoch, which its evaluation and its summary use; a run at chance
is not learning and a finite blow-up is unstable (issue 24)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

from tests.e2e.conftest import Worker
from tests.e2e.test_pipeline import finished
from tests.test_verdicts import AT_CHANCE, BLOWN_UP
from tests.waits import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> dict[str, object]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def test_real_runs_are_diagnosed(api: httpx.Client, start_worker: Callable[[str], Worker]) -> None:
    start_worker("w-diagnosis")
    diverging = {
        "task": "regression",
        "dataset": {"name": "diabetes"},
        "optimizer": {"name": "sgd", "lr": 10.0},
        "epochs": 30,
    }
    tiny = example("overfit_tiny_subset")
    ids = {
        name: api.post("/jobs", json={"spec": spec, "name": name}).json()["id"]
        for name, spec in (
            ("no-regularization", tiny),
            ("early-stopping", {**tiny, "early_stopping": {"patience": 3}}),
            ("diverging", diverging),
            ("at-chance", AT_CHANCE),
            ("blown-up", BLOWN_UP),
        )
    }
    done = {
        name: wait_for(partial(finished, api, run_id), 300, f"{name} to finish")
        for name, run_id in ids.items()
    }
    assert all(run["status"] == "succeeded" for run in done.values())

    plain = done["no-regularization"]["diagnosis"]
    assert plain["verdict"] == "overfitting", plain["why"]
    assert 1 <= plain["onset_epoch"] < 30 and plain["final_gap"] > plain["gap_at_best"]
    overfit = api.get("/runs", params={"verdict": "overfitting"}).json()["items"]
    assert ids["no-regularization"] in [r["id"] for r in overfit]

    diverged = done["diverging"]["diagnosis"]
    assert diverged["verdict"] == "diverged"
    # Its evaluation names the last epoch whose losses were finite, not a best epoch of 0.
    ev = api.get(f"/runs/{ids['diverging']}/evaluation").json()["evaluation"]
    assert ev["last_finite_epoch"] == ((diverged["diverged_epoch"] or 0) - 1 or None)
    assert ev["best_val_loss"] is None or ev["best_val_loss"] != "Infinity"
    # Issue 24: the worker posts the trainer's baseline; a run at chance and a finite blow-up
    # are named for what they are, with the numbers that decided it.
    chance = done["at-chance"]["diagnosis"]
    assert chance["verdict"] == "not learning" and "class frequencies" in chance["why"]
    baseline = api.get(f"/runs/{ids['at-chance']}/events", params={"kind": "baseline"}).json()
    assert baseline[0]["payload"]["n_val"] == 360
    blown = done["blown-up"]["diagnosis"]
    assert blown["verdict"] == "unstable" and "a model that learnt nothing" in blown["why"]
    unstable = api.get("/runs", params={"verdict": "unstable"}).json()["items"]
    assert ids["blown-up"] in [r["id"] for r in unstable]

    stopped = done["early-stopping"]
    d = stopped["diagnosis"]
    assert d["early_stopped"] and "did not improve" in d["stop_reason"]
    assert d["restored_epoch"] == d["evaluated_epoch"] == d["best_epoch"] < d["epochs"]
    evaluation = api.get(f"/runs/{stopped['id']}/evaluation").json()["evaluation"]
    assert evaluation["epoch"] == d["restored_epoch"]
    curves = api.get(f"/runs/{stopped['id']}/curves", params={"keys": "val_accuracy"}).json()
    accuracy = dict(zip(curves["series"][0]["steps"], curves["series"][0]["values"], strict=True))
    summary = api.get("/compare", params={"runs": stopped["id"]}).json()["runs"][0]["summary"]
    assert summary["evaluated_epoch"] == d["restored_epoch"]
    assert summary["val_accuracy"] == accuracy[d["restored_epoch"]]
    assert summary["final_val_accuracy"] == accuracy[d["epochs"]]


def test_real_runs_show_per_class_onsets_a_test_split_and_an_early_stop(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    """Issue 24: the tiny-subset example overfits class by class; with a test split its
    validation score is compared with data nothing was selected on; seed 001's early-stopping
    example stops within its 30 epochs."""
    start_worker("w-per-class")
    tiny = example("overfit_tiny_subset")
    held_out = {**tiny, "dataset": {**tiny["dataset"], "test_fraction": 0.2}}  # type: ignore[dict-item]
    ids = {
        name: api.post("/jobs", json={"spec": spec, "name": name}).json()["id"]
        for name, spec in (
            ("tiny", tiny),
            ("held-out", held_out),
            ("seed001-early-stopping", example("seed001_early_stopping")),
            ("regression", {"task": "regression", "dataset": {"name": "diabetes"}, "epochs": 5}),
        )
    }
    done = {
        name: wait_for(partial(finished, api, run_id), 300, f"{name} to finish")
        for name, run_id in ids.items()
    }
    assert all(run["status"] == "succeeded" for run in done.values())

    table = api.get(f"/runs/{ids['tiny']}/per_class").json()
    assert table["epochs"] == list(range(3, 31, 3)) and len(table["labels"]) == 10
    onsets = [o["onset_epoch"] for o in table["onsets"]]
    assert any(o is not None for o in onsets) and any(o is None for o in onsets), table["summary"]
    assert done["tiny"]["diagnosis"]["per_class"] == table["onsets"]

    d = done["held-out"]["diagnosis"]
    test = api.get(f"/runs/{ids['held-out']}/evaluation", params={"split": "test"}).json()
    assert test["evaluation"]["epoch"] == d["evaluated_epoch"] == 30
    assert sum(c["support"] for c in test["evaluation"]["per_class"]) == 360  # 20% of 1,797
    expected = d["at_evaluated"]["val_accuracy"] - test["evaluation"]["accuracy"]
    assert abs(d["optimism"]["accuracy"] - expected) < 1e-9 and "loss" in d["optimism"]

    # Regression: predicted against actual values and the residuals, as data to plot.
    regression = api.get(f"/runs/{ids['regression']}/evaluation").json()["evaluation"]
    p = regression["predictions"]
    assert len(p["actual"]) == len(p["predicted"]) == len(p["residual"]) == 89  # 20% of 442
    triples = zip(p["actual"], p["predicted"], p["residual"], strict=True)
    assert all(abs(r - (b - a)) < 1e-9 for a, b, r in triples)

    stopped = done["seed001-early-stopping"]["diagnosis"]
    assert stopped["early_stopped"] and stopped["epochs"] < 30, stopped["stop_reason"]
    assert stopped["restored_epoch"] == stopped["evaluated_epoch"] < stopped["epochs"]
