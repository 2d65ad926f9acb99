"""The training task: fetch the run, start an attempt, train with the API reporter, finish."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import re
import socket
import subprocess
from pathlib import Path

from pydantic import ValidationError

from trainer.environment import environment, use_configured_threads
from trainer.loop import device_name, resolve_device, train
from trainer.spec import JobSpec
from worker.celery_app import app
from worker.client import ApiClient, RunGone
from worker.config import get_settings
from worker.contract import TASK_NAME
from worker.reporter import ApiReporter

log = logging.getLogger("fitlens.worker")

# An absolute path of two or more parts, e.g. /root/.cache/fitlens/data/MNIST/raw.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/'\",:()]+/)+[^\s/'\",:()]*")
MAX_REASON = 2000


def failure_reason(exc: BaseException, prefix: str = "") -> str:
    """How a run failed, as its user will read it: the worker's file system stays private (the
    whole traceback is in the worker's log), no NUL, and short enough to be stored."""
    text = f"{prefix}{type(exc).__name__}: {exc}" if not prefix else f"{prefix}{exc}"
    text = _ABSOLUTE_PATH.sub("<path>", text).replace("\x00", "")
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


@app.task(name=TASK_NAME)
def train_run(run_id: int, token: str | None = None) -> str:
    """Run one job end to end. ``token`` is the run's worker token, minted by the API when it
    enqueued the run. Returns what happened, for the worker's log."""
    settings = get_settings()
    client = ApiClient(settings, token)
    log.info("run %s: received", run_id)
    try:
        outcome = run_job(client, run_id, settings.heartbeat_interval)
    finally:
        client.close()
    log.info("%s", outcome)
    return outcome


def run_job(client: ApiClient, run_id: int, heartbeat_interval: float) -> str:
    try:
        run = client.get_run(run_id)
    except RunGone as exc:  # its token died with the run: cancelled or ended before we began
        return f"run {run_id} skipped: {exc.detail}"
    if run["status"] != "queued":
        # A second delivery of a job that already started or ended: nothing to do.
        return f"run {run_id} is {run['status']}; skipped"
    try:
        spec = JobSpec.model_validate(run["spec"])
        device = resolve_device(spec.device)
        use_configured_threads()  # what the record says is what the run trains with
    except (ValidationError, RuntimeError) as exc:
        client.status(run_id, status="failed", reason=failure_reason(exc, "cannot start: "))
        return f"run {run_id} failed to start"
    try:
        started = client.status(
            run_id,
            status="running",
            worker_host=socket.gethostname(),
            device=device_name(device),
            epochs=spec.epochs,
            environment={**environment(device), **code_version()},
        )
    except RunGone as exc:
        return f"run {run_id} not started: {exc.detail}"
    attempt = int(started["attempt"])
    log.info("run %s: attempt %s started on %s", run_id, attempt, device_name(device))
    # The server says how often it wants to hear from us (a third of its timeout): no setting
    # here can make it judge this worker lost. FITLENS_HEARTBEAT_INTERVAL may only be faster.
    served = (run.get("heartbeat") or {}).get("interval_s")
    if served:
        heartbeat_interval = min(heartbeat_interval, float(served))

    with ApiReporter(client, run_id, attempt, spec.epochs, heartbeat_interval) as reporter:
        try:
            try:
                result = train(
                    spec, [reporter], should_stop=reporter.should_stop, onset=reporter.onset
                )
            finally:
                reporter.close()  # every epoch posted (or the reason why not) before the end
        except RunGone as exc:  # cancelled (or taken over) while posting an epoch
            return f"run {run_id} stopped: {exc.detail}"
        except Exception as exc:
            log.exception("run %s failed", run_id)
            with contextlib.suppress(RunGone):
                client.status(run_id, status="failed", attempt=attempt, reason=failure_reason(exc))
            return f"run {run_id} failed: {exc}"
    if result.status == "cancelled":
        return f"run {run_id} stopped: {reporter.reason or 'cancelled'}"
    try:
        client.status(run_id, status="succeeded", attempt=attempt, epoch=result.epochs_run)
    except RunGone as exc:
        return f"run {run_id} ended, but: {exc.detail}"
    return f"run {run_id} {result.status} after {result.epochs_run} epochs"


@functools.cache
def code_version() -> dict[str, str]:
    """fitlens's version and git commit, for the record of every run."""
    info = {"fitlens": _package_version()}
    commit = get_settings().git_commit or _git_commit()
    if commit:
        info["git_commit"] = commit
    return info


def _package_version() -> str:
    try:
        return importlib.metadata.version("fitlens")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
