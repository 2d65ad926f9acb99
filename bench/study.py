"""Studies against the real server and real Celery workers.

    python -m bench.study                    # both parts
    python -m bench.study --skip-workers     # only the read figures (seconds, not minutes)

1. Sharing: a 12-member digits study (2 dropout values x 2 weight decays x 3 folds) trained by
   2 workers, against the same 12 runs trained one after another by 1 worker: wall time from
   POST /studies until every member has ended, and the ratio (target: about 2x on 2 cores).
2. Reads: a 50-member study (5 configurations x 10 seeds, 30 epochs each, fed as workers feed
   it), then the server time (Server-Timing) of its comparison table and of its aggregate
   curves (val_loss and train_loss), p50 and p95 (target p50 <= 50 ms each).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.read import measure, p
from bench.server import NO_ANSWER_CACHE, api_client
from stack import launch

GRID = {
    "spec": {"model": {"hidden": [64]}, "epochs": 10, "histograms": {"enabled": False}},
    "design": {
        "sweep": {"model.dropout": [0, 0.5], "optimizer.weight_decay": [0, 1e-4]},
        "folds": {"k": 3},
    },
}


@contextlib.contextmanager
def study_stack(workers: int) -> Iterator[httpx.Client]:
    """A real API and ``workers`` Celery workers (one process each) on an on-disk broker and
    a fresh SQLite database; yields a client of the API's /api/v1 with a user's token."""
    tmp = Path(tempfile.mkdtemp(prefix="fitlens-bench-study-"))
    port = launch.free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "FITLENS_QUEUE": "celery",
        "FITLENS_BROKER_DIR": str(tmp / "broker"),
        "FITLENS_API_URL": base,
        # Each worker gets its share of the cores (all of them when it is alone).
        "FITLENS_TORCH_THREADS": str(max(1, (os.cpu_count() or 1) // workers)),
    }
    env.pop("REDIS_URL", None)
    env.pop("FITLENS_BROKER_URL", None)
    logs = [(tmp / f"{name}.log").open("w") for name in ("api", *map(str, range(workers)))]
    api = launch.start_api(port, env, logs[0])
    procs = [launch.start_worker(env, log, name=f"bench{i}") for i, log in enumerate(logs[1:])]
    try:
        launch.wait_healthy(base, api)
        token = launch.user_token(env, "bench", "bench")
        with httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http:
            time.sleep(5)  # let the workers finish starting: their start-up is not the study's
            yield http
    finally:
        for proc in procs:
            launch.stop(proc)
        launch.stop(api)
        for log in logs:
            log.close()


def train_study(workers: int) -> float:
    """Seconds from POST /studies until the 12 members have ended, with ``workers`` workers."""
    with study_stack(workers) as http:
        t0 = time.perf_counter()
        study = http.post("/studies", json=GRID).raise_for_status().json()
        while not http.get(f"/studies/{study['id']}").json()["done"]:
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
        status = http.get(f"/studies/{study['id']}").json()["status"]
        assert status == {"succeeded": 12}, status
        return seconds


def feed_members(http: httpx.Client, study_id: int, epochs: int) -> None:
    """Each member's epochs, as its worker would post them."""
    runs = http.get("/api/v1/runs", params={"study": study_id, "limit": 500}).json()["items"]
    for run in runs:
        url = f"/api/v1/runs/{run['id']}"
        http.post(f"{url}/status", json={"status": "running"}).raise_for_status()
        offset = 0.01 * run["study_config"] + 0.001 * run["study_replicate"]
        points = []
        for e in range(1, epochs + 1):
            train = 1 / e + offset
            val = train + 0.05 + 0.002 * max(0, e - 15) + offset
            values = {"train_loss": train, "val_loss": val, "gap": val - train}
            values["val_accuracy"] = 1 - math.exp(-e / 5) - offset
            points += [{"key": k, "step": e, "value": v} for k, v in values.items()]
        http.post(
            f"{url}/metrics",
            content=json.dumps({"points": points}),
            headers={"content-type": "application/json"},
        ).raise_for_status()
        http.post(f"{url}/status", json={"status": "succeeded"}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-workers", action="store_true", help="only the read figures")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    if not args.skip_workers:
        one = train_study(1)
        two = train_study(2)
        print(f"12-member study, 1 worker: {one:.1f} s")
        print(f"12-member study, 2 workers: {two:.1f} s")
        print(f"speed-up with 2 workers: {one / two:.2f}x")

    with api_client(args.database_url, settings=NO_ANSWER_CACHE) as http:
        body = {
            "spec": {"epochs": 30},
            "design": {
                "sweep": {"model.dropout": [0, 0.1, 0.2, 0.3, 0.5]},
                "seeds": list(range(10)),
            },
        }
        study = http.post("/api/v1/studies", json=body).raise_for_status().json()
        assert study["members"] == 50
        feed_members(http, study["id"], epochs=30)
        table_url = f"/api/v1/studies/{study['id']}/table"
        rows = http.get(table_url).json()["rows"]
        assert [r["values"]["min_val_loss"]["n"] for r in rows] == [10] * 5
        _, server = measure(http, table_url, args.repeat)
        print(
            f"table of a 50-member study: server p50 {p(server, 50):.1f} ms "
            f"(p95 {p(server, 95):.1f} ms)"
        )
        curves_url = f"/api/v1/studies/{study['id']}/curves?keys=val_loss,train_loss"
        bands = http.get(curves_url).json()["configs"]
        assert all(c["curves"][0]["n"] == [10] * 30 for c in bands)
        _, server = measure(http, curves_url, args.repeat)
        print(
            f"aggregate curves of a 50-member study (2 keys x 30 epochs): server p50 "
            f"{p(server, 50):.1f} ms (p95 {p(server, 95):.1f} ms)"
        )


if __name__ == "__main__":
    main()
