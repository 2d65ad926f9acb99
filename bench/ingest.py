"""Metric points per second through POST /runs/{id}/metrics, against the real server.

    python bench/ingest.py                      # SQLite file (the default deployment)
    python bench/ingest.py --points 1000000     # more points
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target (2-core machine, SQLite): >= 50,000 points/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from bench.server import api_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=4, help="metric keys the points spread over")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    with api_client(args.database_url) as http:
        run_id = http.post("/api/v1/jobs", json={"name": "ingest-bench"}).json()["id"]
        http.post(f"/api/v1/runs/{run_id}/status", json={"status": "running"})
        steps_per_key = args.points // args.keys
        bodies = []
        batch: list[dict[str, object]] = []
        for key in range(args.keys):
            for step in range(steps_per_key):
                batch.append(
                    {
                        "key": f"metric_{key}",
                        "step": step,
                        "value": 1.0 / (step + 1),
                        "wall_time": 1.7e9 + step,
                    }
                )
                if len(batch) == args.batch:
                    bodies.append(json.dumps({"points": batch}).encode())
                    batch = []
        if batch:
            bodies.append(json.dumps({"points": batch}).encode())

        headers = {"content-type": "application/json"}
        latencies = []
        started = time.perf_counter()
        for body in bodies:
            t0 = time.perf_counter()
            response = http.post(f"/api/v1/runs/{run_id}/metrics", content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            response.raise_for_status()
        elapsed = time.perf_counter() - started
        total = steps_per_key * args.keys
        stored = sum(
            s["total_points"]
            for s in http.get(f"/api/v1/runs/{run_id}/curves", params={"max_points": 2}).json()[
                "series"
            ]
        )
        assert stored == total, (stored, total)
        print(f"database: {args.database_url or 'sqlite (file, WAL)'}")
        print(
            f"ingested {total:,} points in {len(bodies)} requests of {args.batch:,} "
            f"in {elapsed:.2f}s"
        )
        print(
            f"ingest rate: {total / elapsed:,.0f} points/s   "
            f"(request p50 {1000 * statistics.median(latencies):.0f} ms, "
            f"max {1000 * max(latencies):.0f} ms)"
        )


if __name__ == "__main__":
    main()
