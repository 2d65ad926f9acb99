"""The block size, measured: how many points a block of a series holds (api.metrics.blocks).

    python -m bench.blocks                          # SQLite, sizes 256 to 4,096
    python -m bench.blocks --sizes 512,1024 --database-url postgresql+psycopg://...

For each size, in one run (this machine is shared: compare the ratios), straight through the
metric store (no HTTP, which costs the same whatever the size): 100,000 points of 4 keys
ingested 1,000 a post; an epoch log (4 keys, one step a post, 2,000 posts: each rewrites the
tail block); a full read of a 100,000-point series and a 1,000-point downsampled read of it;
and the bytes on disk per point (SQLite: the file's growth). Larger blocks pack better and
read in fewer rows; smaller ones make an epoch log's tail rewrite cheaper.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.core.db import make_engine, run_migrations
from api.runs.schemas import RunStart
from api.store import TrackingStore
from bench.server import throwaway_postgres

KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def best_ms(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def measure(url: str, size: int, points: int) -> dict[str, float]:
    run_migrations(url)
    store = TrackingStore(make_engine(url))
    store.metrics.block_points = size
    _, token = store.people.create_user(f"bench{size}", team=f"bench{size}")
    principal = store.people.authenticate(token)

    def new_run(name: str) -> int:
        return store.runs.start_client_run(RunStart(name=name), principal).id

    steps = points // len(KEYS)
    bulk = new_run("bulk")
    t0 = time.perf_counter()
    pending: list[Any] = []
    for step in range(steps):
        pending += [{"key": k, "step": step, "value": 1.0 / (step + 1)} for k in KEYS]
        if len(pending) >= 1_000:
            store.metrics.add_metrics(bulk, pending)
            pending = []
    if pending:
        store.metrics.add_metrics(bulk, pending)
    ingest = points / (time.perf_counter() - t0)

    epochs = new_run("epochs")
    t0 = time.perf_counter()
    for step in range(2_000):
        store.metrics.add_metrics(epochs, [{"key": k, "step": step, "value": 0.5} for k in KEYS])
    epoch_post_ms = 1000 * (time.perf_counter() - t0) / 2_000

    full = best_ms(lambda: store.metrics.get_curves(bulk, ["val_loss"], steps, downsample=False), 7)
    sampled = best_ms(lambda: store.metrics.get_curves(bulk, ["val_loss"], 1_000), 15)
    store.engine.dispose()
    return {"ingest": ingest, "epoch_post_ms": epoch_post_ms, "full_ms": full, "sampled": sampled}


def sqlite_bytes_per_point(size: int, points: int) -> float:
    """The database file's growth per point over ``points`` points of one key."""
    path = Path(tempfile.mkdtemp(prefix="fitlens-blocks-")) / "size.db"
    url = f"sqlite:///{path}"
    run_migrations(url)
    store = TrackingStore(make_engine(url))
    store.metrics.block_points = size
    _, token = store.people.create_user("bytes", team="bytes")
    run_id = store.runs.start_client_run(RunStart(name="size"), store.people.authenticate(token)).id
    store.engine.dispose()
    empty = os.path.getsize(path)
    store = TrackingStore(make_engine(url))
    store.metrics.block_points = size
    for start in range(0, points, 10_000):
        batch: Any = [
            {"key": "loss", "step": s, "value": 1.0 / (1 + s % 977), "wall_time": 1.7e9 + s / 50}
            for s in range(start, start + 10_000)
        ]
        store.metrics.add_metrics(run_id, batch, max_keys=10)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.engine.dispose()
    return (os.path.getsize(path) - empty) / points


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blocks", description=__doc__)
    parser.add_argument("--sizes", default="256,1024,4096")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--bytes-points", type=int, default=200_000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        if args.database_url:
            with throwaway_postgres(args.database_url) as url:
                results[size] = measure(url, size, args.points)
        else:
            path = Path(tempfile.mkdtemp(prefix="fitlens-blocks-")) / "bench.db"
            results[size] = measure(f"sqlite:///{path}", size, args.points)
            results[size]["bytes"] = sqlite_bytes_per_point(size, args.bytes_points)
    base = results[1024] if 1024 in results else results[sizes[0]]
    print(f"database: {args.database_url or 'sqlite (file, WAL)'}; {args.points:,} points")
    for size, r in results.items():
        stored = f", {r['bytes']:.1f} bytes/point on disk" if "bytes" in r else ""
        print(
            f"  block {size:>5,}: ingest {r['ingest']:,.0f} points/s "
            f"({r['ingest'] / base['ingest']:.2f}x), epoch post {r['epoch_post_ms']:.2f} ms, "
            f"full read {r['full_ms']:.1f} ms, 1,000-point read {r['sampled']:.1f} ms{stored}"
        )


if __name__ == "__main__":
    main()
