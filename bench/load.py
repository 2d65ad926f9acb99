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
import json
import multiprocessing
import os
import statistics
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.rawhttp import Connection
from bench.server import api_server

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
    """W threads in a process of their own (so the pollers keep their core and GIL), each
    posting epochs and heartbeats to its own run and to the polled run."""

    def __init__(self, base: str, headers: dict[str, str], runs: list[int], polled: int):
        self.args = (base, headers, runs, polled)
        self.stop = multiprocessing.Event()
        self.results: multiprocessing.Queue[dict[int, int]] = multiprocessing.Queue()
        self.process = multiprocessing.Process(
            target=_write_all, args=(*self.args, self.stop, self.results)
        )
        self.written: Counter[int] = Counter()

    def __enter__(self) -> Writers:
        self.process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.written.update(self.results.get(timeout=120))
        self.process.join()


def _write_all(
    base: str,
    headers: dict[str, str],
    runs: list[int],
    polled: int,
    stop: Any,
    results: Any,
) -> None:
    written: Counter[int] = Counter()
    steps: Counter[int] = Counter({polled: 1})  # the polled run's step 1 is written already
    lock = threading.Lock()

    def write(own: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            while not stop.is_set():
                for run_id in (own, polled):
                    with lock:
                        steps[run_id] += 1
                        step = steps[run_id]
                    n = _epoch(http, run_id, step)
                    with lock:
                        written[run_id] += n
                time.sleep(0.05)  # a worker posts an epoch every so often, not flat out

    threads = [threading.Thread(target=write, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(dict(written))


async def _poll(
    base: str, headers: dict[str, str], polled: int, seconds: float, offset: int
) -> tuple[list[float], Counter[str], int, dict[str, list[float]]]:
    latencies: list[float] = []
    by_answer: dict[str, list[float]] = {}
    answers: Counter[str] = Counter()
    needless = 0
    held: dict[str, tuple[str, bytes]] = {}
    counted_from = time.monotonic() + WARM_UP  # connections opened, caches warm
    deadline = counted_from + seconds
    where = urlsplit(base)
    conn = Connection(where.hostname or "127.0.0.1", where.port or 80, headers)
    i = offset
    try:
        while time.monotonic() < deadline:
            counting = time.monotonic() >= counted_from  # sent after the warm-up
            path = POLLED[i % len(POLLED)]
            i += 1
            url = f"/api/v1/runs/{polled}/{path}".rstrip("/")
            tag, body = held.get(url, ("", b""))
            t0 = time.perf_counter()
            try:
                status, got, content = await conn.get(url, {"If-None-Match": tag} if tag else {})
            except (OSError, asyncio.IncompleteReadError, ValueError):
                answers["error"] += 1
                await conn.close()
                continue
            if status == 200:
                held[url] = (got.get("etag", ""), content)
            if not counting:
                continue
            latencies.append(1000 * (time.perf_counter() - t0))
            by_answer.setdefault(f"{path or 'run'} {status}", []).append(latencies[-1])
            if status == 304:
                answers["304"] += 1
            elif status == 200:
                answers["200"] += 1
                needless += bool(tag) and _same(content, body)
            else:
                answers["error"] += 1
    finally:
        await conn.close()
    return latencies, answers, needless, by_answer


def _same(new: bytes, old: bytes) -> bool:
    """The same data, whatever revision number the body carries."""

    def strip(raw: bytes) -> Any:
        doc = json.loads(raw)
        if isinstance(doc, dict):
            doc.pop("revision", None)
        return doc

    return strip(new) == strip(old)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the API's worker processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def _phase(
    base: str, headers: dict[str, str], polled: int, n: int, seconds: float, pid: int
) -> dict:
    cpu = [0.0, 0.0]

    async def mark_cpu() -> None:  # the server's CPU over the counted span, not the warm-up
        await asyncio.sleep(WARM_UP)
        cpu[0] = _cpu_seconds(pid)
        await asyncio.sleep(seconds)
        cpu[1] = _cpu_seconds(pid)

    results, _ = await asyncio.gather(
        asyncio.gather(*(_poll(base, headers, polled, seconds, i) for i in range(n))),
        mark_cpu(),
    )
    latencies = sorted(x for r in results for x in r[0])
    kinds: dict[str, list[float]] = {}
    for r in results:
        for kind, values in r[3].items():
            kinds.setdefault(kind, []).extend(values)
    answers = sum((r[1] for r in results), Counter())
    total = sum(answers.values())
    return {
        "rps": total / seconds,
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p99": latencies[int(0.99 * len(latencies))] if latencies else 0.0,
        "share304": answers["304"] / max(1, total),
        "errors": answers["error"],
        "needless": sum(r[2] for r in results),
        "total": total,
        "server_cores": (cpu[1] - cpu[0]) / seconds,
        "kinds": {k: sorted(v) for k, v in sorted(kinds.items())},
    }


def _print(name: str, f: dict) -> None:
    print(
        f"{name}: {f['rps']:,.0f} requests/s, p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, "
        f"304 share {100 * f['share304']:.1f}%, errors {f['errors']}, "
        f"needless 200s {f['needless']} of {f['total']:,} answers; "
        f"server busy {f['server_cores']:.2f} cores"
    )
    for kind, values in f["kinds"].items():
        print(
            f"  {kind}: {len(values):,} answers, p50 {statistics.median(values):.1f} ms, "
            f"p99 {values[int(0.99 * len(values))]:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--api-workers", type=int, default=1, help="server processes")
    args = parser.parse_args()
    with api_server(args.database_url, timeout=60, workers=args.api_workers) as (http, pid):
        base = str(http.base_url).rstrip("/")
        headers = {"Authorization": http.headers["authorization"]}
        polled = _start(http, "polled")
        own = [_start(http, f"writer {i}") for i in range(args.writers)]
        written = Counter({polled: _epoch(http, polled, 1)})  # something to read from the start
        hist = {"param": "w", "step": 1, "edges": [0.0, 1.0], "counts": [3]}
        http.post(f"/api/v1/runs/{polled}/histograms?attempt=1", json={"histograms": [hist]})
        quiet = asyncio.run(_phase(base, headers, polled, args.pollers, args.seconds, pid))
        _print("no writers", quiet)
        writers = Writers(base, headers, own, polled)
        with writers:
            busy = asyncio.run(_phase(base, headers, polled, args.pollers, args.seconds, pid))
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
