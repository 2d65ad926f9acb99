"""Real parts: a uvicorn API server and `celery worker` processes on the real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bench.server import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("FITLENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


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
        "PYTHONPATH": str(ROOT),
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
    }
    yield env
    broker.flushdb()


@pytest.fixture(scope="module")
def api(pipeline_env: dict[str, str]) -> Iterator[httpx.Client]:
    port = pipeline_env["FITLENS_PORT"]
    log = open(Path(pipeline_env["FITLENS_TMP"]) / "api.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "--port", port],
        cwd=ROOT,
        env=pipeline_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "API did not start"
        time.sleep(0.2)
    yield client
    client.close()
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


class Worker:
    def __init__(self, env: dict[str, str], name: str) -> None:
        self.log_path = Path(env["FITLENS_TMP"]) / f"{name}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        # Its own session (process group), so a kill takes the pool's children with it, as
        # when a machine or container dies.
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.celery_app",
                "worker",
                "-Q",
                "cpu,gpu",
                "--concurrency",
                "1",
                "--hostname",
                f"{name}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()


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


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
