"""The MLflow importer's reads survive a server that drops a connection (MLflow's own server
closes idle keep-alive connections; a read sent on one as it closed failed an import in CI)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from fitlens.mlflow_import import SourceError, _call, mlflow_http


def _serve(dropped: int) -> Iterator[tuple[str, list[int]]]:
    """A real HTTP server on a free port that closes its first ``dropped`` connections as soon
    as a request arrives, without answering, then answers every request with a JSON body."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen = [0]

    def run() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if not conn.recv(65536):
                    continue
                seen[0] += 1
                if seen[0] <= dropped:
                    continue  # closed with no answer: "Server disconnected"
                body = json.dumps({"experiment": {"experiment_id": "7"}}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
                )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        listener.close()


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[int]]]:
    yield from _serve(dropped=2)


@pytest.fixture
def dead_server() -> Iterator[tuple[str, list[int]]]:
    yield from _serve(dropped=10)


def test_a_dropped_connection_is_read_again(flaky_server: tuple[str, list[int]]) -> None:
    url, seen = flaky_server
    with mlflow_http(url, timeout=10) as http:
        got = _call(http, "GET", "/experiments/get-by-name", params={"experiment_name": "x"})
    assert got == {"experiment": {"experiment_id": "7"}}
    assert seen[0] == 3  # two dropped, the third answered


def test_a_server_that_keeps_dropping_is_named(dead_server: tuple[str, list[int]]) -> None:
    url, seen = dead_server
    with mlflow_http(url, timeout=10) as http, pytest.raises(SourceError, match="cannot reach"):
        _call(http, "GET", "/experiments/get-by-name", params={"experiment_name": "x"})
    assert seen[0] == 3  # tried three times, then gave up
