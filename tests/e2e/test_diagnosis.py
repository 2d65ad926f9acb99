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

    assert done["diverging"]["diagnosis"]["verdict"] == "diverged"
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
