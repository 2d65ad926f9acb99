"""Metric points per second through POST /runs/{id}/metrics, against the real server, like for
like with MLflow's client (issue 15): the client builds and encodes each request's JSON inside
the timer, and the database already holds other runs.

    python -m bench.ingest                       # SQLite and PostgreSQL, 1,000 and 10,000 a request
    python -m bench.ingest --databases sqlite --batches 1000 --points 20000

For each database (SQLite: a fresh file; PostgreSQL: a throw-away database on the local server)
it starts the real API, loads ``--other-runs`` runs of 25,000 points each (not timed), then
sends ``--points`` points (4 keys) of a new run in requests of each batch size, one after
another, and prints the points per second and the request latencies. Every point is read back.

Targets (issue 29): >= 25x MLflow's own server at 1,000 points a request, >= 40x at 10,000, on
each database, and >= 70% of the raw ``sqlite3`` floor.

On SQLite the raw ``sqlite3`` floor (one row per point, ``executemany``) is printed next to
fitlens's rate. Before and after a change: ``bench.ab --base REV bench.ingest``.

With ``--protocols mlflow`` (part of the default), the same points go through MLflow's own
protocol, ``runs/log-batch`` of 1,000 metrics (MLflow's most), both to fitlens's /mlflow and to
MLflow's own server (``mlflow server``, its defaults, on a fresh database of each kind;
``scripts/setup.sh --tests`` installs it), one after the other in this run: the two rates and
their ratio (target >= 10x); then fitlens's own ingest against MLflow's server, database by
database and batch by batch, all measured in this run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.server import api_client, mlflow_server, throwaway_postgres
from fitlens.mlflow_import import send_again_if_dropped
from fitlens.sender import Point, as_columns

KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
LABELS = {"sqlite": "sqlite (file, WAL)"}


def start_run(http: httpx.Client, name: str) -> int:
    run = http.post("/api/v1/runs", json={"name": name, "params": {"bench": "ingest"}})
    return int(run.raise_for_status().json()["id"])


def encode(pending: list[Point], columns: bool) -> bytes:
    """A request's body: points one by one (as MLflow's client sends them), or as fitlens's
    client sends them, one series a key in columns (with the wall times it logs)."""
    if columns:
        return json.dumps({"series": as_columns(pending)}).encode()
    return json.dumps(
        {"points": [{"key": k, "step": s, "value": v} for k, s, v, _ in pending]}
    ).encode()


def send(
    http: httpx.Client, run_id: int, points: int, batch: int, columns: bool = False
) -> tuple[float, list[float]]:
    """Seconds to send ``points`` points in requests of ``batch``, encoding included."""
    steps = points // len(KEYS)
    values = [1.0 / (s + 1) for s in range(steps)]  # the user's numbers, before the timer
    url = f"/api/v1/runs/{run_id}/metrics?attempt=1"
    headers = {"content-type": "application/json"}
    latencies = []
    started = time.perf_counter()
    pending: list[Point] = []
    for step in range(steps):
        now = time.time()
        for key in KEYS:
            pending.append((key, step, values[step], now))
        if len(pending) >= batch or step == steps - 1:
            t0 = time.perf_counter()
            http.post(url, content=encode(pending, columns), headers=headers).raise_for_status()
            latencies.append(time.perf_counter() - t0)
            pending = []
    return time.perf_counter() - started, latencies


def stored(http: httpx.Client, run_id: int) -> int:
    series = http.get(f"/api/v1/runs/{run_id}/curves", params={"max_points": 2}).json()["series"]
    return sum(s["total_points"] for s in series)


def bench(label: str, url: str | None, args: argparse.Namespace) -> dict[str, float]:
    """Points per second at each batch size and body format, printed."""
    rates = {}
    with api_client(url) as http:
        for i in range(args.other_runs):
            send(http, start_run(http, f"other {i}"), 25_000, 10_000)
        print(f"database: {label}, holding {args.other_runs} other runs of 25,000 points")
        for batch in args.batches:
            for form in args.formats:
                run_id = start_run(http, f"ingest {batch} {form}")
                elapsed, latencies = send(http, run_id, args.points, batch, form == "columns")
                assert stored(http, run_id) == args.points
                case = _case(batch, form)
                rates[case] = args.points / elapsed
                print(
                    f"  {case}: {args.points:,} points in {len(latencies)} requests, "
                    f"{elapsed:.2f}s: ingest rate {args.points / elapsed:,.0f} points/s "
                    f"(request p50 {1000 * statistics.median(latencies):.1f} ms, "
                    f"max {1000 * max(latencies):.1f} ms)"
                )
            if label.startswith("sqlite"):
                floor = sqlite_floor(args.points, batch)
                print(
                    f"  raw sqlite3 floor at {batch:,} a request: {floor:,.0f} points/s; "
                    + "; ".join(
                        f"fitlens{' (columns)' if form == 'columns' else ''} at "
                        f"{100 * rates[_case(batch, form)] / floor:.0f}% of it"
                        for form in args.formats
                    )
                )
    return rates


def _case(batch: int, form: str) -> str:
    return f"{batch:,} points a request" + (" as columns" if form == "columns" else "")


def sqlite_floor(points: int, batch: int) -> float:
    """Points per second of plain ``sqlite3``: each request's JSON encoded and decoded, its
    rows inserted by ``executemany`` into a table of fitlens's old key shape (one row per
    point) and committed: what any one-row-per-point design pays before doing anything else."""
    path = Path(tempfile.mkdtemp(prefix="fitlens-floor-")) / "floor.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE metric_point (run_id INTEGER, key VARCHAR(100), step BIGINT, value FLOAT, "
        "wall_time FLOAT, PRIMARY KEY (run_id, key, step))"
    )
    steps = points // len(KEYS)
    values = [1.0 / (s + 1) for s in range(steps)]
    started = time.perf_counter()
    pending: list[dict[str, object]] = []
    now = time.time()
    for step in range(steps):
        for key in KEYS:
            pending.append({"key": key, "step": step, "value": values[step]})
        if len(pending) >= batch or step == steps - 1:
            body = json.loads(json.dumps({"points": pending}).encode())
            rows = [(1, p["key"], p["step"], p["value"], now) for p in body["points"]]
            db.executemany("INSERT INTO metric_point VALUES (?, ?, ?, ?, ?)", rows)
            db.commit()
            pending = []
    elapsed = time.perf_counter() - started
    db.close()
    return points / elapsed


MLFLOW_API = "/api/2.0/mlflow"
MLFLOW_BATCH = 1_000  # MLflow's most metrics in one log-batch


def mlflow_send(http: httpx.Client, prefix: str, run_id: str, points: int) -> float:
    """Seconds to send ``points`` points by MLflow's log-batch (its JSON encoded inside the
    timer, as its client does)."""
    steps = points // len(KEYS)
    values = [1.0 / (s + 1) for s in range(steps)]
    now = int(time.time() * 1000)
    url = f"{prefix}{MLFLOW_API}/runs/log-batch"
    headers = {"content-type": "application/json"}
    started = time.perf_counter()
    pending: list[dict[str, object]] = []
    for step in range(steps):
        for key in KEYS:
            pending.append({"key": key, "value": values[step], "timestamp": now, "step": step})
        if len(pending) >= MLFLOW_BATCH or step == steps - 1:
            body = json.dumps({"run_id": run_id, "metrics": pending}).encode()
            # MLflow's server now and then drops a connection unanswered (CI met it): the
            # same metrics sent again are stored once (its store drops exact repeats).
            send_again_if_dropped(
                http, "POST", url, content=body, headers=headers
            ).raise_for_status()
            pending = []
    return time.perf_counter() - started


def mlflow_run(http: httpx.Client, prefix: str) -> str:
    # A create sent twice makes two runs: the second one's id is the one used.
    made = send_again_if_dropped(
        http, "POST", f"{prefix}{MLFLOW_API}/runs/create", json={"experiment_id": "0"}
    )
    return str(made.raise_for_status().json()["run"]["info"]["run_id"])


def mlflow_stored(http: httpx.Client, prefix: str, run_id: str) -> int:
    total = 0
    for key in KEYS:
        history = send_again_if_dropped(
            http,
            "GET",
            f"{prefix}{MLFLOW_API}/metrics/get-history",
            params={"run_id": run_id, "metric_key": key, "max_results": 25_000},
        )
        total += len(history.raise_for_status().json().get("metrics", []))
    return total


def mlflow_rate(http: httpx.Client, prefix: str, points: int) -> float:
    """Points per second into a new run by log-batch; every point read back."""
    run_id = mlflow_run(http, prefix)
    elapsed = mlflow_send(http, prefix, run_id, points)
    assert mlflow_stored(http, prefix, run_id) == points
    return points / elapsed


def bench_mlflow_protocol(name: str, admin_url: str, points: int) -> float:
    """The same points by MLflow's protocol: to fitlens (/mlflow) and to MLflow's server, each
    on a fresh database of kind ``name``; MLflow's rate."""
    with database(name, admin_url) as url, api_client(url) as http:
        ours = mlflow_rate(http, "/mlflow", points)
    workdir = Path(tempfile.mkdtemp(prefix="fitlens-bench-mlflow-"))
    with (
        database(name, admin_url) as url,
        mlflow_server(workdir, database_url=url) as base,
        httpx.Client(base_url=base, timeout=120) as http,
    ):
        theirs = mlflow_rate(http, "", points)
    print(f"MLflow's protocol (log-batch of {MLFLOW_BATCH:,}, {name}), {points:,} points:")
    print(f"  fitlens /mlflow: {ours:,.0f} points/s")
    print(f"  MLflow's own server: {theirs:,.0f} points/s")
    print(f"  fitlens / MLflow: {ours / theirs:.1f}x")
    return theirs


