"""`python -m api --workers 2` (issue 15): two server processes behind one port, the
reconciler in one of them at a time (a lease in the database), streams from either."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from stack import launch
from tests.e2e.sse import read_stream


def test_two_processes_serve_and_one_holds_the_reconciler() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fitlens-procs-"))
    db = tmp / "procs.db"
    port = launch.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{db}",
        "FITLENS_QUEUE": "none",
        "FITLENS_REAPER_INTERVAL": "0.3",
    }
    base = f"http://127.0.0.1:{port}"
    with open(tmp / "api.log", "w") as log:
        api = launch.start_api(port, env, log, workers=2)
        try:
            launch.wait_healthy(base, api)
            children = subprocess.run(
                ["pgrep", "-P", str(api.pid)], capture_output=True, text=True
            ).stdout.split()
            assert len(children) >= 2, children  # the two server processes
            token = launch.user_token(env, "procs", "procs")
            with httpx.Client(
                base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}
            ) as http:
                run = http.post("/runs", json={"name": "two processes"}).json()["id"]
                answers = {http.get(f"/runs/{run}").status_code for _ in range(20)}
                assert answers == {200}
                holders = set()
                for _ in range(8):
                    time.sleep(0.3)
                    with sqlite3.connect(db) as conn:
                        holders.add(conn.execute("SELECT holder FROM lease").fetchone()[0])
                assert len(holders - {""}) == 1, holders  # one process renews it
                http.post(f"/runs/{run}/status", json={"status": "succeeded", "attempt": 1})
                events, _ = read_stream(http, f"/runs/{run}/stream")
                assert events[-1].event == "end" and events[-1].data["status"] == "succeeded"
        finally:
            launch.stop(api, grace=10)
    assert "ERROR" not in (tmp / "api.log").read_text()
