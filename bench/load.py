"""Pollers and writers together against the real server (issue 15).

    python -m bench.load                          # 50 pollers, 4 writers, 10 s per phase
    python -m bench.load --pollers 20 --seconds 5 --database-url postgresql+psycopg://...

Phase 1: N pollers (asyncio, one connection each) cycle over reads of a "polled" run with
``If-None-Match``: its curves of a key nobody writes (``lr``), of a key the writers write
(``val_loss``), the run itself, and its histogram index. Phase 2: the same, while W writers
post epochs (4 keys) and heartbeats to runs of their own and to the polled run. Printed per
phase: requests/s, p50/p99 latency, the share answered 304, errors, and the 200s that were not
needed (the body was the one the poller held: the validator changed while the data did not);
then the phase-2 / phase-1 throughput ratio, and the count of written points read back.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections import Counter
from typing import Any

import httpx

from bench.server import api_client

POLLED = ("curves?keys=lr", "curves?keys=val_loss", "", "histograms")
KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
WARM_UP = 1.0  # seconds of each phase not counted


def _start(http: httpx.Client, name: str) -> int:
    run = http.post("/api/v1/runs", json={"name": name, "params": {"lr": 0.01}})
    return int(run.raise_for_status().json()["id"])


def _epoch(http: httpx.Client, run_id: int, step: int) -> int:
    points = [{"key": k, "step": step, "value": 1.0 / (step + i)} for i, k in enumerate(KEYS)]
    http.post(f"/api/v1/runs/{run_id}/metrics?attempt=1", json={"points": points})
    beat = {"status": "heartbeat", "attempt": 1, "epoch": min(step, 10**6)}
    http.post(f"/api/v1/runs/{run_id}/status", json=beat)
    return len(points)


class Writers:
    """W threads, each posting epochs and heartbeats to its own run and to the polled run."""

    def __init__(self, base: str, headers: dict[str, str], runs: list[int], polled: int):
        self.base, self.headers, self.runs, self.polled = base, headers, runs, polled
        self.stop = threading.Event()
        self.written: Counter[int] = Counter()
        self.steps: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(r,)) for r in runs]

    def _next(self, run_id: int) -> int:
        with self.lock:
            self.steps[run_id] += 1
            return self.steps[run_id]

    def _write(self, own: int) -> None:
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=30) as http:
            while not self.stop.is_set():
                for run_id in (own, self.polled):
                    n = _epoch(http, run_id, self._next(run_id))
                    with self.lock:
                        self.written[run_id] += n
                time.sleep(0.05)  # a worker posts an epoch every so often, not flat out

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


async def _poll(
    base: str, headers: dict[str, str], polled: int, seconds: float, offset: int
) -> tuple[list[float], Counter[str], int]:
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    needless = 0
    held: dict[str, tuple[str, bytes]] = {}
    counted_from = time.monotonic() + WARM_UP  # connections opened, caches warm
    deadline = counted_from + seconds
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        i = offset
        while time.monotonic() < deadline:
            counting = time.monotonic() >= counted_from  # sent after the warm-up
            path = POLLED[i % len(POLLED)]
            i += 1
            url = f"/api/v1/runs/{polled}/{path}".rstrip("/")
            tag, body = held.get(url, ("", b""))
            t0 = time.perf_counter()
            try:
                r = await http.get(url, headers={"If-None-Match": tag} if tag else {})
            except httpx.HTTPError:
                answers["error"] += 1
                continue
            if r.status_code == 200:
                held[url] = (r.headers.get("etag", ""), r.content)
            if not counting:
                continue
            latencies.append(1000 * (time.perf_counter() - t0))
            if r.status_code == 304:
                answers["304"] += 1
            elif r.status_code == 200:
                answers["200"] += 1
                needless += bool(tag) and _same(r.content, body)
            else:
                answers["error"] += 1
    return latencies, answers, needless


def _same(new: bytes, old: bytes) -> bool:
    """The same data, whatever revision number the body carries."""
    import json

    def strip(raw: bytes) -> Any:
        doc = json.loads(raw)
        if isinstance(doc, dict):
            doc.pop("revision", None)
        return doc

    return strip(new) == strip(old)


async def _phase(base: str, headers: dict[str, str], polled: int, n: int, seconds: float) -> dict:
    results = await asyncio.gather(*(_poll(base, headers, polled, seconds, i) for i in range(n)))
    elapsed = seconds
    latencies = sorted(x for r in results for x in r[0])
    answers = sum((r[1] for r in results), Counter())
    total = sum(answers.values())
    return {
        "rps": total / elapsed,
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p99": latencies[int(0.99 * len(latencies))] if latencies else 0.0,
        "share304": answers["304"] / max(1, total),
        "errors": answers["error"],
        "needless": sum(r[2] for r in results),
        "total": total,
    }


def _print(name: str, f: dict) -> None:
    print(
        f"{name}: {f['rps']:,.0f} requests/s, p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, "
        f"304 share {100 * f['share304']:.1f}%, errors {f['errors']}, "
        f"needless 200s {f['needless']} of {f['total']:,} answers"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--api-workers", type=int, default=1, help="server processes")
    args = parser.parse_args()
    with api_client(args.database_url, timeout=60, workers=args.api_workers) as http:
        base = str(http.base_url).rstrip("/")
        headers = {"Authorization": http.headers["authorization"]}
        polled = _start(http, "polled")
        own = [_start(http, f"writer {i}") for i in range(args.writers)]
        written = Counter({polled: _epoch(http, polled, 1)})  # something to read from the start
        hist = {"param": "w", "step": 1, "edges": [0.0, 1.0], "counts": [3]}
        http.post(f"/api/v1/runs/{polled}/histograms?attempt=1", json={"histograms": [hist]})
        quiet = asyncio.run(_phase(base, headers, polled, args.pollers, args.seconds))
        _print("no writers", quiet)
        writers = Writers(base, headers, own, polled)
        writers.steps[polled] = 1
        with writers:
            busy = asyncio.run(_phase(base, headers, polled, args.pollers, args.seconds))
        _print(f"{args.writers} writers", busy)
        written.update(writers.written)
        print(f"throughput with writers / without: {busy['rps'] / quiet['rps']:.2f}")
        read = 0
        for run_id in [polled, *own]:
            series = http.get(f"/api/v1/runs/{run_id}/curves", params={"max_points": 10})
            read += sum(s["total_points"] for s in series.json()["series"])
        print(f"points written {sum(written.values()):,}, read back {read:,}")


if __name__ == "__main__":
    main()
