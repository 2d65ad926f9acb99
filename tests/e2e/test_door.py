"""The door of a real uvicorn server: what a hostile client can make it hold in memory, and a
500 that must not cost the client its keep-alive connection."""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.door import MB, peak_rss_mb, send_chunked
from stack import launch
from stack.launch import free_port


class Server:
    def __init__(self, proc: launch.subprocess.Popen[bytes], port: int, token: str) -> None:
        self.proc, self.port, self.token = proc, port, token

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        conn = self.connection()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        response = conn.getresponse()
        data = json.loads(response.read() or b"null")
        conn.close()
        return response.status, data


def _serve(args: list[str]) -> Iterator[Server]:
    """A real uvicorn server (``args``: how to start it, without the port) on a fresh SQLite
    database, with a signed-in user."""
    tmp = tempfile.mkdtemp(prefix="fitlens-door-")
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{Path(tmp) / 'door.db'}",
        "FITLENS_QUEUE": "none",
        "FITLENS_REAPER_INTERVAL": "0",
    }
    token = launch.user_token(env, "door", "door-team")  # also migrates the database
    port = free_port()
    with open(Path(tmp) / "api.log", "w") as log:
        proc = launch.start([*args, "--host", "127.0.0.1", "--port", str(port)], env, log)
        try:
            launch.wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield Server(proc, port, token)
        finally:
            launch.stop(proc, grace=10)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve([sys.executable, "-m", "api"])


def test_an_anonymous_chunked_body_is_refused_unread(server: Server) -> None:
    server.call("GET", "/api/v1/runs")  # warm: imports and pools are in memory
    before = server.peak_rss_mb()
    status = send_chunked(server.port, "/api/v1/jobs", None, 200 * MB, b"x" * MB)
    assert status in (401, None)
    assert server.peak_rss_mb() - before < 20, (before, server.peak_rss_mb())
    assert server.call("GET", "/api/v1/runs")[0] == 200  # and it serves on


def test_a_signed_in_chunked_body_is_stopped_at_the_limit_and_a_huge_batch_unparsed(
    server: Server,
) -> None:
    status, run = server.call("POST", "/api/v1/jobs", {"spec": {"epochs": 1}})
    assert status == 201
    run_id = run["id"]  # type: ignore[index]
    assert server.call("POST", f"/api/v1/runs/{run_id}/status", {"status": "running"})[0] == 200
    path = f"/api/v1/runs/{run_id}/metrics"
    point = b'{"key":"val_loss","step":1,"value":0.5},'
    before = server.peak_rss_mb()
    # A million points, 40 MB: the body limit (16 MB by default) ends it.
    body_head = b'{"points":['
    limited = send_chunked(
        server.port, path, server.token, 40 * MB, body_head + point * (MB // len(point))
    )
    assert limited in (413, None)
    # 300,000 points in 12 MB, under the body limit: refused by their count, never parsed
    # (parsing them took hundreds of MB).
    many = body_head + point * 300_000
    conn = server.connection()
    conn.request(
        "POST",
        path,
        body=many[:-1] + b"]}",
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    assert response.status == 413 and b"points" in response.read()
    conn.close()
    grown = server.peak_rss_mb() - before
    assert grown < 80, grown


@pytest.fixture(scope="module")
def failing_server() -> Iterator[Server]:
    """The real app plus one route that raises, as a bug or a lost database would."""
    yield from _serve([sys.executable, "-m", "uvicorn", "--factory", "tests.e2e.failing_app:make"])


def test_a_500_keeps_the_connection_alive(failing_server: Server) -> None:
    conn = failing_server.connection()
    conn.request("GET", "/api/v1/boom")
    response = conn.getresponse()
    assert response.status == 500
    assert json.loads(response.read())["detail"] == "internal error: RuntimeError"
    sock = conn.sock
    time.sleep(0.2)  # a server that hangs up has done so by now
    conn.request("GET", "/healthz")  # the same connection
    again = conn.getresponse()
    assert again.status == 200 and conn.sock is sock
    again.read()
    conn.close()
