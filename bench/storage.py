"""Bytes on disk per metric point: a SQLite database file's growth over many points.

    python -m bench.storage                                  # 1,000,000 points into fitlens
    python -m bench.storage --before /tmp/before --mlflow    # and the code in another
                                                             # checkout, and MLflow's server

Each server gets a fresh SQLite file; ``--points`` points of 4 keys (a client's wall time on
each, 10,000 a request) go into one run, every point is read back, the file is checkpointed
(WAL folded in) and its growth divided by the points. ``--before DIR`` runs the same against
the code in DIR (a git worktree of an older commit: ``git worktree add /tmp/before REV``), and
``--mlflow`` against MLflow's own server (log-batch of 1,000; ``--mlflow-points`` of them: its
ingest is slow).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx

from bench.server import api_client, mlflow_server
from stack.launch import ROOT

KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def file_bytes(path: Path) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path.stat().st_size


def fitlens_bytes(points: int, code: Path) -> float:
    path = Path(tempfile.mkdtemp(prefix="fitlens-storage-")) / "storage.db"
    steps = points // len(KEYS)
    with api_client(f"sqlite:///{path}", code=code, timeout=300) as http:
        made = http.post("/api/v1/runs", json={"name": "storage", "params": {"bench": "storage"}})
        run_id = made.raise_for_status().json()["id"]
        empty = file_bytes(path)
        for start in range(0, steps, 2_500):
            body = {
                "points": [
                    {"key": k, "step": s, "value": 1.0 / (s + 1), "wall_time": 1.7e9 + s / 20}
                    for s in range(start, min(start + 2_500, steps))
                    for k in KEYS
                ]
            }
            http.post(f"/api/v1/runs/{run_id}/metrics", json=body).raise_for_status()
        series = http.get(f"/api/v1/runs/{run_id}/curves", params={"max_points": 2}).json()
        assert sum(s["total_points"] for s in series["series"]) == steps * len(KEYS)
    return (file_bytes(path) - empty) / (steps * len(KEYS))


def mlflow_bytes(points: int) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="fitlens-storage-mlflow-"))
    api = "/api/2.0/mlflow"
    steps = points // len(KEYS)
    with mlflow_server(workdir) as url, httpx.Client(base_url=url, timeout=300) as http:
        made = http.post(f"{api}/runs/create", json={"experiment_id": "0"}).raise_for_status()
        run_id = made.json()["run"]["info"]["run_id"]
        empty = file_bytes(workdir / "mlflow.db")
        now = int(time.time() * 1000)
        for start in range(0, steps, 250):
            metrics = [
                {"key": k, "value": 1.0 / (s + 1), "timestamp": now + s, "step": s}
                for s in range(start, min(start + 250, steps))
                for k in KEYS
            ]
            http.post(
                f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
            ).raise_for_status()
        return (file_bytes(workdir / "mlflow.db") - empty) / (steps * len(KEYS))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--before", type=Path, default=None, help="another checkout to measure")
    parser.add_argument("--mlflow", action="store_true")
    parser.add_argument("--mlflow-points", type=int, default=100_000)
    args = parser.parse_args()
    print(f"bytes on disk per point (SQLite file growth, {args.points:,} points of 4 keys):")
    ours = fitlens_bytes(args.points, ROOT)
    if args.before:
        theirs = fitlens_bytes(args.points, args.before)
        print(f"  before ({args.before}): {theirs:.1f} bytes/point")
    print(f"  fitlens: {ours:.1f} bytes/point")
    if args.before:
        print(f"  before / fitlens: {theirs / ours:.1f}x")
    if args.mlflow:
        mlflow = mlflow_bytes(args.mlflow_points)
        print(f"  MLflow's own server ({args.mlflow_points:,} points): {mlflow:.1f} bytes/point")
        print(f"  MLflow / fitlens: {mlflow / ours:.1f}x")


if __name__ == "__main__":
    main()
