"""Real parts: a uvicorn API server and `celery worker` processes on the real Redis."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from stack import launch
from stack.launch import free_port

# A Redis database per pytest-xdist worker (gw0: 14, gw1: 13, ...), flushed by each module:
# tests running at once never see each other's queues.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_BASE = os.environ.get("FITLENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
REDIS_URL = f"{_BASE.rsplit('/', 1)[0]}/{int(_BASE.rsplit('/', 1)[1]) - _WORKER}"


@pytest.fixture(scope="module")
def pipeline_env() -> Iterator[dict[str, str]]:
    """Environment shared by the API and the workers of one test module."""
    broker = redis.Redis.from_url(REDIS_URL)
    broker.ping()
    broker.flushdb()  # a database of its own: nothing left from earlier runs
    tmp = tempfile.mkdtemp(prefix="fitlens-e2e-")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{Path(tmp) / 'e2e.db'}",
        "FITLENS_QUEUE": "celery",
        "REDIS_URL": REDIS_URL,
        "FITLENS_API_URL": f"http://127.0.0.1:{port}",
        "FITLENS_PORT": str(port),
        # Short clocks so that a dead worker is noticed within seconds.
        "FITLENS_HEARTBEAT_INTERVAL": "0.5",
        "FITLENS_HEARTBEAT_TIMEOUT": "4",
        "FITLENS_REAPER_INTERVAL": "0.5",
        "FITLENS_MAX_ATTEMPTS": "2",
        "FITLENS_TMP": tmp,
        "FITLENS_ARTIFACTS": str(Path(tmp) / "artifacts"),
        # The API, the workers and pytest share this machine: one core's threads per run.
        "FITLENS_TORCH_THREADS": "1",
    }
    yield env
    broker.flushdb()


@pytest.fixture(scope="module")
def api(pipeline_env: dict[str, str]) -> Iterator[httpx.Client]:
    port = int(pipeline_env["FITLENS_PORT"])
    with open(Path(pipeline_env["FITLENS_TMP"]) / "api.log", "w") as log:
        proc = launch.start_api(port, pipeline_env, log)
        launch.wait_healthy(f"http://127.0.0.1:{port}", proc)
        # A user, as the README's first step makes one; workers get only per-run tokens.
        token = launch.user_token(pipeline_env, "e2e", "e2e-team")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            yield client
        launch.stop(proc, grace=10)


class Worker:
    """A real `celery worker` process (in its own process group; see stack.launch)."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.log_path = Path(env["FITLENS_TMP"]) / f"{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = launch.start_worker(env, self.log, name=name)

    def kill(self) -> None:
        launch.kill(self.proc)

    def stop(self) -> None:
        launch.stop(self.proc)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


@pytest.fixture(scope="module")
def worker(pipeline_env: dict[str, str]) -> Iterator[Worker]:
    """One real worker for a whole test module."""
    worker = Worker(pipeline_env, "w-module")
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(pipeline_env: dict[str, str]) -> Iterator[Callable[[str], Worker]]:
    workers: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(pipeline_env, name)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


# What a fitlens token looks like (api.people.auth.new_token): none may ever reach a log.
TOKEN_PATTERN = re.compile(r"fl_[A-Za-z0-9_-]{20,}")


def logged_tokens(env: dict[str, str]) -> list[str]:
    """Every token-looking string in the API's and the workers' logs of this module."""
    found = []
    for log in Path(env["FITLENS_TMP"]).glob("*.log"):
        found += [f"{log.name}: {m}" for m in TOKEN_PATTERN.findall(log.read_text())]
    return found
