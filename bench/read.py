"""Curve reads and polls against the real server.

    python bench/read.py                       # 1,000,000 points of one key, SQLite
    python bench/read.py --points 200000 --database-url postgresql+psycopg://...

Prints the time to answer GET /runs/{id}/curves for one key downsampled to 1,000 points
(target p50 <= 50 ms), a zoomed read at full resolution, and a 304 poll with If-None-Match
(target <= 2 ms server time, read from the Server-Timing header), the CSV export of a
100,000-point run, whole download (target <= 500 ms), the same 100,000 points read at full
resolution through /curves (target <= 60 ms server time), and the whole 1,000,000-point series
at full resolution, page by page and as streamed JSON lines, with the server's resident memory
before and at its highest during the stream (bounded: it must not grow with the length).

``--mlflow`` adds MLflow's own server's full and 1,000-point reads of the same ``--csv-points``
points, and the ratios (before and after a change: ``bench.ab --base REV bench.read``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import NO_ANSWER_CACHE, api_server, mlflow_server
from fitlens.mlflow_import import send_again_if_dropped


def server_ms(response: httpx.Response) -> float:
    timing = response.headers["server-timing"]  # "app;dur=1.234"
    return float(timing.split("dur=")[1])


def measure(
    http: httpx.Client, url: str, n: int, headers: dict[str, str] | None = None, expect: int = 200
) -> tuple[list[float], list[float]]:
    wall, server = [], []
    for _ in range(n):
        # The servers run without the answer cache (NO_ANSWER_CACHE): each read is its own.
        t0 = time.perf_counter()
        response = http.get(url, headers=headers)
        wall.append(1000 * (time.perf_counter() - t0))
        assert response.status_code == expect, response.status_code
        server.append(server_ms(response))
    return wall, server


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def load(http: httpx.Client, run_id: int, points: int) -> None:
    for start in range(0, points, 10_000):
        body = json.dumps(
            {
                "points": [
                    {"key": "train_loss", "step": s, "value": 1.0 / (1 + s % 977)}
                    for s in range(start, min(start + 10_000, points))
                ]
            }
        )
        http.post(
            f"/api/v1/runs/{run_id}/metrics",
            content=body,
            headers={"content-type": "application/json"},
        ).raise_for_status()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def whole_series(http: httpx.Client, run_id: int, points: int, pid: int) -> None:
    """Every point of the long series: by pages of 100,000 through /curves, then streamed."""
    t0 = time.perf_counter()
    got, start = 0, 0
    while True:
        params: dict[str, str | int] = {
            "keys": "train_loss",
            "downsample": "false",
            "max_points": 100_000,
        }
        response = http.get(f"/api/v1/runs/{run_id}/curves", params={**params, "start": start})
        series = response.json()["series"][0]
        if "next_start" not in series:  # a server without pages
            print("curves pages: not offered by this server")
            break
        got += len(series["steps"])
        if series["next_start"] is None:
            print(
                f"curves pages, {got:,} points at full resolution: "
                f"{1000 * (time.perf_counter() - t0):.0f} ms"
            )
            assert got == points, (got, points)
            break
        start = series["next_start"]

    before, peak = rss_mib(pid), [0.0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    t0 = time.perf_counter()
    lines = 0
    try:
        with http.stream("GET", f"/api/v1/runs/{run_id}/metrics.jsonl") as response:
            if response.status_code != 200:
                print("metrics.jsonl: not offered by this server")
                return
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
    finally:
        done.set()
        watcher.join()
    assert lines == points, (lines, points)
    print(
        f"metrics.jsonl, {lines:,} points streamed: {1000 * (time.perf_counter() - t0):.0f} ms; "
        f"server memory {before:.0f} MiB before, {peak[0]:.0f} MiB at most while streaming"
    )


def reads(args: argparse.Namespace) -> dict[str, float]:
    """Every measure of this bench; the round trips (ms) the comparison with MLflow quotes."""
    figures: dict[str, float] = {}
    with api_server(args.database_url, timeout=120, settings=NO_ANSWER_CACHE) as (http, pid):
        run_id = http.post("/api/v1/jobs", json={"name": "read-bench"}).json()["id"]
        http.post(f"/api/v1/runs/{run_id}/status", json={"status": "running"})
        t0 = time.perf_counter()
        load(http, run_id, args.points)
        print(
            f"database: {args.database_url or 'sqlite (file, WAL)'}; loaded {args.points:,} "
            f"points of one key in {time.perf_counter() - t0:.1f}s"
        )

        url = f"/api/v1/runs/{run_id}/curves?keys=train_loss&max_points={args.max_points}"
        body = http.get(url).json()["series"][0]
        assert body["total_points"] == args.points and len(body["steps"]) <= args.max_points
        wall, server = measure(http, url, args.repeat)
        print(
            f"curves, {args.points:,} -> {len(body['steps'])} points: "
            f"p50 {p(wall, 50):.1f} ms (p95 {p(wall, 95):.1f} ms); "
            f"server p50 {p(server, 50):.1f} ms"
        )

        mid = args.points // 2
        zoom = f"/api/v1/runs/{run_id}/curves?keys=train_loss&start={mid}&end={mid + 999}"
        wall, server = measure(http, zoom, args.repeat)
        print(
            f"zoomed read, 1,000 raw points: p50 {p(wall, 50):.1f} ms; "
            f"server p50 {p(server, 50):.1f} ms"
        )

        csv_run = http.post("/api/v1/jobs", json={"name": "csv-bench"}).json()["id"]
        http.post(f"/api/v1/runs/{csv_run}/status", json={"status": "running"})
        load(http, csv_run, args.csv_points)
        csv_url = f"/api/v1/runs/{csv_run}/metrics.csv"
        assert http.get(csv_url).text.count("\n") == args.csv_points + 1
        wall, _ = measure(http, csv_url, max(3, args.repeat // 5))
        print(f"metrics.csv, {args.csv_points:,} points: p50 {p(wall, 50):.1f} ms (whole download)")

        full = f"/api/v1/runs/{csv_run}/curves?keys=train_loss&max_points={args.csv_points}"
        body = http.get(full).json()["series"][0]
        assert len(body["steps"]) == args.csv_points and not body["downsampled"]
        wall, server = measure(http, full, max(3, args.repeat // 5))
        print(
            f"curves at full resolution, {args.csv_points:,} points: server p50 "
            f"{p(server, 50):.1f} ms; round trip p50 {p(wall, 50):.1f} ms"
        )
        figures["full"] = p(wall, 50)
        sampled = f"/api/v1/runs/{csv_run}/curves?keys=train_loss&max_points=1000"
        wall, server = measure(http, sampled, args.repeat)
        print(
            f"curves, {args.csv_points:,} -> 1,000 points: round trip p50 {p(wall, 50):.1f} ms; "
            f"server p50 {p(server, 50):.1f} ms"
        )
        figures["downsampled"] = p(wall, 50)
        whole_series(http, run_id, args.points, pid)

        tag = http.get(url).headers["etag"]
        wall, server = measure(http, url, args.repeat * 4, {"If-None-Match": tag}, expect=304)
        print(
            f"304 poll (If-None-Match): server p50 {p(server, 50):.2f} ms "
            f"(p95 {p(server, 95):.2f} ms); round trip p50 {p(wall, 50):.2f} ms"
        )
    return figures


def _get_json(http: httpx.Client, url: str, params: dict[str, Any]) -> Any:
    """A read from MLflow's server, sent again when the server drops the connection without
    answering, as it does now and then even on a fresh one (as fitlens's importer does)."""
    return send_again_if_dropped(http, "GET", url, params=params).json()


def mlflow_reads(points: int, repeat: int) -> dict[str, float]:
    """The same two reads from MLflow's own server (SQLite, its defaults): every point of a
    ``points``-point metric by metrics/get-history, page by page, and its UI's 1,000-point
    sample (get-history-bulk-interval), as round trips (ms), the client's parse included."""
    workdir = Path(tempfile.mkdtemp(prefix="fitlens-bench-mlflow-"))
    api = "/api/2.0/mlflow"
    # A connection a request: MLflow's server closes idle keep-alive connections, and a read
    # sent on one as it closed came back as "Server disconnected".
    fresh = httpx.Limits(max_keepalive_connections=0)
    with (
        mlflow_server(workdir) as url,
        httpx.Client(base_url=url, timeout=600, limits=fresh) as http,
    ):
        made = http.post(f"{api}/runs/create", json={"experiment_id": "0"}).raise_for_status()
        run_id = made.json()["run"]["info"]["run_id"]
        now = int(time.time() * 1000)
        for start in range(0, points, 1_000):
            metrics = [
                {"key": "train_loss", "value": 1.0 / (1 + s % 977), "timestamp": now, "step": s}
                for s in range(start, min(start + 1_000, points))
            ]
            http.post(
                f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
            ).raise_for_status()

        def full() -> int:
            got, token = 0, None
            while True:
                params = {"run_id": run_id, "metric_key": "train_loss", "max_results": 25_000}
                if token:
                    params["page_token"] = token
                body = _get_json(http, f"{api}/metrics/get-history", params)
                got += len(body.get("metrics", []))
                token = body.get("next_page_token")
                if not token:
                    return got

        assert full() == points
        sample = {"run_ids": run_id, "metric_key": "train_loss", "max_results": 1000}
        interval = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
        figures = {}
        for name, read in (
            ("full", full),
            ("downsampled", lambda: _get_json(http, interval, sample)),
        ):
            times = []
            for _ in range(max(3, repeat // 5)):
                t0 = time.perf_counter()
                read()
                times.append(1000 * (time.perf_counter() - t0))
            figures[name] = statistics.median(times)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--max-points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--csv-points", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--mlflow",
        action="store_true",
        help="the same full and 1,000-point reads of --csv-points points from MLflow's server",
    )
    args = parser.parse_args()
    after = reads(args)
    if args.mlflow:
        theirs = mlflow_reads(args.csv_points, args.repeat)
        for name in ("full", "downsampled"):
            print(
                f"MLflow's own server, {name} read of {args.csv_points:,} points: "
                f"{theirs[name]:.1f} ms; fitlens {theirs[name] / after[name]:.1f}x faster"
            )


if __name__ == "__main__":
    main()
