"""Studies trained by real Celery workers over a real broker (issue 12): a 2 x 2 sweep x 3
folds makes 12 runs that two workers share, with the right overrides and folds that are
disjoint and cover the data; a member that fails leaves the others to finish."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import stats

from tests.e2e.conftest import Worker
from tests.waits import wait_for

DIGITS = 1797


def finished_study(api: httpx.Client, study_id: int) -> dict[str, Any] | None:
    study = api.get(f"/studies/{study_id}").json()
    return study if study["done"] else None


def test_a_sweep_with_folds_shared_by_two_workers(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    start_worker("w-study-1")
    start_worker("w-study-2")
    body = {
        "spec": {"model": {"hidden": [32]}, "epochs": 3, "histograms": {"enabled": False}},
        "design": {
            "sweep": {"model.dropout": [0, 0.5], "optimizer.weight_decay": [0, 1e-4]},
            "folds": {"k": 3},
        },
        "name": "grid",
    }
    study = api.post("/studies", json=body).json()
    assert study["members"] == 12
    done = wait_for(lambda: finished_study(api, study["id"]), 300, "the study to finish")
    assert done["status"] == {"succeeded": 12}
    runs = api.get("/runs", params={"study": study["id"], "limit": 100}).json()["items"]
    assert len({r["worker_host"] for r in runs}) >= 1 and len(runs) == 12
    assert len({r["id"] for r in runs}) == 12
    for config in range(4):
        overrides = study["configs"][config]["overrides"]
        mine = [r for r in runs if r["study_config"] == config]
        assert sorted(r["study_replicate"] for r in mine) == [0, 1, 2]
        validated = 0
        for run in mine:
            assert run["spec"]["model"]["dropout"] == overrides["model.dropout"]
            assert run["spec"]["optimizer"]["weight_decay"] == overrides["optimizer.weight_decay"]
            evaluation = api.get(f"/runs/{run['id']}/evaluation").json()["evaluation"]
            fold_size = sum(map(sum, evaluation["confusion_matrix"]))
            assert abs(fold_size - DIGITS / 3) <= 1  # each fold a third of the data
            validated += fold_size
        assert validated == DIGITS  # the three folds cover every example, once
    # The aggregates and the effects are numpy's and scipy's, on the stored member data.
    by = {(r["study_config"], r["study_replicate"]): r for r in runs}
    stored = {
        r["id"]: api.get(f"/runs/{r['id']}/curves", params={"keys": "val_loss"}).json()
        for r in runs
    }
    bands = api.get(f"/studies/{study['id']}/curves", params={"keys": "val_loss"}).json()
    for config in bands["configs"]:
        values = np.array(
            [stored[by[(config["config"], f)]["id"]]["series"][0]["values"] for f in range(3)]
        )
        band = config["curves"][0]
        assert band["n"] == [3, 3, 3]
        assert band["mean"] == pytest.approx(values.mean(axis=0).tolist())
        assert band["std"] == pytest.approx(values.std(axis=0, ddof=1).tolist())
    table = api.get(f"/studies/{study['id']}/table").json()
    assert [row["values"]["min_val_loss"]["n"] for row in table["rows"]] == [3, 3, 3, 3]
    read = api.get(f"/studies/{study['id']}/effects").json()
    assert read["ci_method"].startswith("corrected resampled t-test")
    base = [by[(0, f)]["diagnosis"]["min_val_loss"] for f in range(3)]
    for e in read["configs"]:
        other = [by[(e["config"], f)]["diagnosis"]["min_val_loss"] for f in range(3)]
        # Nadeau and Bengio: 3 folds of 1,797 digits validate on 599 and train on 1,198, so
        # the mean's variance is s^2 (1/3 + 599/1198) instead of s^2 / 3.
        diff = np.subtract(other, base)
        half = stats.t.ppf(0.975, 2) * np.sqrt(diff.var(ddof=1) * (1 / 3 + 599 / 1198))
        low, high = diff.mean() - half, diff.mean() + half
        got = e["effects"]["min_val_loss"]
        assert got["n"] == 3 and got["mean"] == pytest.approx(np.mean(np.subtract(other, base)))
        assert (got["ci_low"], got["ci_high"]) == (pytest.approx(low), pytest.approx(high))


def test_a_failing_member_leaves_the_others_to_finish(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    start_worker("w-study-fail")
    body = {
        "spec": {"model": {"hidden": [16]}, "epochs": 2},
        # MNIST is not on this worker's disk (and downloads are off): that member fails.
        "design": {"overrides": [{}, {"dataset.name": "mnist"}, {"model.hidden": [8]}]},
    }
    study = api.post("/studies", json=body).json()
    done = wait_for(lambda: finished_study(api, study["id"]), 300, "the study to finish")
    assert done["status"] == {"succeeded": 2, "failed": 1}
    runs = api.get("/runs", params={"study": study["id"]}).json()["items"]
    failed = [r for r in runs if r["status"] == "failed"]
    assert [r["study_config"] for r in failed] == [1]
    assert "mnist" in failed[0]["failure_reason"].lower()
    rows = api.get(f"/studies/{study['id']}/table").json()["rows"]
    assert [row["status"] for row in rows] == [{"succeeded": 1}, {"failed": 1}, {"succeeded": 1}]


def test_cancel_and_retry_reach_the_members_on_real_workers(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    worker = start_worker("w-study-cancel")
    body = {
        "spec": {"model": {"hidden": [16]}, "epochs": 120, "histograms": {"enabled": False}},
        "design": {"seeds": [1, 2, 3]},
    }
    study = api.post("/studies", json=body).json()

    def one_running() -> bool:
        return api.get(f"/studies/{study['id']}").json()["status"].get("running", 0) == 1

    wait_for(one_running, 120, "a member to start")
    cancelled = api.post(f"/studies/{study['id']}/cancel").json()
    assert cancelled["status"] == {"cancelled": 3} and cancelled["done"]
    # The worker stops the running member at its next heartbeat, then takes the other two
    # messages from the queue and skips them: nothing else starts.
    runs = api.get("/runs", params={"study": study["id"]}).json()["items"]
    started = [r for r in runs if r["started_at"] is not None]
    assert len(started) == 1
    wait_for(
        lambda: (
            f"run {started[0]['id']} stopped" in worker.output()
            and all(
                re.search(rf"run {r['id']}:? (is cancelled|skipped)", worker.output())
                for r in runs
                if r is not started[0]
            )
        ),
        60,
        "the worker to stop one member and skip the others",
    )
    runs = api.get("/runs", params={"study": study["id"]}).json()["items"]
    assert all(r["status"] == "cancelled" for r in runs)
    assert [r["id"] for r in runs if r["started_at"] is not None] == [started[0]["id"]]
    assert len(re.findall(r"attempt 1 started", worker.output())) == 1
    assert next(r for r in runs if r["started_at"])["progress"]["epoch"] < 120

    retried = api.post(f"/studies/{study['id']}/retry").json()
    assert retried["status"] == {"queued": 3}
    done = wait_for(lambda: finished_study(api, study["id"]), 300, "the retried study")
    assert done["status"] == {"succeeded": 3}
    runs = api.get("/runs", params={"study": study["id"]}).json()["items"]
    # The member that had started runs a second attempt; the others their first.
    first = started[0]["id"]
    assert {r["id"]: r["attempt"] for r in runs} == {
        r["id"]: 2 if r["id"] == first else 1 for r in runs
    }


def test_the_winner_of_a_20_configuration_sweep_is_optimistic_on_validation(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    """Issue 24: 20 configurations whose learning rates differ by 1% steps (none is really
    better than another: the winner is mostly chosen by noise), 3 folds of a 300-example
    training subset, a held-out test split. The configuration validation picks scores higher
    on validation than on the test split, by more than the sweep's configurations do on
    average (the winner's luck), and the study says by how much, with an interval."""
    start_worker("w-sweep-1")
    start_worker("w-sweep-2")
    body = {
        "spec": {
            "dataset": {"normalize": "unit", "train_subset": 300, "test_fraction": 0.2},
            "model": {"hidden": [64]},
            "epochs": 10,
            "histograms": {"enabled": False},
        },
        "design": {
            "sweep": {"optimizer.lr": [round(3e-3 * (1 + 0.01 * i), 7) for i in range(20)]},
            "folds": {"k": 3},
        },
        "name": "sweep-20",
    }
    study = api.post("/studies", json=body).json()
    assert study["members"] == 60, study
    done = wait_for(lambda: finished_study(api, study["id"]), 600, "the sweep to finish")
    assert done["status"] == {"succeeded": 60}
    winner = api.get(f"/studies/{study['id']}/winner").json()
    table = api.get(f"/studies/{study['id']}/table").json()
    means = [r["values"]["val_accuracy"]["mean"] for r in table["rows"]]
    assert winner["config"] == means.index(max(means)) and winner["by"] == "val_accuracy"
    val, test = winner["val_accuracy"]["mean"], winner["test_accuracy"]["mean"]
    assert val > test and winner["test_accuracy"]["n"] == 3
    average = np.mean([r["values"]["optimism"]["mean"] for r in table["rows"]])
    assert winner["optimism_mean"] > average
    assert abs(winner["optimism_mean"] - (val - test)) < 1e-9
    assert winner["optimism_ci_low"] < winner["optimism_mean"] < winner["optimism_ci_high"]
    # Every member's test split is the same 360 examples, whatever its seed or fold.
    runs = api.get("/runs", params={"study": study["id"], "limit": 100}).json()["items"]
    sizes = {
        sum(
            map(
                sum,
                api.get(f"/runs/{r['id']}/evaluation", params={"split": "test"}).json()[
                    "evaluation"
                ]["confusion_matrix"],
            )
        )
        for r in runs[:4]
    }
    assert sizes == {360}


def test_a_label_noise_control_reports_how_fast_the_network_memorizes(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    """Issue 25's memorization control, through a real worker: the same wide network on clean
    labels and on random ones; only the random ones are memorized with validation at chance,
    and the table says after how many epochs."""
    start_worker("w-memorize")
    body = {
        "spec": {
            "dataset": {"normalize": "unit", "train_subset": 300},
            "model": {"hidden": [1000]},
            "optimizer": {"lr": 3e-3},
            "batch_size": 16,
            "epochs": 40,
            "histograms": {"enabled": False},
        },
        "design": {"overrides": [{}, {"dataset.label_noise": 1.0}], "names": ["clean", "noise"]},
        "name": "memorization",
    }
    study = api.post("/studies", json=body).json()
    done = wait_for(lambda: finished_study(api, study["id"]), 300, "the control to finish")
    assert done["status"] == {"succeeded": 2}
    rows = {r["name"]: r for r in api.get(f"/studies/{study['id']}/table").json()["rows"]}
    noise = rows["noise"]["values"]
    assert noise["memorization_epochs"]["n"] == 1 and 5 < noise["memorization_epochs"]["mean"] < 40
    assert rows["noise"]["verdicts"] == {"not learning": 1}
    assert rows["clean"]["values"]["memorization_epochs"]["n"] == 0  # it learnt instead
    assert rows["clean"]["values"]["val_accuracy"]["mean"] > 0.8
