"""The main job on one machine with nothing installed by hand: ``python -m stack.demo``.

Starts the API (SQLite file) and two Celery workers (a broker folder on disk, or Redis when
REDIS_URL is set), submits seed 001's comparison as one study over HTTP (no regularization,
dropout, L1, L2 in both forms, ReduceLROnPlateau; each with 5-fold cross-validation: 30 runs
the workers share), prints each member as it ends with its diagnosis, and ends with the
comparison table (mean +- std over the folds, the verdicts) and each fix's effect against no
regularization, with its 95% interval.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from stack import launch

ROOT = launch.ROOT
STUDY = ROOT / "examples" / "studies" / "seed001_comparison.json"
WORKERS = 2


class _Terminated(Exception):
    """SIGTERM arrived."""


def _terminated(signum: int, _frame: object) -> None:
    raise _Terminated


def main() -> int:
    args = _arguments()
    state = (ROOT / args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    port = launch.free_port(args.port)
    base = f"http://127.0.0.1:{port}"
    env = _environment(state, base)
    broker = env.get("FITLENS_BROKER_URL") or env.get("REDIS_URL") or "a folder on disk"
    print(
        f"fitlens demo: API on {base} (database {env['DATABASE_URL']}), "
        f"worker broker: {broker}; logs in {state}"
    )
    # SIGTERM (a service manager, `kill`, a container stop) unwinds like Ctrl-C: the finally
    # below stops the API and the workers this started, instead of leaving them running.
    signal.signal(signal.SIGTERM, _terminated)
    api_log = (state / "api.log").open("w")
    api = launch.start_api(port, env, api_log)
    worker_logs = [(state / f"worker{i}.log").open("w") for i in range(1, WORKERS + 1)]
    workers = [
        launch.start_worker(env, log, name=f"worker{i}") for i, log in enumerate(worker_logs, 1)
    ]
    # What it started, for whoever wants to check that they stop with it.
    (state / "pids").write_text("".join(f"{p.pid}\n" for p in (api, *workers)))
    try:
        try:
            launch.wait_healthy(base, api)
        except RuntimeError as exc:
            raise SystemExit(f"{exc}; see {state / 'api.log'}") from None
        _run_study(args, base, env, workers)
        if args.keep_serving:
            print(f"the API and the dashboard keep serving on {base}/ (Ctrl-C to stop)", flush=True)
            api.wait()
        else:
            print(
                f"the runs stay in {env['DATABASE_URL']}; to browse them later: "
                f"./scripts/demo.sh --keep-serving, or DATABASE_URL={env['DATABASE_URL']} "
                f"{_shown_python()} -m api, then open {base}/"
            )
        return 0
    except KeyboardInterrupt:
        return 130
    except _Terminated:
        return 143
    finally:
        for worker in workers:
            launch.stop(worker)
        launch.stop(api)
        api_log.close()
        for log in worker_logs:
            log.close()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stack.demo", description=__doc__)
    parser.add_argument("--state-dir", default=".fitlens", help="database, broker folder, logs")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--folds", type=int, default=5, help="cross-validation folds per configuration (2 or more)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: the study's (30)")
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="leave the API running at the end (Ctrl-C to stop)",
    )
    return parser.parse_args()


def _environment(state: Path, base: str) -> dict[str, str]:
    """What the API and the workers run with: this machine's state folder, the API's URL."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{state / 'fitlens.db'}"),
        "FITLENS_QUEUE": "celery",
        "FITLENS_BROKER_DIR": str(state / "broker"),
        "FITLENS_API_URL": base,
        "FITLENS_HEARTBEAT_INTERVAL": os.environ.get("FITLENS_HEARTBEAT_INTERVAL", "2"),
        # The workers share this machine's cores instead of each taking all of them.
        "FITLENS_TORCH_THREADS": os.environ.get(
            "FITLENS_TORCH_THREADS", str(max(1, (os.cpu_count() or 1) // WORKERS))
        ),
    }


def _run_study(
    args: argparse.Namespace, base: str, env: dict[str, str], workers: list[subprocess.Popen[bytes]]
) -> None:
    """The main job: the seeds' comparison study, followed run by run, then its table."""
    # The demo acts as user "demo", owner of team "demo" (created on first use); the
    # worker never sees this token, only each run's own.
    token = launch.user_token(env, "demo", "demo")
    http = httpx.Client(
        base_url=f"{base}/api/v1", timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    tag = f"demo-{uuid.uuid4().hex[:6]}"
    body = {**json.loads(STUDY.read_text()), "project": "demo", "tags": ["demo", tag]}
    body["design"]["folds"]["k"] = args.folds
    if args.epochs is not None:
        body["spec"]["epochs"] = args.epochs
    study = http.post("/studies", json=body).raise_for_status().json()
    print(
        f"study {study['id']}: {study['name']}\n{study['members']} runs "
        f"({len(study['configs'])} configurations x {args.folds} folds, tag {tag}) for "
        f"{WORKERS} workers; each line is a run that ended, with its diagnosis\n",
        flush=True,
    )
    _follow(http, study, workers)
    _table(http, base, study)
    sign_in = (
        f"sign in with a token for user demo, which this prints (once; keep it): "
        f"DATABASE_URL={env['DATABASE_URL']} {_shown_python()} -m api admin token demo"
    )
    print(f"\ndashboard: {base}/#/studies/{study['id']} ({sign_in})")


def _follow(
    http: httpx.Client, study: dict[str, Any], workers: list[subprocess.Popen[bytes]]
) -> None:
    """Print each member as it ends (its configuration, fold, status and diagnosis), polling
    the study with its ETag, until every member has ended."""
    names = {c["index"]: c["name"] or f"config {c['index']}" for c in study["configs"]}
    width = max(len(n) for n in names.values())
    shown: set[int] = set()
    etag = ""
    deadline = time.monotonic() + 1800
    while True:
        if any(w.poll() is not None for w in workers):
            raise SystemExit("a worker stopped; see its log")
        if time.monotonic() > deadline:
            raise SystemExit("the demo took more than 30 minutes")
        response = http.get(f"/studies/{study['id']}", headers={"If-None-Match": etag})
        if response.status_code == 200:
            etag = response.headers.get("etag", "")
            runs = http.get("/runs", params={"study": study["id"], "limit": 500}).json()
            for run in sorted(runs["items"], key=lambda r: r["id"]):
                if run["id"] in shown or run["status"] not in ("succeeded", "failed", "cancelled"):
                    continue
                shown.add(run["id"])
                label = f"{names[run['study_config']]:<{width}} fold {run['study_replicate'] + 1}"
                d = run["diagnosis"] or {}
                detail = (
                    f"best epoch {_fmt(d.get('best_epoch'), 'd'):>2}  "
                    f"min val_loss {_fmt(d.get('min_val_loss'), '.4f')}  "
                    f"final gap {_fmt(d.get('final_gap'), '+.4f')}  {d.get('verdict', '-')}"
                    if run["status"] == "succeeded"
                    else run["failure_reason"] or ""
                )
                print(
                    f"[{len(shown):>2}/{study['members']}] {label}  {run['status']}  {detail}",
                    flush=True,
                )
            if response.json()["done"]:
                return
        time.sleep(0.5)


def _table(http: httpx.Client, base: str, study: dict[str, Any]) -> None:
    """The comparison table and the effects against the baseline, as the API computes them."""
    table = http.get(f"/studies/{study['id']}/table").json()
    effects = http.get(f"/studies/{study['id']}/effects").json()
    width = max(len(r["name"] or "") for r in table["rows"])
    header = (
        f"{'configuration':<{width}}  {'min val loss':>17}  {'best epoch':>10}  "
        f"{'val accuracy':>15}  {'final gap':>17}  {'onset':>5}  verdicts"
    )
    print(f"\nmean +- std over the folds\n{header}\n{'-' * len(header)}")
    for row in table["rows"]:
        v = row["values"]
        verdicts = ", ".join(f"{n} {k}" for k, n in sorted(row["verdicts"].items()))
        print(
            f"{row['name']:<{width}}  {_pm(v['min_val_loss'], '.4f'):>17}  "
            f"{_fmt(v['best_epoch']['mean'], '.1f'):>10}  {_pm(v['val_accuracy'], '.2%'):>15}  "
            f"{_pm(v['final_gap'], '+.4f'):>17}  {_fmt(v['onset_epoch']['mean'], '.1f'):>5}  "
            f"{verdicts}"
        )
    print(
        f"\neffect against {effects['baseline_name']} (paired over folds, 95% interval of the "
        "corrected resampled t-test; detectable: Holm-adjusted p below 0.05)"
    )
    for config in effects["configs"]:
        parts = []
        for key, label, spec in EFFECTS:
            e = config["effects"][key]
            if e["mean"] is None:
                parts.append(f"{label}: -")
                continue
            interval = f"[{_fmt(e['ci_low'], spec)}, {_fmt(e['ci_high'], spec)}]"
            verdict = "" if e["detectable"] else " (no detectable effect)"
            parts.append(f"{label} {_fmt(e['mean'], spec)} {interval}{verdict}")
        print(f"{config['name']:<{width}}  " + ";  ".join(parts))
    api = f"{base}/api/v1/studies/{study['id']}"
    print(f"\ntable: {api}/table (CSV: {api}/table.csv)\neffects: {api}/effects")
    print(f"bands: {api}/curves?keys=val_loss,train_loss")
    print(f"runs: {base}/api/v1/runs?study={study['id']}")
    print('(every endpoint wants the header "Authorization: Bearer <token>"; see below)')


EFFECTS = (
    ("min_val_loss", "min val loss", "+.4f"),
    ("val_accuracy", "val accuracy", "+.2%"),
    ("final_gap", "final gap", "+.4f"),
)


def _pm(stat: dict[str, Any], spec: str) -> str:
    if stat["mean"] is None:
        return "-"
    std = "" if stat["std"] is None else f" +- {format(stat['std'], spec.lstrip('+'))}"
    return f"{format(stat['mean'], spec)}{std}"


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
