"""Never lose a run: faults on the real pipeline (a uvicorn API, `celery worker` processes, a
Redis and a PostgreSQL of the test's own that it stops and restarts). Each of these lost or
wrongly failed runs before issue 10."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import launch
from stack.launch import free_port
from tests.e2e.curves import assert_every_epoch_once as every_epoch_once
from tests.e2e.servers import OwnPostgres, OwnRedis
from tests.waits import wait_for
from worker.client import ApiClient
from worker.config import WorkerSettings
from worker.tasks import failure_reason


class Stack:
    """One API and its workers, on a database and a Redis the test controls."""

    def __init__(self, database_url: str, redis_url: str, **settings: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="fitlens-faults-"))
        self.port = free_port()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(launch.ROOT),
            "DATABASE_URL": database_url,
            "FITLENS_QUEUE": "celery",
            "REDIS_URL": redis_url,
            "FITLENS_API_URL": f"http://127.0.0.1:{self.port}",
            "FITLENS_HEARTBEAT_INTERVAL": "0.5",
            "FITLENS_HEARTBEAT_TIMEOUT": "4",
            "FITLENS_REAPER_INTERVAL": "0.5",
            "FITLENS_REDELIVER_AFTER": "3",
            **settings,
        }
        self.api: Any = None
        self.workers: list[Any] = []
        self.logs: list[Any] = []
        self.token = ""

    def start_api(self) -> None:
        log = open(self.tmp / f"api-{len(self.logs)}.log", "w")  # noqa: SIM115 - closed in close()
        self.logs.append(log)
        self.api = launch.start_api(self.port, self.env, log)
        launch.wait_healthy(f"http://127.0.0.1:{self.port}", self.api)
        if not self.token:
            self.token = launch.user_token(self.env, "faults", "faults")

    def start_worker(self) -> None:
        log = open(self.tmp / f"worker-{len(self.logs)}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        self.workers.append(launch.start_worker(self.env, log, name=f"w{len(self.workers)}"))

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def close(self) -> None:
        for proc in [*self.workers, self.api]:
            if proc is not None:
                launch.kill(proc)
        for log in self.logs:
            log.close()

    def log_text(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("*.log")))


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


def sqlite_url() -> str:
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='fitlens-faults-')) / 'faults.db'}"


def run_of(http: httpx.Client, run_id: int) -> dict[str, Any]:
    response = http.get(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def ended(http: httpx.Client, run_id: int) -> dict[str, Any] | None:
    try:
        run = run_of(http, run_id)
    except (httpx.HTTPError, AssertionError):
        return None  # the API is restarting or its database is away: ask again
    return run if run["status"] in ("succeeded", "failed", "cancelled") else None


def assert_every_epoch_once(http: httpx.Client, run_id: int, epochs: int) -> None:
    every_epoch_once(http.get(f"/runs/{run_id}/curves").json()["series"], epochs)


def test_runs_queued_when_redis_restarts_empty_still_run(own_redis: OwnRedis) -> None:
    stack = Stack(sqlite_url(), own_redis.url)
    try:
        stack.start_api()
        with stack.http() as http:
            ids = [http.post("/jobs", json={"spec": {"epochs": 3}}).json()["id"] for _ in range(2)]
            own_redis.stop()  # the messages die with it (no persistence)
            own_redis.start()
            stack.start_worker()
            for run_id in ids:
                done = wait_for(partial(ended, http, run_id), 90, f"run {run_id} to end")
                assert (done["status"], done["attempt"]) == ("succeeded", 1), done
                assert_every_epoch_once(http, run_id, 3)
        assert "handed to the queue by the reconciler" in stack.log_text()
    finally:
        stack.close()


def test_redis_down_during_a_submit_and_a_requeue_loses_nothing(own_redis: OwnRedis) -> None:
    # A short timeout finds the killed worker fast; on a busy machine it may also judge the next
    # worker lost once (a slow heartbeat), hence a third attempt to spare.
    stack = Stack(
        sqlite_url(), own_redis.url, FITLENS_HEARTBEAT_TIMEOUT="2", FITLENS_MAX_ATTEMPTS="3"
    )
    try:
        stack.start_api()
        stack.start_worker()
        with stack.http() as http:
            # A longer run; its worker dies mid-run while Redis is down, so the reaper's requeue
            # cannot be sent (an attempt after the first below shows it died before it ended).
            long_run = http.post("/jobs", json={"spec": {"epochs": 80}}).json()["id"]
            wait_for(lambda: run_of(http, long_run)["progress"]["epoch"] >= 2, 60, "training")
            own_redis.stop()
            launch.kill(stack.workers[0])
            submitted = http.post("/jobs", json={"spec": {"epochs": 3}})
            assert submitted.status_code == 201, submitted.text  # was a 500, run lost
            assert submitted.json()["enqueued_at"] is None  # committed, hand-over pending
            wait_for(lambda: run_of(http, long_run)["status"] == "queued", 30, "the requeue")
            # The reconciler keeps trying to hand it over, and keeps it due while Redis is away.
            wait_for(
                lambda: f"run {long_run}: not handed to the queue" in stack.log_text(),
                30,
                "a failed hand-over",
            )
            assert run_of(http, long_run)["status"] == "queued"
            own_redis.start()
            stack.start_worker()
            # One worker trains both, in whichever order the queue gives them (the requeued
            # run may come first): one generous deadline for the two.
            wait_for(
                lambda: ended(http, submitted.json()["id"]) and ended(http, long_run),
                240,
                "the submitted and the requeued run",
            )
            done, again = ended(http, submitted.json()["id"]), ended(http, long_run)
            assert done is not None and again is not None
            assert (done["status"], done["attempt"]) == ("succeeded", 1), done
            assert again["status"] == "succeeded", again["failure_reason"]
            assert again["attempt"] >= 2, again
            assert_every_epoch_once(http, long_run, 80)
    finally:
        stack.close()


def ride_out(
    stack: Stack, epochs: int, down: Callable[[], object], up: Callable[[], object], for_s: float
) -> None:
    """A run that is training when ``down`` takes a part away for ``for_s`` seconds and ``up``
    brings it back: it must succeed on its first attempt with every epoch stored once.

    The outage is the test's own clock (it is what is being ridden out); the run can be short,
    since its last posts wait for the part to come back, and the test checks that they did."""
    stack.start_api()
    stack.start_worker()
    with stack.http() as http:
        run_id = http.post("/jobs", json={"spec": {"epochs": epochs}}).json()["id"]
        wait_for(lambda: run_of(http, run_id)["progress"]["epoch"] >= 2, 60, "training")
        went_down = datetime.now(UTC)
        down()
        time.sleep(for_s)
        up()
        done = wait_for(lambda: ended(http, run_id), 180, "the run to end")
        assert (done["status"], done["attempt"]) == ("succeeded", 1), done
        assert_every_epoch_once(http, run_id, epochs)
        events = http.get(f"/runs/{run_id}/events", params={"kind": "status"}).json()
        assert [e["payload"]["status"] for e in events] == ["queued", "running", "succeeded"]
        # The run was still going when the part went away: it ended after the outage began.
        assert as_utc(events[-1]["created_at"]) > went_down, events[-1]


def as_utc(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.mark.slow
def test_a_30_second_postgres_outage_mid_run_is_ridden_out(own_redis: OwnRedis) -> None:
    postgres = OwnPostgres()
    postgres.start()
    stack = Stack(postgres.url, own_redis.url)
    try:
        ride_out(stack, 60, postgres.stop, postgres.start, for_s=30)
    finally:
        stack.close()
        postgres.destroy()


def test_an_api_restart_longer_than_the_heartbeat_timeout_requeues_nothing(
    own_redis: OwnRedis,
) -> None:
    stack = Stack(sqlite_url(), own_redis.url, FITLENS_HEARTBEAT_TIMEOUT="2")
    try:
        # Six seconds without an API: three heartbeat timeouts.
        ride_out(stack, 80, lambda: launch.kill(stack.api), stack.start_api, for_s=6)
    finally:
        stack.close()


def test_a_failure_reason_with_a_nul_and_50_000_characters_is_recorded(
    own_redis: OwnRedis,
) -> None:
    stack = Stack(sqlite_url(), own_redis.url)
    try:
        stack.start_api()
        with stack.http() as http:
            run_id = http.post("/jobs", json={"spec": {"epochs": 3}}).json()["id"]
            http.post(f"/runs/{run_id}/status", json={"status": "running"})
            # As the worker reports it, through its own client, and as an older worker would.
            settings = WorkerSettings(api_url=f"http://127.0.0.1:{stack.port}", retry_for=5)
            client = ApiClient(settings, stack.token)
            exc = RuntimeError("CUDA error: device-side assert\x00 at " + "x" * 50_000)
            client.status(run_id, status="failed", attempt=1, reason=failure_reason(exc))
            client.close()
            run = run_of(http, run_id)
            assert run["status"] == "failed"
            assert run["failure_reason"].startswith("RuntimeError: CUDA error: device-side assert")
            assert "\x00" not in run["failure_reason"]
            raw = http.post("/jobs", json={"spec": {"epochs": 3}}).json()["id"]
            http.post(f"/runs/{raw}/status", json={"status": "running"})
            body = {"status": "failed", "attempt": 1, "reason": "bad\x00" + "y" * 50_000}
            assert http.post(f"/runs/{raw}/status", json=body).status_code == 200
            assert run_of(http, raw)["failure_reason"].startswith("bady")
    finally:
        stack.close()
