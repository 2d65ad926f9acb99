"""How POST /jobs hands a stored run to the workers: a small interface the worker package fills.

The API only needs ``enqueue(run_id, spec, worker_token, priority)``, which raises if the
hand-over failed (api.runs.delivery then leaves the run due for reconciliation); with
``FITLENS_QUEUE=none`` runs stay queued until something else picks them up.

Fair across teams: ``priority`` (0 first, 9 last) grows with the backlog the run's team already
has in the queue (api.runs.lifecycle.queue_priority), so one team's 500 queued runs do not
make another team's first run wait behind all of them (Redis serves lower numbers first;
kombu's filesystem broker, for one machine, ignores it).
"""

from __future__ import annotations

from typing import Protocol

from api.core.config import Settings
from trainer.spec import JobSpec


class Enqueuer(Protocol):
    # worker_token: the run's own credential, the only one its worker gets.
    def enqueue(self, run_id: int, spec: JobSpec, worker_token: str, priority: int = 0) -> None: ...


class NoQueue:
    """Stores nothing anywhere: the run stays ``queued`` (useful for API-only deployments)."""

    def enqueue(self, run_id: int, spec: JobSpec, worker_token: str, priority: int = 0) -> None:
        return None


class RecordingQueue:
    """Keeps what was enqueued in memory, in order; for tests and embedding."""

    def __init__(self) -> None:
        self.items: list[tuple[int, JobSpec]] = []
        self.tokens: dict[int, str] = {}  # run id -> its latest worker token
        self.priorities: dict[int, int] = {}  # run id -> its latest priority

    def enqueue(self, run_id: int, spec: JobSpec, worker_token: str, priority: int = 0) -> None:
        self.items.append((run_id, spec))
        self.tokens[run_id] = worker_token
        self.priorities[run_id] = priority


class CeleryQueue:
    """Sends the run id to the workers' broker, by task name: the API never imports the task
    code (or torch). Routed to the "gpu" or "cpu" queue by the spec's device."""

    def __init__(self, broker_url: str, broker_dir: str, auto_queue: str = "cpu") -> None:
        from celery import Celery

        from worker.contract import broker_transport_options

        self.app = Celery("fitlens-api", broker=broker_url)
        self.app.conf.broker_transport_options = broker_transport_options(broker_url, broker_dir)
        self.auto_queue = auto_queue

    def enqueue(self, run_id: int, spec: JobSpec, worker_token: str, priority: int = 0) -> None:
        from worker.contract import TASK_NAME, queue_for

        self.app.send_task(
            TASK_NAME,
            args=[run_id],
            kwargs={"token": worker_token},
            queue=queue_for(spec.device, self.auto_queue),
            kwargsrepr="{'token': '<hidden>'}",  # keeps the token out of worker logs
            priority=priority,
            # A broker that is away fails fast: the run is committed and will be sent again.
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_max": 0.5},
        )


def make_enqueuer(settings: Settings) -> Enqueuer:
    if settings.queue == "none":
        return NoQueue()
    if settings.queue == "memory":
        return RecordingQueue()
    if settings.queue == "celery":
        return CeleryQueue(settings.broker_url, settings.broker_dir, settings.auto_queue)
    raise ValueError(f"FITLENS_QUEUE: unknown queue {settings.queue!r} (none, memory, celery)")
