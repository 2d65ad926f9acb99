"""How POST /jobs hands a stored run to the workers: a small interface the worker package fills.

The API only needs ``enqueue(run_id, spec)``; with ``FITLENS_QUEUE=none`` runs stay queued until
something else picks them up.
"""

from __future__ import annotations

from typing import Protocol

from trainer.spec import JobSpec


class Enqueuer(Protocol):
    def enqueue(self, run_id: int, spec: JobSpec) -> None: ...


class NoQueue:
    """Stores nothing anywhere: the run stays ``queued`` (useful for API-only deployments)."""

    def enqueue(self, run_id: int, spec: JobSpec) -> None:
        return None


class RecordingQueue:
    """Keeps what was enqueued in memory, in order; for tests and embedding."""

    def __init__(self) -> None:
        self.items: list[tuple[int, JobSpec]] = []

    def enqueue(self, run_id: int, spec: JobSpec) -> None:
        self.items.append((run_id, spec))


def make_enqueuer(kind: str) -> Enqueuer:
    if kind == "none":
        return NoQueue()
    if kind == "memory":
        return RecordingQueue()
    raise ValueError(f"FITLENS_QUEUE: unknown queue {kind!r} (none, memory)")
