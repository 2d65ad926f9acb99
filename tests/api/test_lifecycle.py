"""Attempts and dead workers: a run never stays "running" after its worker went silent."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from api.core.config import Settings
from api.main import create_app
from api.runs.queue import RecordingQueue
from api.store import TrackingStore
from tests.api.conftest import API, bearer, empty_tables, post_points, submit
from tests.waits import wait_for


def store_of(client: TestClient) -> TrackingStore:
    return client.app.state.store  # type: ignore[attr-defined]


def begin(client: TestClient, run_id: int, host: str = "w1") -> int:
    response = client.post(
        f"{API}/runs/{run_id}/status", json={"status": "running", "worker_host": host}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["attempt"])


def test_a_second_start_is_refused_and_a_retried_one_is_not(client: TestClient) -> None:
    rid = submit(client)["id"]
    attempt = begin(client, rid)
    assert attempt == 1
    retry = client.post(f"{API}/runs/{rid}/status", json={"status": "running", "attempt": 1})
    assert retry.status_code == 200 and retry.json()["attempt"] == 1
    duplicate = client.post(f"{API}/runs/{rid}/status", json={"status": "running"})
    assert duplicate.status_code == 409 and "already running" in duplicate.json()["detail"]


def test_posts_from_a_stale_attempt_are_refused(client: TestClient) -> None:
    rid = submit(client)["id"]
    begin(client, rid)
    point = {"points": [{"key": "loss", "step": 1, "value": 1.0}]}
    assert client.post(f"{API}/runs/{rid}/metrics?attempt=1", json=point).status_code == 200
    stale = client.post(f"{API}/runs/{rid}/metrics?attempt=2", json=point)
    assert stale.status_code == 409 and "stale" in stale.json()["detail"]
    for body in ({"status": "heartbeat", "attempt": 3}, {"status": "succeeded", "attempt": 3}):
        assert client.post(f"{API}/runs/{rid}/status", json=body).status_code == 409
    assert client.get(f"{API}/runs/{rid}").json()["status"] == "running"


def test_silent_worker_is_requeued_with_its_data_cleared_then_failed(client: TestClient) -> None:
    rid = submit(client, {"epochs": 5})["id"]
    begin(client, rid, host="doomed")
    post_points(client, rid, [{"key": "val_loss", "step": e, "value": 1.0 / e} for e in (1, 2)])
    client.post(f"{API}/runs/{rid}/status", json={"status": "heartbeat", "epoch": 2})
    store = store_of(client)

    assert store.lifecycle.reap_stale(timeout_s=3600, max_attempts=2) == []  # heartbeat is fresh
    time.sleep(0.05)
    assert store.lifecycle.reap_stale(timeout_s=0.01, max_attempts=2) == [rid]
    # Requeued and due for delivery: the reconciler hands it over with a new worker token.
    assert store.lifecycle.due_deliveries(redeliver_after_s=600) == [rid]
    delivered = store.lifecycle.claim_delivery(rid, redeliver_after_s=600)
    assert delivered is not None
    new_token = delivered[1]
    assert new_token.startswith("fl_")
    assert store.lifecycle.claim_delivery(rid, redeliver_after_s=600) is None  # claimed once
    principal = store.people.authenticate(new_token)
    assert principal.run_id == rid
    run = client.get(f"{API}/runs/{rid}").json()
    assert (run["status"], run["attempt"], run["progress"]["epoch"], run["worker_host"]) == (
        "queued",
        1,
        0,
        None,
    )
    assert client.get(f"{API}/runs/{rid}/curves").json()["series"] == []
    # The old attempt's worker, if it still lives, cannot write into the new one.
    assert begin(client, rid, host="rescuer") == 2
    late = client.post(
        f"{API}/runs/{rid}/metrics?attempt=1",
        json={"points": [{"key": "val_loss", "step": 3, "value": 0.1}]},
    )
    assert late.status_code == 409

    time.sleep(0.05)
    assert store.lifecycle.reap_stale(timeout_s=0.01, max_attempts=2) == []
    run = client.get(f"{API}/runs/{rid}").json()
    assert run["status"] == "failed"
    assert "worker lost" in run["failure_reason"] and "attempt 2 of 2" in run["failure_reason"]
    events = client.get(f"{API}/runs/{rid}/events", params={"kind": "status"}).json()
    assert [e["payload"]["status"] for e in events] == [
        "queued",
        "running",
        "queued",
        "running",
        "failed",
    ]


def test_the_api_reaps_in_the_background_and_enqueues_again(database_url: str) -> None:
    queue = RecordingQueue()
    settings = Settings(database_url=database_url, reaper_interval=0.05, heartbeat_timeout=0.2)
    app = create_app(settings, enqueuer=queue)
    # Its reaper judges every run in the database: none but this test's may be there.
    empty_tables(app.state.store.engine)
    _, token = app.state.store.people.create_user(
        f"reaper-{time.time_ns()}", team=f"t-{time.time_ns()}"
    )
    with TestClient(app, headers=bearer(token)) as client:
        rid = submit(client, project=f"reaped-{time.time_ns()}")["id"]
        begin(client, rid)

        def status() -> str:
            return str(client.get(f"{API}/runs/{rid}").json()["status"])

        wait_for(lambda: status() != "running", 30, "the reaper")
        assert status() == "queued"
        # The reconciler hands the requeued run over on its own pass, after the reaper's.
        wait_for(lambda: len(queue.items) >= 2, 30, "the requeued run's hand-over")
        assert [run_id for run_id, _ in queue.items] == [rid, rid]  # submitted, then requeued
        client.app.state.store.engine.dispose()  # type: ignore[attr-defined]
