"""The main job on one machine with nothing installed by hand: ``python -m stack.demo``.

Starts the API (SQLite file) and a Celery worker (a broker folder on disk, or Redis when
REDIS_URL is set), submits seed 001's comparison on the digits data (no regularization,
dropout, L1, L2, ReduceLROnPlateau) over HTTP, prints each run's epochs as the worker reports
them, and ends with a comparison table and the URLs of the curves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from stack import launch

ROOT = launch.ROOT
SEEDS = [
    "seed001_no_regularization",
    "seed001_dropout",
    "seed001_l1",
    "seed001_l2",
    "seed001_reduce_lr_on_plateau",
]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.demo", description=__doc__)
    parser.add_argument("--state-dir", default=".fitlens", help="database, broker folder, logs")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="leave the API running at the end (Ctrl-C to stop)",
    )
    args = parser.parse_args()

    state = (ROOT / args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    port = launch.free_port(args.port)
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{state / 'fitlens.db'}"),
        "FITLENS_QUEUE": "celery",
        "FITLENS_BROKER_DIR": str(state / "broker"),
        "FITLENS_API_URL": base,
        "FITLENS_HEARTBEAT_INTERVAL": os.environ.get("FITLENS_HEARTBEAT_INTERVAL", "2"),
    }
    broker = env.get("FITLENS_BROKER_URL") or env.get("REDIS_URL") or "a folder on disk"
    print(
        f"fitlens demo: API on {base} (database {env['DATABASE_URL']}), "
        f"worker broker: {broker}; logs in {state}"
    )
    api_log, worker_log = (state / "api.log").open("w"), (state / "worker.log").open("w")
    api = launch.start_api(port, env, api_log)
    worker = launch.start_worker(env, worker_log)
    try:
        try:
            launch.wait_healthy(base, api)
        except RuntimeError as exc:
            raise SystemExit(f"{exc}; see {state / 'api.log'}") from None
        # The demo acts as user "demo", owner of team "demo" (created on first use); the
        # worker never sees this token, only each run's own.
        token = launch.user_token(env, "demo", "demo")
        http = httpx.Client(
            base_url=f"{base}/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        tag = f"demo-{uuid.uuid4().hex[:6]}"
        runs = {}
        for name in SEEDS:
            spec = json.loads((ROOT / "examples" / f"{name}.json").read_text())
            run = (
                http.post(
                    "/jobs",
                    json={"spec": spec, "name": name, "tags": ["demo", tag], "project": "demo"},
                )
                .raise_for_status()
                .json()
            )
            runs[run["id"]] = name
        print(f"submitted {len(runs)} runs (tag {tag}); the worker starts in a few seconds\n")
        _follow(http, runs, worker)
        _table(http, base, runs)
        python = _shown_python()
        token_hint = (
            f"a token for user demo: DATABASE_URL={env['DATABASE_URL']} "
            f"{python} -m api admin token demo"
        )
        if args.keep_serving:
            print(f"\nthe API keeps serving on {base} (Ctrl-C to stop); {token_hint}")
            api.wait()
        else:
            print(
                f"\nthe runs stay in {env['DATABASE_URL']}; browse them later with "
                f"DATABASE_URL={env['DATABASE_URL']} {python} -m api; {token_hint}"
            )
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        launch.stop(worker)
        launch.stop(api)
        api_log.close()
        worker_log.close()


def _follow(http: httpx.Client, runs: dict[int, str], worker: subprocess.Popen[bytes]) -> None:
    """Print each run's new epochs as they arrive (polling with ETags), until all have ended."""
    shown = dict.fromkeys(runs, 0)
    etags: dict[int, str] = {}
    width = max(len(n) for n in runs.values())
    done: set[int] = set()
    deadline = time.monotonic() + 1800
    while len(done) < len(runs):
        if worker.poll() is not None:
            raise SystemExit("the worker stopped; see its log")
        if time.monotonic() > deadline:
            raise SystemExit("the demo took more than 30 minutes")
        for run_id, name in runs.items():
            if run_id in done:
                continue
            response = http.get(
                f"/runs/{run_id}/curves",
                params={"keys": "train_loss,val_loss,train_accuracy,val_accuracy,gap,lr"},
                headers={"If-None-Match": etags.get(run_id, "")},
            )
            if response.status_code == 200:
                etags[run_id] = response.headers.get("etag", "")
                series = {s["key"]: s for s in response.json()["series"]}
                steps = series["val_loss"]["steps"]
                for i, step in enumerate(steps):
                    if step <= shown[run_id]:
                        continue
                    v = {k: series[k]["values"][i] for k in series if i < len(series[k]["values"])}
                    print(
                        f"[{name:<{width}}] epoch {step:>2}  train_loss {v['train_loss']:.4f}  "
                        f"val_loss {v['val_loss']:.4f}  train_acc {100 * v['train_accuracy']:5.1f}%"
                        f"  val_acc {100 * v['val_accuracy']:5.1f}%  gap {v['gap']:+.4f}  "
                        f"lr {v['lr']:.2e}",
                        flush=True,
                    )
                    shown[run_id] = step
            run = http.get(f"/runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed", "cancelled"):
                done.add(run_id)
                extra = f": {run['failure_reason']}" if run["failure_reason"] else ""
                print(f"[{name:<{width}}] {run['status']}{extra}", flush=True)
        time.sleep(0.3)


def _table(http: httpx.Client, base: str, runs: dict[int, str]) -> None:
    ids = ",".join(str(i) for i in runs)
    comparison = http.get("/compare", params={"runs": ids, "keys": "val_loss,train_loss"}).json()
    header = (
        f"{'run':<30} {'best epoch':>10} {'min val loss':>12} {'final gap':>10} "
        f"{'final val acc':>13}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for row in comparison["runs"]:
        s: dict[str, Any] = row["summary"]
        print(
            f"{row['run']['name']:<30} {_fmt(s['best_epoch'], 'd'):>10} "
            f"{_fmt(s['min_val_loss'], '.4f'):>12} {_fmt(s['final_gap'], '+.4f'):>10} "
            f"{_fmt(s['final_val_accuracy'], '.2%'):>13}"
        )
    print(f"\ncompare: {base}/api/v1/compare?runs={ids}&keys=val_loss,train_loss")
    print('(every endpoint wants the header "Authorization: Bearer <token>"; see below)')
    for run_id, name in runs.items():
        print(f"curves ({name}): {base}/api/v1/runs/{run_id}/curves?keys=train_loss,val_loss")


def _shown_python() -> str:
    """The interpreter to name in hints: the one running this, relative to the checkout when
    it lives there (``.venv/bin/python``): a bare ``python`` may lack fitlens."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def _fmt(value: Any, spec: str) -> str:
    if value is None or isinstance(value, str):  # missing, or "NaN"/"Infinity"
        return str(value if value is not None else "-")
    return format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
