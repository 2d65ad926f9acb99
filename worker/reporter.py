"""The trainer callback that reports a run attempt to the API through the client's sender.

Training never waits on the network: each epoch's data go to fitlens.sender.RunSender, which
posts them in order from a thread of its own, retrying while the API is away (``retry_for``),
and sends heartbeats beside them, so a long epoch does not look like a dead worker. Training
waits only when the sender's queue is full; the run ends only once it has drained. A 401 or
409 (the run was cancelled, or given to another attempt) makes ``should_stop`` true, which
the training loop polls, and the next epoch raise RunGone.
"""

from __future__ import annotations

import time
from typing import Any

from trainer.callbacks import Callback
from trainer.events import EpochEnd, Evaluation, RunEnded, RunStarted
from worker.client import ApiClient, RunGone


class ApiReporter(Callback):
    """Each epoch: metrics (one point per key at step = epoch), histograms, LR changes, and
    progress; at the end, the evaluation and, for a run that stopped early or diverged, the
    epoch it did. Every post names the attempt."""

    def __init__(
        self, client: ApiClient, run_id: int, attempt: int, epochs: int, heartbeat_every: float
    ) -> None:
        self.epoch, self.epochs = 0, epochs
        self.sender = client.sender(run_id, attempt, self.progress, heartbeat_every)

    def __enter__(self) -> ApiReporter:
        return self

    def __exit__(self, *_: object) -> None:
        self.sender.close()

    def progress(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "epochs": self.epochs}

    def should_stop(self) -> bool:
        return self.sender.gone.is_set()

    @property
    def reason(self) -> str:
        """Why the API stopped this attempt, once it has."""
        error = self.sender.error
        return error.message if error is not None and self.should_stop() else ""

    def close(self) -> None:
        """Send everything, then raise what stopped the sending, if anything did."""
        self.sender.close()
        self.check()

    def check(self) -> None:
        if self.should_stop():
            raise RunGone(self.reason)
        if self.sender.error is not None:
            raise self.sender.error

    def on_run_start(self, event: RunStarted) -> None:
        # What a model that learnt nothing scores: the diagnosis's bar for "not learning".
        if event.baseline is not None:
            self._events("baseline", [(0, event.baseline.model_dump())])

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.check()
        now = time.time()
        self.sender.log_points([(k, event.epoch, v, now) for k, v in event.metrics.items()])
        if event.histograms:
            self.sender.post(
                "histograms", {"histograms": [h.model_dump() for h in event.histograms]}
            )
        if event.lr_changes:
            payloads = [
                (c.epoch, {"old_lr": c.old_lr, "new_lr": c.new_lr, "reason": c.reason})
                for c in event.lr_changes
            ]
            self._events("lr_change", payloads)
        self.epoch = event.epoch
        # Progress right away (the heartbeats repeat it every interval).
        self.sender.post(
            "status", {"status": "heartbeat", "attempt": self.sender.attempt, **self.progress()}
        )

    def on_evaluation(self, event: Evaluation) -> None:
        self.sender.post("evaluation", event.model_dump(mode="json", exclude={"event"}))

    def on_run_end(self, event: RunEnded) -> None:
        # The trainer stopped at the epoch it diverged, or where its stopping rule fired.
        if event.status == "diverged":
            self._events("diverged", [(event.epochs_run, {"reason": event.reason})])
        elif event.status == "early_stopped":
            payload = {"reason": event.reason, "restored_epoch": event.restored_epoch}
            self._events("early_stopped", [(event.epochs_run, payload)])

    def _events(self, kind: str, payloads: list[tuple[int, dict[str, Any]]]) -> None:
        events = [{"kind": kind, "step": step, "payload": p} for step, p in payloads]
        self.sender.post("events", {"events": events})
