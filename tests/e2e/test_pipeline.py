"""The whole pipeline with real parts: HTTP in, Redis queue, Celery worker, trainer, metrics
back over HTTP, curves out. Plus the two ways a job ends early: a dead worker and a cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import Worker, logged_tokens
from tests.e2e.curves import assert_every_epoch_once
from tests.waits import wait_for

METRIC_KEYS = {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "gap", "lr"}


def run_state(api: httpx.Client, run_id: int) -> dict[str, Any]:
    return api.get(f"/runs/{run_id}").json()


def finished(api: httpx.Client, run_id: int) -> dict[str, Any] | None:
    run = run_state(api, run_id)
    return run if run["status"] in ("succeeded", "failed", "cancelled") else None


def statuses(api: httpx.Client, run_id: int) -> list[str]:
    events = api.get(f"/runs/{run_id}/events", params={"kind": "status"}).json()
    return [e["payload"]["status"] for e in events]


def test_a_job_runs_end_to_end(api: httpx.Client, start_worker: Callable[[str], Worker]) -> None:
    start_worker("w-happy")
    epochs = 4
    run = api.post(
        "/jobs", json={"spec": {"model": {"hidden": [32, 16]}, "epochs": epochs}, "name": "e2e"}
    ).json()
    assert run["status"] == "queued"
    done = wait_for(lambda: finished(api, run["id"]), 120, "the run to finish")
    assert done["status"] == "succeeded", done["failure_reason"]
    assert done["attempt"] == 1 and done["worker_host"] and done["device"].startswith("cpu")
    assert done["progress"] == {"epoch": epochs, "epochs": epochs}
    assert statuses(api, run["id"]) == ["queued", "running", "succeeded"]

    series = api.get(f"/runs/{run['id']}/curves").json()["series"]
    by_key = {s["key"]: s for s in series}
    assert by_key.keys() >= METRIC_KEYS
    assert_every_epoch_once(series, epochs)  # one point per epoch per key

    index = api.get(f"/runs/{run['id']}/histograms").json()["params"]
    numel = {
        "fc1.weight": 64 * 32,
        "fc1.bias": 32,
        "fc2.weight": 32 * 16,
        "fc2.bias": 16,
        "fc3.weight": 16 * 10,
        "fc3.bias": 10,
    }
    assert set(index) == set(numel)
    for param, size in numel.items():
        hist = api.get(f"/runs/{run['id']}/histograms", params={"param": param}).json()
        assert [h["step"] for h in hist["steps"]] == list(range(1, epochs + 1))
        assert all(sum(h["counts"]) == size == h["numel"] for h in hist["steps"])

    evaluation = api.get(f"/runs/{run['id']}/evaluation").json()["evaluation"]
    assert sum(map(sum, evaluation["confusion_matrix"])) == 360  # 20% of 1,797 digits
    assert len(evaluation["roc"]) == 10 and evaluation["epoch"] == epochs
    assert len(evaluation["pr"]) == 10 and evaluation["misclassified"]
    # Per class, both splits, every epoch (a 4-epoch run is evaluated at each one).
    table = api.get(f"/runs/{run['id']}/per_class").json()
    assert table["epochs"] == list(range(1, epochs + 1)) and len(table["gap"]) == 10
    assert [len(row) for row in table["gap"]] == [epochs] * 10
    train = api.get(f"/runs/{run['id']}/evaluation", params={"split": "train"}).json()
    assert train["evaluated"]["train"] == list(range(1, epochs + 1))
    assert sum(c["support"] for c in train["evaluation"]["per_class"]) == 1437


def test_a_killed_worker_leaves_an_honest_run(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    doomed = start_worker("w-doomed")
    epochs = 30
    spec = {"model": {"hidden": [1024, 1024]}, "epochs": epochs, "histograms": {"every": 10}}
    run_id = api.post("/jobs", json={"spec": spec}).json()["id"]
    wait_for(lambda: run_state(api, run_id)["progress"]["epoch"] >= 2, 120, "epoch 2")
    doomed.kill()  # SIGKILL to the worker and its pool: no goodbye, no ack
    assert run_state(api, run_id)["status"] == "running"

    # The API notices the silence and requeues the run, its partial data cleared.
    wait_for(lambda: run_state(api, run_id)["status"] == "queued", 30, "the run to be requeued")
    assert api.get(f"/runs/{run_id}/curves").json()["series"] == []

    start_worker("w-rescuer")
    done = wait_for(lambda: finished(api, run_id), 180, "the re-run to finish")
    assert done["status"] == "succeeded", done["failure_reason"]
    assert done["attempt"] == 2
    assert statuses(api, run_id) == ["queued", "running", "queued", "running", "succeeded"]
    # No duplicate epochs.
    assert_every_epoch_once(api.get(f"/runs/{run_id}/curves").json()["series"], epochs)


def test_cancelling_a_running_job_stops_its_worker(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    worker = start_worker("w-cancel")
    epochs = 200
    spec = {"model": {"hidden": [1024, 1024]}, "epochs": epochs, "histograms": {"enabled": False}}
    run_id = api.post("/jobs", json={"spec": spec}).json()["id"]
    wait_for(lambda: run_state(api, run_id)["progress"]["epoch"] >= 1, 120, "epoch 1")
    cancelled = api.post(f"/runs/{run_id}/cancel").json()
    assert cancelled["status"] == "cancelled"

    wait_for(lambda: f"run {run_id} stopped" in worker.output(), 30, "the worker to stop")
    points = api.get(f"/runs/{run_id}/curves", params={"keys": "val_loss"}).json()
    stored = points["series"][0]["total_points"]
    assert 1 <= stored < epochs
    assert run_state(api, run_id)["status"] == "cancelled"
    # The worker is free again: the next job runs.
    next_id = api.post("/jobs", json={"spec": {"epochs": 2, "model": {"hidden": [8]}}}).json()["id"]
    assert wait_for(lambda: finished(api, next_id), 60, "the next job")["status"] == "succeeded"


def test_workers_hold_only_their_runs_token_and_no_log_shows_one(
    api: httpx.Client, start_worker: Callable[[str], Worker], pipeline_env: dict[str, str]
) -> None:
    worker = start_worker("w-tokens")
    run_id = api.post("/jobs", json={"spec": {"epochs": 2, "model": {"hidden": [8]}}}).json()["id"]
    done = wait_for(lambda: finished(api, run_id), 60, "the run")
    assert done["status"] == "succeeded", done["failure_reason"]
    assert done["created_by"] == "e2e"
    # The worker's environment holds no user token; it reported with the run's own token.
    assert not any("TOKEN" in key for key in pipeline_env)
    assert "Task fitlens.train_run" in worker.output()  # the log is there, and read
    assert logged_tokens(pipeline_env) == []


def test_a_diverging_run_is_kept_with_its_mark_and_every_epoch(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    """Regression on diabetes with SGD at lr 10 (issue 10): it used to end failed with
    '422: histograms.3: edges must be strictly increasing', its data lost."""
    start_worker("w-diverge")
    spec = {
        "task": "regression",
        "dataset": {"name": "diabetes"},
        "optimizer": {"name": "sgd", "lr": 10.0},
        "epochs": 30,
    }
    run = api.post("/jobs", json={"spec": spec, "name": "diverges"}).json()
    done = wait_for(lambda: finished(api, run["id"]), 120, "the run to finish")
    assert done["status"] == "succeeded", done["failure_reason"]
    epochs = done["progress"]["epoch"]
    assert done["diverged_epoch"] == epochs < 30  # it stopped where it diverged
    losses = {s["key"]: s for s in api.get(f"/runs/{run['id']}/curves").json()["series"]}
    assert losses["train_loss"]["steps"] == list(range(1, epochs + 1))
    last = [losses[k]["values"][-1] for k in ("train_loss", "val_loss")]
    assert any(v in ("NaN", "Infinity", "-Infinity") for v in last)  # kept as they are
    index = api.get(f"/runs/{run['id']}/histograms").json()["params"]
    assert index["fc1.weight"] == list(range(1, epochs + 1))  # every epoch's histograms too
    assert api.get(f"/runs/{run['id']}/evaluation").status_code == 200
    diverged = api.get(f"/runs/{run['id']}/events", params={"kind": "diverged"}).json()
    assert [e["step"] for e in diverged] == [epochs]
    assert done["environment"]["torch"].startswith("2.") and "fitlens" in done["environment"]
