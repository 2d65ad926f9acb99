"""Start the real API (uvicorn, in a subprocess) on a free port, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from stack.launch import ROOT, free_port, start_api, stop, user_token, wait_healthy


@contextlib.contextmanager
def api_server(
    database_url: str | None = None, timeout: float = 60, workers: int = 1
) -> Iterator[tuple[httpx.Client, int]]:
    """A client of a freshly started, migrated API server, signed in as user "bench" (owner of
    team "bench"), and the server's process id; the server stops afterwards."""
    tmp = tempfile.mkdtemp(prefix="fitlens-bench-")
    url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    # No queue: the benchmarks' runs are for reading and writing, not for any worker to train.
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "FITLENS_QUEUE": "none"}
    port = free_port()
    proc = start_api(port, env, workers=workers)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        headers = {"Authorization": f"Bearer {user_token(env, 'bench', 'bench')}"}
        with httpx.Client(base_url=base, timeout=timeout, headers=headers) as http:
            yield http, proc.pid
    finally:
        stop(proc, grace=10)


@contextlib.contextmanager
def api_client(
    database_url: str | None = None, timeout: float = 60, workers: int = 1
) -> Iterator[httpx.Client]:
    with api_server(database_url, timeout, workers) as (http, _pid):
        yield http
