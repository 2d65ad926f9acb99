"""What logging from your own loop costs the loop, and how fast one client sends.

    python -m bench.client                  # 100,000 log calls of 4 keys

1. ``run.log`` overhead: the time one ``run.log({4 keys}, step)`` call takes in the training
   loop (the network is off the hot path: the call only queues). Target < 50 microseconds.
2. Throughput: points per second one client delivers to the real server (uvicorn, SQLite),
   from the first ``log`` call until the server has every point (``flush``).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.server import api_client
from fitlens import Client


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    with api_client(timeout=120) as http:
        base = str(http.base_url).rstrip("/")
        token = http.headers["authorization"].split(" ", 1)[1]
        with Client(base, token) as client, client.start_run(project="bench") as run:
            per_call = []
            started = time.perf_counter()
            for step in range(1, args.calls + 1):
                t0 = time.perf_counter_ns()
                run.log(
                    {"train_loss": 1 / step, "val_loss": 2 / step, "lr": 1e-3, "gap": 1 / step},
                    step=step,
                )
                per_call.append(time.perf_counter_ns() - t0)
            logged = time.perf_counter() - started
            run.flush(timeout=600)
            sent = time.perf_counter() - started
            points = 4 * args.calls
            totals = client.get(f"/runs/{run.id}/curves", max_points=10)["series"]
            stored = sum(s["total_points"] for s in totals)
        per_call.sort()
        print(
            f"run.log overhead: p50 {statistics.median(per_call) / 1000:.1f} us, "
            f"p99 {per_call[int(0.99 * len(per_call))] / 1000:.1f} us, "
            f"mean {sum(per_call) / len(per_call) / 1000:.1f} us per call of 4 keys "
            f"({args.calls:,} calls in {logged:.2f} s; target < 50 us)"
        )
        print(
            f"sent {points:,} points in {sent:.2f} s: {points / sent:,.0f} points/s by one client; "
            f"{stored:,} stored"
        )


if __name__ == "__main__":
    main()
