"""Getting runs to workers, and noticing lost ones: the database is the source of truth and the
queue a delivery mechanism, reconciled with it.

- A run is handed to the queue when it is submitted or retried. If that fails (the broker is
  away) the run stays ``queued`` and committed, with no hand-over time; the answer is still 201.
- Every ``reaper_interval`` seconds the API reconciles: a queued run that was never handed over,
  or was handed over more than ``redeliver_after`` seconds ago and not claimed by a worker (the
  broker lost the message, e.g. Redis restarted empty), is handed over again. A duplicate is
  harmless: the attempt rule lets exactly one worker start a run; the other exits at once.
- The same pass requeues runs whose worker went silent, but only once the API has been able
  to listen for a whole ``heartbeat_timeout``: after the API starts, or after the database
  comes back, silence that the API could not have heard is not held against a run.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi.concurrency import run_in_threadpool

from api.core.config import Settings
from api.core.lease import LeaseHolder
from api.runs.lifecycle import RunLifecycle
from api.runs.queue import Enqueuer
from trainer.spec import JobSpec

log = logging.getLogger("fitlens.api")


class Listening:
    """Since when this API process has been able to hear workers (monotonic seconds)."""

    def __init__(self) -> None:
        self.since: float | None = time.monotonic()

    def lost(self) -> None:
        self.since = None

    def heard(self) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.info("the database answers again; lost runs are judged from now on")

    def for_at_least(self, seconds: float) -> bool:
        return self.since is not None and time.monotonic() - self.since >= seconds


def hand_over(
    store: RunLifecycle, enqueuer: Enqueuer, run_id: int, spec: JobSpec, token: str
) -> bool:
    """Send a claimed run to the queue, behind its team's backlog (api.runs.queue); on failure,
    leave it due for the next reconciliation."""
    try:
        enqueuer.enqueue(run_id, spec, token, store.queue_priority(run_id))
    except Exception as exc:  # the broker is away: the run is committed, it will be sent later
        log.warning("run %s: not handed to the queue (%s); the reconciler will retry", run_id, exc)
        store.undo_delivery(run_id)
        return False
    return True


def deliver(store: RunLifecycle, enqueuer: Enqueuer, run_id: int, redeliver_after: float) -> bool:
    """Claim a due run and hand it over; False if it was not due or the hand-over failed."""
    claimed = store.claim_delivery(run_id, redeliver_after)
    if claimed is None:
        return False
    spec_json, token = claimed
    return hand_over(store, enqueuer, run_id, JobSpec.model_validate_json(spec_json), token)


def reconcile_once(
    store: RunLifecycle, enqueuer: Enqueuer, settings: Settings, listening: Listening
) -> None:
    if listening.for_at_least(settings.heartbeat_timeout):
        for run_id in store.reap_stale(settings.heartbeat_timeout, settings.max_attempts):
            log.info("run %s: its worker went silent; requeued", run_id)
    for run_id in store.due_deliveries(settings.redeliver_after):
        if deliver(store, enqueuer, run_id, settings.redeliver_after):
            log.info("run %s: handed to the queue by the reconciler", run_id)


async def reconcile_forever(
    store: RunLifecycle,
    enqueuer: Enqueuer,
    settings: Settings,
    listening: Listening,
    lease: LeaseHolder | None = None,
) -> None:
    """Every ``reaper_interval`` seconds, in the one API process that holds ``lease`` (others
    wait their turn); and safe even if two ran at once: each run is claimed or reaped under its
    own lock or conditional update."""
    while True:
        await asyncio.sleep(settings.reaper_interval)
        try:
            if lease is not None and not await run_in_threadpool(lease.hold):
                listening.heard()  # the database answered; another process does the work
                continue
            await run_in_threadpool(reconcile_once, store, enqueuer, settings, listening)
        except Exception:  # a database blip must not end the loop; it is not listening now
            log.exception("reconciliation pass failed")
            listening.lost()
        else:
            listening.heard()