@contextlib.contextmanager
def database(name: str, admin_url: str) -> Iterator[str | None]:
    """A fresh database for one server (none sees another's tables): None for a SQLite file
    (the server makes its own), else a throw-away PostgreSQL database on ``admin_url``."""
    if name == "sqlite":
        yield None
        return
    with throwaway_postgres(admin_url) as url:
        yield url


def print_ratios(native: dict[str, dict[str, float]], mlflow: dict[str, float]) -> None:
    """fitlens's own ingest against MLflow's server on the same database, in this run (issue
    29's targets: >= 25x at 1,000 points a request, >= 40x at 10,000)."""
    print("fitlens (POST .../metrics) / MLflow's own server (log-batch), same database, this run:")
    for label, rates in native.items():
        if label in mlflow:
            for case, rate in rates.items():
                target = 25 if case.startswith("1,000 ") else 40
                print(f"  {label}, {case}: {rate / mlflow[label]:.1f}x (target {target}x)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument(
        "--batches", type=lambda v: [int(x) for x in v.split(",")], default=[1_000, 10_000]
    )
    parser.add_argument("--other-runs", type=int, default=4)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--formats",
        type=lambda v: v.split(","),
        default=["points", "columns"],
        help="points: one by one (as MLflow's client); columns: as fitlens's client sends them",
    )
    parser.add_argument(
        "--protocols",
        default="fitlens,mlflow",
        help="fitlens: POST .../metrics on each database; mlflow: log-batch, fitlens vs MLflow",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="a server where a throw-away database may be created",
    )
    args = parser.parse_args()
    protocols = args.protocols.split(",")
    native: dict[str, dict[str, float]] = {}
    mlflow: dict[str, float] = {}
    for name in args.databases.split(","):
        if "fitlens" in protocols:
            with database(name, args.postgres_url) as url:
                native[name] = bench(LABELS.get(name, name), url, args)
        if "mlflow" in protocols:
            mlflow[name] = bench_mlflow_protocol(name, args.postgres_url, args.points)
    print_ratios(native, mlflow)


if __name__ == "__main__":
    main()
