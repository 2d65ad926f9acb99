"""Start the real API (uvicorn, in a subprocess) on a free port, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from stack.launch import ROOT, free_port, start_api, stop, user_token, wait_healthy

# A server that keeps no answers (api.core.cache): every read is computed, so a benchmark that
# repeats one measures the read itself, not the cache.
NO_ANSWER_CACHE = {"FITLENS_ANSWER_CACHE_MB": "0"}


@contextlib.contextmanager
def api_server(
    database_url: str | None = None,
    timeout: float = 60,
    workers: int = 1,
    settings: dict[str, str] | None = None,
    code: Path = ROOT,
) -> Iterator[tuple[httpx.Client, int]]:
    """A client of a freshly started, migrated API server, signed in as user "bench" (owner of
    team "bench"), and the server's process id; the server stops afterwards. ``settings``:
    more environment variables for the server (FITLENS_...); ``code``: the checkout it runs
    (another commit's worktree measures "before" in the same run)."""
    tmp = tempfile.mkdtemp(prefix="fitlens-bench-")
    url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    # No queue: the benchmarks' runs are for reading and writing, not for any worker to train.
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(code), "FITLENS_QUEUE": "none"}
    env |= settings or {}
    port = free_port()
    proc = start_api(port, env, workers=workers, cwd=code)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        headers = {"Authorization": f"Bearer {user_token(env, 'bench', 'bench', code)}"}
        with httpx.Client(base_url=base, timeout=timeout, headers=headers) as http:
            yield http, proc.pid
    finally:
        stop(proc, grace=10)


@contextlib.contextmanager
def api_client(
    database_url: str | None = None,
    timeout: float = 60,
    workers: int = 1,
    settings: dict[str, str] | None = None,
    code: Path = ROOT,
) -> Iterator[httpx.Client]:
    with api_server(database_url, timeout, workers, settings, code) as (http, _pid):
        yield http


@contextlib.contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    """The URL of a new, empty database on ``admin_url``'s server, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"fitlens_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


MLFLOW_VENV = Path(os.environ.get("FITLENS_MLFLOW_VENV", ROOT / ".venv-mlflow"))


@contextlib.contextmanager
def mlflow_server(
    workdir: Path, timeout: float = 120, database_url: str | None = None
) -> Iterator[str]:
    """MLflow's own tracking server (``mlflow server``, its defaults; its store a SQLite file
    in ``workdir``, or ``database_url``'s PostgreSQL database, through psycopg2) on a free
    port: its URL. ``scripts/setup.sh --tests`` installs it."""
    import subprocess
    import time

    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        raise RuntimeError(f"{mlflow} is missing: run ./scripts/setup.sh --tests")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(mlflow),
        "server",
        "--backend-store-uri",
        _mlflow_store(workdir, database_url),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(workdir / "mlflow.log", "w") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while not _healthy(f"{url}/health"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not come up: see {workdir}/mlflow.log")
                time.sleep(0.2)
            yield url
        finally:
            stop(proc, grace=10)


def _mlflow_store(workdir: Path, database_url: str | None) -> str:
    if database_url is None:
        return f"sqlite:///{workdir / 'mlflow.db'}"
    return database_url.replace("+psycopg://", "+psycopg2://", 1)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
