"""The database is the source of truth and the queue is reconciled with it: no committed run is
lost to a broker that is away, a lost message is sent again, a run is retried on request, and
silence the API could not hear is not held against a run."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from api.core.config import Settings
from api.runs.delivery import Listening, reconcile_once
from api.runs.queue import RecordingQueue
from api.store import TrackingStore
from tests.api.conftest import API, post_points, start, submit
from trainer.spec import JobSpec


class BrokerAway(RecordingQueue):
    """A queue whose broker can be switched off: enqueue raises, as Celery's does."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False

    def enqueue(self, run_id: int, spec: JobSpec, worker_token: str, priority: int = 0) -> None:
        if not self.up:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
        super().enqueue(run_id, spec, worker_token, priority)


def store_of(client: TestClient) -> TrackingStore:
    return client.app.state.store  # type: ignore[attr-defined]


def test_a_job_submitted_while_the_broker_is_away_is_kept_and_sent_when_it_is_back(
    client: TestClient,
) -> None:
    away = BrokerAway()
    client.app.state.enqueuer = away  # type: ignore[attr-defined]
    response = client.post(f"{API}/jobs", json={"spec": {"epochs": 2}})
    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["status"], run["enqueued_at"]) == ("queued", None)  # committed, not handed over
    settings, store = Settings(database_url="sqlite://"), store_of(client)

    reconcile_once(store.lifecycle, away, settings, Listening())  # still away: still due
    assert away.items == [] and store.lifecycle.due_deliveries(600) == [run["id"]]
    away.up = True
    reconcile_once(store.lifecycle, away, settings, Listening())
    assert [run_id for run_id, _ in away.items] == [run["id"]]
    assert client.get(f"{API}/runs/{run['id']}").json()["enqueued_at"] is not None
    # Its worker token works: the worker can start it.
    token = away.tokens[run["id"]]
    started = client.post(
        f"{API}/runs/{run['id']}/status",
        json={"status": "running"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert started.status_code == 200
    reconcile_once(store.lifecycle, away, settings, Listening())
    assert len(away.items) == 1  # running: nothing more to send


def test_a_queued_run_whose_message_was_lost_is_sent_again(
    client: TestClient, queue: RecordingQueue
) -> None:
    rid = submit(client)["id"]
    assert [run_id for run_id, _ in queue.items] == [rid]
    store = store_of(client)
    fresh = Settings(database_url="sqlite://", redeliver_after=600)
    reconcile_once(store.lifecycle, queue, fresh, Listening())
    assert len(queue.items) == 1  # handed over just now: not due
    time.sleep(0.05)
    lost = Settings(database_url="sqlite://", redeliver_after=0.01)  # e.g. Redis restarted empty
    reconcile_once(store.lifecycle, queue, lost, Listening())
    assert [run_id for run_id, _ in queue.items] == [rid, rid]


def test_retry_puts_a_failed_run_back_as_a_new_attempt_and_says_who_asked(
    client: TestClient, queue: RecordingQueue
) -> None:
    rid = submit(client)["id"]
    start(client, rid)
    post_points(client, rid, [{"key": "val_loss", "step": 1, "value": 0.5}])
    failed = client.post(
        f"{API}/runs/{rid}/status",
        json={"status": "failed", "reason": "CUDA out of memory", "attempt": 1},
    )
    assert failed.status_code == 200
    retried = client.post(f"{API}/runs/{rid}/retry")
    assert retried.status_code == 200, retried.text
    run = retried.json()
    assert (run["status"], run["failure_reason"], run["finished_at"]) == ("queued", None, None)
    assert run["enqueued_at"] is not None and [r for r, _ in queue.items] == [rid, rid]
    assert client.get(f"{API}/runs/{rid}/curves").json()["series"] == []  # partial data gone
    events = client.get(f"{API}/runs/{rid}/events", params={"kind": "status"}).json()
    assert events[-1]["payload"]["status"] == "queued"
    assert events[-1]["payload"]["asked_by"] == "alice"
    # The new attempt starts and runs like any other.
    token = queue.tokens[rid]
    second = client.post(
        f"{API}/runs/{rid}/status",
        json={"status": "running"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert second.json()["attempt"] == 2
    assert client.post(f"{API}/runs/{rid}/retry").status_code == 409  # running


def test_the_reaper_does_not_judge_silence_it_could_not_hear(client: TestClient) -> None:
    rid = submit(client)["id"]
    start(client, rid)
    store = store_of(client)
    settings = Settings(database_url="sqlite://", heartbeat_timeout=0.2)
    time.sleep(0.3)  # the run has been silent longer than the timeout ...
    just_back = Listening()  # ... but this API only started listening now
    reconcile_once(store.lifecycle, RecordingQueue(), settings, just_back)
    assert client.get(f"{API}/runs/{rid}").json()["status"] == "running"
    just_back.lost()  # the database went away
    just_back.heard()  # and came back: listening starts again from now
    reconcile_once(store.lifecycle, RecordingQueue(), settings, just_back)
    assert client.get(f"{API}/runs/{rid}").json()["status"] == "running"
    time.sleep(0.25)  # listened a whole timeout, and still silence: now it is lost
    reconcile_once(store.lifecycle, RecordingQueue(), settings, just_back)
    assert client.get(f"{API}/runs/{rid}").json()["status"] == "queued"


def test_a_failure_reason_is_always_recorded(client: TestClient) -> None:
    for reason, expected in (
        ("CUDA error\x00 at step 3", "CUDA error at step 3"),
        ("x" * 20_000, "x" * 9_999 + "…"),
    ):
        rid = submit(client)["id"]
        start(client, rid)
        body: dict[str, Any] = {"status": "failed", "reason": reason, "attempt": 1}
        assert client.post(f"{API}/runs/{rid}/status", json=body).status_code == 200
        assert client.get(f"{API}/runs/{rid}").json()["failure_reason"] == expected


def test_a_run_records_its_environment_and_divergence(client: TestClient) -> None:
    rid = submit(client)["id"]
    environment = {"python": "3.11.7", "torch": "2.14.1", "git_commit": "a1b8870", "device": "cpu"}
    body = {"status": "running", "worker_host": "w1", "environment": environment}
    assert client.post(f"{API}/runs/{rid}/status", json=body).status_code == 200
    events = [{"kind": "diverged", "step": 4, "payload": {"metric": "train_loss"}}]
    assert client.post(f"{API}/runs/{rid}/events", json={"events": events}).status_code == 200
    run = client.get(f"{API}/runs/{rid}").json()
    assert run["environment"] == environment and run["diverged_epoch"] == 4
