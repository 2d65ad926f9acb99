"""Start the real API (uvicorn, in a subprocess) on a free port, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from worker.launch import ROOT, free_port, start_api, stop, wait_healthy


@contextlib.contextmanager
def api_server(database_url: str | None = None) -> Iterator[str]:
    """Yield the base URL of a freshly migrated API server; stop it afterwards."""
    tmp = tempfile.mkdtemp(prefix="fitlens-bench-")
    url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    port = free_port()
    proc = start_api(port, {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        stop(proc, grace=10)
