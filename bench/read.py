"""Curve reads and polls against the real server.

    python bench/read.py                       # 1,000,000 points of one key, SQLite
    python bench/read.py --points 200000 --database-url postgresql+psycopg://...

Prints the time to answer GET /runs/{id}/curves for one key downsampled to 1,000 points
(target p50 <= 50 ms), a zoomed read at full resolution, and a 304 poll with If-None-Match
(target <= 2 ms server time, read from the Server-Timing header), and the CSV export of a
100,000-point run, whole download (target <= 500 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from bench.server import api_client


def server_ms(response: httpx.Response) -> float:
    timing = response.headers["server-timing"]  # "app;dur=1.234"
    return float(timing.split("dur=")[1])


def measure(
    http: httpx.Client, url: str, n: int, headers: dict[str, str] | None = None, expect: int = 200
) -> tuple[list[float], list[float]]:
    wall, server = [], []
    for _ in range(n):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--max-points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--csv-points", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with api_client(args.database_url, timeout=120) as http:
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

        tag = http.get(url).headers["etag"]
        wall, server = measure(http, url, args.repeat * 4, {"If-None-Match": tag}, expect=304)
        print(
            f"304 poll (If-None-Match): server p50 {p(server, 50):.2f} ms "
            f"(p95 {p(server, 95):.2f} ms); round trip p50 {p(wall, 50):.2f} ms"
        )


if __name__ == "__main__":
    main()
