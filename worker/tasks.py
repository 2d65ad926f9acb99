"""The training task: fetch the run, start an attempt, train with the API reporter, finish."""

from __future__ import annotations

import contextlib
import logging
import re
import socket

from pydantic import ValidationError

from trainer.loop import device_name, resolve_device, train
from trainer.spec import JobSpec
from worker.celery_app import app
from worker.client import ApiClient, RunGone
from worker.config import get_settings
from worker.contract import TASK_NAME
from worker.reporter import ApiReporter, Heartbeat

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
        )
    except RunGone as exc:
        return f"run {run_id} not started: {exc.detail}"
    attempt = int(started["attempt"])
    log.info("run %s: attempt %s started on %s", run_id, attempt, device_name(device))

    with Heartbeat(client, run_id, attempt, spec.epochs, heartbeat_interval) as heartbeat:
        try:
            result = train(
                spec,
                [ApiReporter(client, run_id, attempt, heartbeat)],
                should_stop=heartbeat.should_stop,
            )
        except RunGone as exc:  # cancelled (or taken over) while posting an epoch
            return f"run {run_id} stopped: {exc.detail}"
        except Exception as exc:
            log.exception("run %s failed", run_id)
            with contextlib.suppress(RunGone):
                client.status(run_id, status="failed", attempt=attempt, reason=failure_reason(exc))
            return f"run {run_id} failed: {exc}"
    if result.status == "cancelled":
        return f"run {run_id} stopped: {heartbeat.reason or 'cancelled'}"
    try:
        client.status(run_id, status="succeeded", attempt=attempt, epoch=result.epochs_run)
    except RunGone as exc:
        return f"run {run_id} ended, but: {exc.detail}"
    return f"run {run_id} {result.status} after {result.epochs_run} epochs"
