"""Issue 21's findings as figures, against the real API (uvicorn, SQLite, answer cache on).

    python -m bench.hostile
    prlimit --as=3221225472 python -m bench.hostile   # on code from before issue 21: its
                                                      # server dies of the study request

Prints, per finding: leaks per trial of a deleted run's reused id (6 cached reads a trial),
the server's peak resident memory after a 10^16-member study request, how long ``/healthz``
stalled while a million ``{}`` went to ``/metrics`` (and 500,000 unknown keys to ``/jobs``),
and the most bytes the largest accepted spec may write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

import httpx

from api.core.config import Settings
from bench.server import api_server
from stack.launch import ROOT, user_token
from trainer.spec import JobSpec

READS = ("", "/curves", "/histograms", "/histograms?param=w", "/diagnosis")
MAXIMAL = {"model": {"kind": "mlp", "hidden": [1] * 16}, "histograms": {"bins": 1024}}


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _leaks(http: httpx.Client, other: httpx.Client, trials: int) -> int:
    """Issue 21's recipe: Alice makes a run and reads it (the answers are cached), deletes it;
    Bob, of another team, makes one the same way and reads his. A read is a leak when it shows
    Alice's name or params."""
    leaks = 0
    for _ in range(trials):
        body = {"project": "p", "name": "A-SECRET", "params": {"k": "x-secret"}}
        run = http.post("/api/v1/runs", json=body).json()["id"]
        paths = [f"/api/v1/runs/{run}{r}" for r in READS] + [f"/api/v1/compare?runs={run}"]
        for path in paths:
            http.get(path)
        http.delete(f"/api/v1/runs/{run}")
        other.post("/api/v1/runs", json={"project": "q"})
        leaks += sum(
            "A-SECRET" in (text := other.get(path).text) or "x-secret" in text for path in paths
        )
    return leaks


def _stall(http: httpx.Client, base: str, path: str, body: bytes) -> tuple[float, float, int]:
    """(seconds the post took, longest /healthz answer meanwhile, the post's status)."""
    longest, done = 0.0, threading.Event()

    def probe() -> None:
        nonlocal longest
        while not done.is_set():
            t0 = time.perf_counter()
            with contextlib.suppress(httpx.TimeoutException):  # stalled the whole 600 s
                httpx.get(f"{base}/healthz", timeout=600)
            longest = max(longest, time.perf_counter() - t0)

    prober = threading.Thread(target=probe)
    prober.start()
    t0 = time.perf_counter()
    status = http.post(
        path, content=body, headers={"content-type": "application/json"}, timeout=600
    )
    took = time.perf_counter() - t0
    done.set()
    prober.join()
    return took, longest, status.status_code


def main() -> None:
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='fitlens-hostile-')) / 'h.db'}"
    with api_server(url, timeout=120) as (http, pid):
        base = str(http.base_url).rstrip("/")
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        bob = user_token(env, "bob", "bobs")  # the attacker: another team's owner
        other = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {bob}"})
        print(f"reused id: {_leaks(http, other, 7)} leaks of 42 cached reads in 7 trials")
        run = http.post("/api/v1/runs", json={"project": "p"}).json()["id"]
        empties = b'{"points": [' + b",".join([b"{}"] * 1_000_000) + b"]}"
        took, longest, code = _stall(http, base, f"/api/v1/runs/{run}/metrics?attempt=1", empties)
        print(f"1,000,000 {{}} to /metrics: {code} in {took:.3f} s; /healthz <= {longest:.3f} s")
        keys = b"{" + b",".join(b'"k%d":1' % i for i in range(500_000)) + b"}"
        took, longest, code = _stall(http, base, "/api/v1/jobs", keys)
        print(f"500,000 unknown keys to /jobs: {code} in {took:.3f} s; /healthz <= {longest:.3f} s")
        spec = {**MAXIMAL, "epochs": 10_000}
        code = http.post("/api/v1/jobs", json={"spec": spec}).status_code
        print(f"maximal spec (16 width-1 layers, 1,024 bins, 10,000 epochs): {code}")
        _budget(spec)
        # Last: before issue 21 this request wrecked the server (run it under prlimit --as).
        sweep = {f"model.p{i}": list(range(100)) for i in range(8)}
        t0 = time.perf_counter()
        answer = http.post("/api/v1/studies", json={"design": {"sweep": sweep}})
        print(
            f"10^16-member study: {answer.status_code} in {1000 * (time.perf_counter() - t0):.0f}"
            f" ms; server peak resident {_peak_mib(pid):.0f} MiB"
        )


def _budget(spec: dict[str, object]) -> None:
    try:  # a base tree of a before/after comparison may predate the storage budget
        from api.runs.budget import storage_estimate
    except ImportError:
        print("storage budget: none (any accepted spec may write what it asks)")
        return
    settings = Settings()
    asked = storage_estimate(JobSpec.model_validate(spec)) >> 20
    print(
        f"storage: that spec would write up to {asked:,}"
        f" MiB; an accepted one at most {settings.max_run_storage_mb} MiB, a team's runs"
        f" together {settings.max_team_storage_mb:,} MiB"
    )


if __name__ == "__main__":
    main()
