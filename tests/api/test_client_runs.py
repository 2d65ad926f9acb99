"""Runs trained in the user's own loop and logged by the Python client (issue 14): no spec,
free-form params, the user's token, the same data endpoints as a worker's run."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col

from api.core.db import utcnow
from api.runs.models import Run
from tests.api.conftest import API, bearer


def _start(client: TestClient, **body: object) -> dict:
    response = client.post(f"{API}/runs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_client_run_is_running_at_once_and_takes_data_like_a_workers(client: TestClient) -> None:
    params = {"lr": 0.003, "optimizer": "sgd", "epochs": 3, "note": "mine", "nesterov": True}
    run = _start(client, project="loops", name="my loop", params=params, tags=["own"])
    assert run["status"] == "running" and run["source"] == "client" and run["attempt"] == 1
    assert run["params"] == params and run["spec"] == {} and run["progress"]["epochs"] == 3
    rid = run["id"]
    for epoch in (1, 2, 3):
        points = [
            {"key": k, "step": epoch, "value": v / epoch}
            for k, v in (("train_loss", 1.0), ("val_loss", 1.2))
        ]
        assert (
            client.post(f"{API}/runs/{rid}/metrics?attempt=1", json={"points": points}).status_code
            == 200
        )
        beat = {"status": "heartbeat", "attempt": 1, "epoch": epoch, "epochs": 3}
        assert client.post(f"{API}/runs/{rid}/status", json=beat).status_code == 200
    done = client.post(f"{API}/runs/{rid}/status", json={"status": "succeeded", "attempt": 1})
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    again = client.get(f"{API}/runs/{rid}").json()
    assert again["diagnosis"]["epochs"] == 3 and again["progress"]["epoch"] == 3
    # Numbers named like spec columns are filterable; so is where it came from.
    worker_run = client.post(f"{API}/jobs", json={"project": "loops"}).json()["id"]
    found = [
        r["id"] for r in client.get(f"{API}/runs", params={"where": "lr>0.002"}).json()["items"]
    ]
    assert rid in found and worker_run not in found
    found = [
        r["id"]
        for r in client.get(f"{API}/runs", params={"where": "optimizer=sgd"}).json()["items"]
    ]
    assert found == [rid]
    retry = client.post(f"{API}/runs/{rid}/retry")
    assert retry.status_code == 409 and "client" in retry.json()["detail"]


def test_params_are_flat_and_bounded(client: TestClient) -> None:
    nested = client.post(f"{API}/runs", json={"params": {"model": {"hidden": 3}}})
    assert nested.status_code == 422 and nested.json()["errors"][0]["field"].startswith("params")
    many = client.post(f"{API}/runs", json={"params": {f"k{i}": i for i in range(201)}})
    assert many.status_code == 422


def test_a_silent_client_run_fails_and_is_never_requeued(client: TestClient) -> None:
    rid = _start(client)["id"]
    store = client.app.state.store  # type: ignore[attr-defined]
    time.sleep(0.05)
    assert store.lifecycle.reap_stale(timeout_s=0.01, max_attempts=5) == []
    run = client.get(f"{API}/runs/{rid}").json()
    assert run["status"] == "failed" and "client stopped reporting" in run["failure_reason"]


def test_a_client_run_failed_for_silence_comes_back_when_it_reports_again(
    client: TestClient,
) -> None:
    """Issue 22: a run marked lost while its client was only slow took the user's script down
    at the end of its ``with`` block (409: failed cannot become succeeded)."""
    started = _start(client)
    rid = started["id"]
    assert started["heartbeat"]["timeout_s"] == 120 and started["heartbeat"]["interval_s"] == 40
    url = f"{API}/runs/{rid}/metrics?attempt=1"
    assert client.post(url, json={"points": [{"key": "loss", "step": 1, "value": 1.0}]}).is_success
    store = client.app.state.store  # type: ignore[attr-defined]
    _silent_for(store, rid, seconds=60)
    store.lifecycle.reap_stale(timeout_s=30, max_attempts=5)
    assert client.get(f"{API}/runs/{rid}").json()["status"] == "failed"
    # Its next post (here: points) takes it back; the gap is an event; nothing is lost.
    assert client.post(url, json={"points": [{"key": "loss", "step": 2, "value": 0.5}]}).is_success
    run = client.get(f"{API}/runs/{rid}").json()
    assert run["status"] == "running" and run["failure_reason"] is None
    back = client.get(f"{API}/runs/{rid}/events", params={"kind": "status"}).json()[-1]
    assert back["payload"]["reason"] == "its client reported again"
    assert back["payload"]["silent_s"] >= 60
    assert client.get(f"{API}/runs/{rid}/curves").json()["series"][0]["steps"] == [1, 2]
    # Silent again, then the end itself takes it back and ends it.
    _silent_for(store, rid, seconds=60)
    store.lifecycle.reap_stale(timeout_s=30, max_attempts=5)
    ended = client.post(f"{API}/runs/{rid}/status", json={"status": "succeeded", "attempt": 1})
    assert ended.status_code == 200 and ended.json()["status"] == "succeeded"
    # A run failed for a reason of its own stays failed.
    other = _start(client)["id"]
    failed = {"status": "failed", "attempt": 1, "reason": "ValueError: x"}
    assert client.post(f"{API}/runs/{other}/status", json=failed).is_success
    beat = client.post(f"{API}/runs/{other}/status", json={"status": "heartbeat", "attempt": 1})
    assert beat.status_code == 409


def _silent_for(store: Any, run_id: int, seconds: float) -> None:
    """As if the run's client had not been heard from for ``seconds`` (no waiting)."""
    with store.engine.begin() as conn:
        conn.execute(
            update(Run)
            .where(col(Run.id) == run_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def test_a_viewer_cannot_log(client: TestClient) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    _, token = store.people.create_user("vic", team="lab", role="viewer")
    viewer = TestClient(client.app, headers=bearer(token))
    assert viewer.post(f"{API}/runs", json={"team": "lab"}).status_code == 403
    rid = _start(client, team="lab")["id"]
    point = {"points": [{"key": "val_loss", "step": 1, "value": 1.0}]}
    assert viewer.post(f"{API}/runs/{rid}/metrics?attempt=1", json=point).status_code == 403


def test_a_client_runs_params_can_be_added_later(client: TestClient) -> None:
    rid = _start(client, params={"optimizer": "adam"})["id"]
    patched = client.patch(f"{API}/runs/{rid}", json={"params": {"lr": 0.5, "note": "late"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["params"] == {"optimizer": "adam", "lr": 0.5, "note": "late"}
    found = [r["id"] for r in client.get(f"{API}/runs", params={"where": "lr>0.4"}).json()["items"]]
    assert found == [rid]
    job = client.post(f"{API}/jobs", json={}).json()["id"]
    refused = client.patch(f"{API}/runs/{job}", json={"params": {"lr": 1}})
    assert refused.status_code == 409
