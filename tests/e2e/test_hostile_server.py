"""Issue 21 against a real uvicorn server under a memory limit of its own (prlimit), so a bug
here can never take the machine down: streams end when their run is deleted or their reader's
access goes, streams are bounded per team, idle and slow connections are closed, and one study
request cannot exhaust the server's memory."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack import launch
from stack.launch import free_port
from tests.waits import wait_for

MEMORY_LIMIT = 2 << 30  # address space: the API needs about 1 GiB of it at rest
TEAM_STREAMS = 3


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, str]]]:
    tmp = tempfile.mkdtemp(prefix="fitlens-hostile-")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{Path(tmp) / 'hostile.db'}",
        "FITLENS_QUEUE": "none",
        "FITLENS_STREAM_INTERVAL": "0.2",
        "FITLENS_STREAM_RECHECK": "0.5",
        "FITLENS_MAX_STREAMS_PER_TEAM": str(TEAM_STREAMS),
        "FITLENS_HEADER_TIMEOUT": "1",
        "FITLENS_BODY_TIMEOUT": "1",
    }
    args = [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)]
    with open(Path(tmp) / "api.log", "w") as log:
        proc = launch.start(["prlimit", f"--as={MEMORY_LIMIT}", *args], env, log)
        base = f"http://127.0.0.1:{port}"
        launch.wait_healthy(base, proc)
        yield base, env
        launch.stop(proc, grace=10)


def _user(env: dict[str, str], base: str, name: str, team: str) -> httpx.Client:
    token = launch.user_token(env, name, team)
    return httpx.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _stream_in_thread(client: httpx.Client, path: str) -> threading.Event:
    """Open a stream and read it in a thread until the server ends it (the event returned is
    set then); returns once its first line has come."""
    opened, done = threading.Event(), threading.Event()

    def follow() -> None:
        with client.stream("GET", path, timeout=60) as response:
            assert response.status_code == 200
            for _ in response.iter_lines():
                opened.set()
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    assert opened.wait(10), "the stream did not open"
    return done


def test_a_stream_ends_when_its_run_is_deleted_or_its_token_revoked(
    server: tuple[str, dict[str, str]],
) -> None:
    """An open stream on a deleted run went on to deliver the next run that took its id, and
    kept delivering after its token was revoked (3 of 3 before)."""
    base, env = server
    alice = _user(env, base, "alice", "a-team")
    run_id = alice.post("/runs", json={"project": "p"}).json()["id"]
    done = _stream_in_thread(alice, f"/runs/{run_id}/stream")
    assert not done.is_set()
    assert alice.delete(f"/runs/{run_id}").status_code == 204
    assert done.wait(10), "the stream outlived its run"

    laptop = alice.post("/tokens", json={"name": "laptop"}).json()
    reader = httpx.Client(
        base_url=str(alice.base_url),
        headers={"Authorization": f"Bearer {laptop['token']}"},
        timeout=30,
    )
    run_id = alice.post("/runs", json={"project": "p"}).json()["id"]
    done = _stream_in_thread(reader, f"/runs/{run_id}/stream")
    assert not done.is_set()
    assert alice.delete(f"/tokens/{laptop['info']['id']}").status_code == 200
    assert done.wait(10), "the stream outlived its token"


def test_streams_are_bounded_per_team_whoever_opens_them(
    server: tuple[str, dict[str, str]],
) -> None:
    """Creating users had bypassed the per-user bound (480 streams admitted)."""
    base, env = server
    owner = _user(env, base, "tess", "t-team")
    run_id = owner.post("/runs", json={"project": "p"}).json()["id"]
    team = owner.get("/me").json()["teams"][0]["id"]
    held = []
    try:
        for i in range(TEAM_STREAMS + 1):
            made = owner.post("/users", json={"name": f"puppet{i}", "team_id": team}).json()
            puppet = httpx.Client(
                base_url=str(owner.base_url),
                headers={"Authorization": f"Bearer {made['token']}"},
                timeout=30,
            )
            response = puppet.send(
                puppet.build_request("GET", f"/runs/{run_id}/stream"), stream=True
            )
            held.append(response)
        assert [r.status_code for r in held] == [200] * TEAM_STREAMS + [429]
        assert "FITLENS_MAX_STREAMS_PER_TEAM" in held[-1].read().decode()
    finally:
        for response in held:
            response.close()


def test_idle_and_slow_connections_are_closed(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    token = launch.user_token(env, "slow", "slow-team")
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        started = time.monotonic()
        assert idle.recv(1) == b""  # closed by the server, having sent nothing
        assert time.monotonic() - started < 5
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")  # and the rest of the head never comes
        assert slow.recv(1) == b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as trickle:
        trickle.sendall(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        answer = trickle.recv(4096)  # the body never comes whole
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_one_study_request_cannot_exhaust_the_servers_memory(
    server: tuple[str, dict[str, str]],
) -> None:
    """10^16 members took the API to a 3 GiB cap in 15 s and a 500 MemoryError before."""
    base, env = server
    user = _user(env, base, "sam", "s-team")
    sweep = {f"model.p{i}": list(range(100)) for i in range(8)}
    started = time.monotonic()
    response = user.post("/studies", json={"design": {"sweep": sweep}})
    assert response.status_code == 422 and "members" in response.json()["detail"]
    assert time.monotonic() - started < 5
    wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200, 10, "the API answering")
