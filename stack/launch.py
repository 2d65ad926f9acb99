"""Starting and stopping fitlens processes (the API, Celery workers) on this machine.

Used by the embedded demo, the benchmarks and the end-to-end tests, so they all start things
the same way: in a process group of their own (a stop or kill takes a worker's pool children
with it, as when a machine or container dies), and the API counted as up once /healthz says so.

Why a package of its own: this runs the other packages' commands (``python -m api``, ``celery
-A worker.celery_app worker``) as processes and talks to them over HTTP, importing none of
them. It lived in ``worker`` before, which made the worker package the one that starts the API;
the worker's only door to the API is HTTP, and it should not know how the API is run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port(preferred: int = 0) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    args: list[str], env: dict[str, str], log: IO[str] | None = None, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )


def start_api(
    port: int,
    env: dict[str, str],
    log: IO[str] | None = None,
    workers: int = 1,
    cwd: Path = ROOT,
) -> subprocess.Popen[bytes]:
    """The API server; ``cwd``: the checkout whose code it runs (a benchmark's "before")."""
    args = [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)]
    return start([*args, "--workers", str(workers)], env, log, cwd)


def start_worker(
    env: dict[str, str], log: IO[str] | None = None, name: str = "worker"
) -> subprocess.Popen[bytes]:
    return start(
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
        env,
        log,
    )


def user_token(env: dict[str, str], user: str, team: str, cwd: Path = ROOT) -> str:
    """A token for ``user`` (an owner of ``team``) in the database ``env`` names, through the
    operator's CLI: creates the user on first use, else mints them a new token. The token
    comes back on stdout, never through a log."""
    admin = [sys.executable, "-m", "api", "admin"]
    created = subprocess.run(
        [*admin, "create-user", user, "--team", team],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if created.returncode == 0:
        return created.stdout.strip()
    if "already exists" not in created.stderr:
        raise RuntimeError(f"could not create user {user}: {created.stderr.strip()}")
    minted = subprocess.run(
        [*admin, "token", user, "--label", "launcher"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return minted.stdout.strip()


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the API at {base_url} did not start")
        time.sleep(0.1)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the whole process group: no goodbye, no acknowledgement."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM to the process itself, which shuts down cleanly (a Celery worker stops its own
    pool: signalling the whole group made the pool children die first, which the worker logged
    as an error); SIGKILL to the whole group if it is not gone within ``grace`` seconds."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill(proc)
