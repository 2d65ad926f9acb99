"""Whether webhooks slow ingest: a metrics post's latency with no webhook, and with one whose
receiver accepts connections and never answers (every delivery to it hangs until its time
limit), in alternating rounds against the real server.

    python -m bench.webhooks --rounds 3 --posts 200

Each round: with the hanging webhook, 20 runs finish (20 deliveries hanging at once, tried
again and again), then ``--posts`` metric posts (20 points each) to another run are timed;
without, the webhook is deleted (its deliveries with it) and the same posts are timed.
Prints the median and 90th percentile per variant and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time

import httpx

from bench.server import api_server

SETTINGS = {
    "FITLENS_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on loopback
    "FITLENS_WEBHOOK_INTERVAL": "1",  # the default
    "FITLENS_WEBHOOK_BACKOFF": "0.1",
    "FITLENS_WEBHOOK_TIMEOUT": "5",
    "FITLENS_WEBHOOK_MAX_TRIES": "50",
}


class Hanging:
    """Accepts every connection and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)


def client_run(http: httpx.Client, name: str) -> int:
    made = http.post("/api/v1/runs", json={"project": "bench", "name": name, "epochs": 10})
    made.raise_for_status()
    return int(made.json()["id"])


def timed_posts(http: httpx.Client, run_id: int, posts: int, start: int) -> list[float]:
    times = []
    for i in range(posts):
        step = start + i
        points = [{"key": f"m{k}", "step": step, "value": 1.0 / step} for k in range(20)]
        t0 = time.perf_counter()
        http.post(f"/api/v1/runs/{run_id}/metrics?attempt=1", json={"points": points})
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    hanging = Hanging()
    samples: dict[str, list[float]] = {"without": [], "with": []}
    with api_server(settings=SETTINGS) as (http, _):
        team = http.get("/api/v1/teams").json()[0]["id"]
        target = client_run(http, "timed")
        step = 1
        for r in range(args.rounds):
            samples["without"] += timed_posts(http, target, args.posts, step)
            step += args.posts
            hook = http.post(f"/api/v1/teams/{team}/webhooks", json={"url": hanging.url})
            hook.raise_for_status()
            for i in range(20):
                run_id = client_run(http, f"ends-{r}-{i}")
                done = {"status": "succeeded", "attempt": 1}
                http.post(f"/api/v1/runs/{run_id}/status", json=done).raise_for_status()
            deadline = time.monotonic() + 10
            while len(hanging.held) < 20 * (r + 1) and time.monotonic() < deadline:
                time.sleep(0.05)  # the sender's tries are hanging now
            samples["with"] += timed_posts(http, target, args.posts, step)
            step += args.posts
            http.delete(f"/api/v1/teams/{team}/webhooks/{hook.json()['id']}").raise_for_status()
        print(f"hanging connections held by the receiver: {len(hanging.held)}")
    for name in ("without", "with"):
        ms = sorted(1000 * t for t in samples[name])
        p90 = ms[int(0.9 * (len(ms) - 1))]
        print(f"{name:7} a hanging webhook: p50 {statistics.median(ms):.2f} ms  p90 {p90:.2f} ms")
    ratio = statistics.median(samples["with"]) / statistics.median(samples["without"])
    print(f"p50 ratio with / without: {ratio:.3f}")


if __name__ == "__main__":
    main()
