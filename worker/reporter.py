"""The trainer callback that posts a run's events to the API, the outbox that sends them, and
the heartbeat beside it.

Training never waits on the network: each epoch's posts go into a bounded outbox that one
thread sends, in order, retrying while the API is away (``retry_for``). Training waits only when
the outbox is full, and the run ends only once the outbox has drained.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from trainer.callbacks import Callback
from trainer.events import EpochEnd, Evaluation, RunEnded
from worker.client import ApiClient, RunGone

log = logging.getLogger("fitlens.worker")


class Heartbeat:
    """Posts a heartbeat with the latest progress every ``interval`` seconds, on its own thread,
    so a long epoch does not look like a dead worker. A 409 answer (the run was cancelled, or
    given to another attempt) sets ``stop_requested``, which the training loop polls."""

    def __init__(
        self, client: ApiClient, run_id: int, attempt: int, epochs: int, interval: float
    ) -> None:
        self.client, self.run_id, self.attempt = client, run_id, attempt
        self.epoch, self.epochs = 0, epochs
        self.interval = interval
        self.stop_requested = threading.Event()
        self.reason = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)

    def beat(self) -> None:
        try:
            self.client.status(
                self.run_id,
                retry_for=0,  # one try: the next beat is the retry
                status="heartbeat",
                attempt=self.attempt,
                epoch=self.epoch,
                epochs=self.epochs,
            )
        except RunGone as exc:
            self.stop(exc.detail)
        except Exception as exc:  # the API may be away for a while; the next beat tries again
            log.warning("heartbeat for run %s failed: %s", self.run_id, exc)

    def stop(self, reason: str) -> None:
        self.reason = reason
        self.stop_requested.set()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.beat()

    def should_stop(self) -> bool:
        return self.stop_requested.is_set()


class Outbox:
    """Posts for one run attempt, sent in order by a thread of their own. ``put`` waits only
    when ``size`` posts are already waiting; ``close`` waits for all of them to land and raises
    what stopped the sender, if anything did (RunGone: the run was cancelled or taken over)."""

    def __init__(self, client: ApiClient, run_id: int, attempt: int, size: int) -> None:
        self.client, self.run_id, self.attempt = client, run_id, attempt
        self._posts: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(maxsize=size)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._send, name=f"outbox-{run_id}", daemon=True)
        self._thread.start()

    def put(self, what: str, body: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self._posts.put((what, body))

    def close(self) -> None:
        self._posts.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _send(self) -> None:
        while (item := self._posts.get()) is not None:
            if self.error is not None:
                continue  # drain: nothing more is sent once a post has failed for good
            what, body = item
            try:
                self.client.post(self.run_id, what, self.attempt, body)
            except BaseException as exc:
                self.error = exc


class ApiReporter(Callback):
    """Each epoch: metrics (one point per key at step = epoch), histograms, LR changes, and
    progress for the heartbeat; at the end, the evaluation and, for a run that diverged, the
    epoch it did. Every post names the attempt and goes through the outbox."""

    def __init__(self, outbox: Outbox, heartbeat: Heartbeat) -> None:
        self.outbox, self.heartbeat = outbox, heartbeat

    def on_epoch_end(self, event: EpochEnd) -> None:
        now = time.time()
        points = [
            {"key": key, "step": event.epoch, "value": value, "wall_time": now}
            for key, value in event.metrics.items()
        ]
        self.outbox.put("metrics", {"points": points})
        if event.histograms:
            self.outbox.put(
                "histograms",
                {
                    "histograms": [
                        h.model_dump(exclude={"epoch"}) | {"step": h.epoch}
                        for h in event.histograms
                    ]
                },
            )
        if event.lr_changes:
            events = [
                {
                    "kind": "lr_change",
                    "step": c.epoch,
                    "payload": {"old_lr": c.old_lr, "new_lr": c.new_lr, "reason": c.reason},
                }
                for c in event.lr_changes
            ]
            self.outbox.put("events", {"events": events})
        self.heartbeat.epoch = event.epoch
        # Progress right away (the heartbeat thread repeats it every interval).
        progress = {"epoch": event.epoch, "epochs": self.heartbeat.epochs}
        self.outbox.put(
            "status", {"status": "heartbeat", "attempt": self.outbox.attempt, **progress}
        )

    def on_evaluation(self, event: Evaluation) -> None:
        self.outbox.put("evaluation", event.model_dump(mode="json", exclude={"event"}))

    def on_run_end(self, event: RunEnded) -> None:
        # The trainer stopped at the epoch it diverged, or where its stopping rule fired.
        if event.status == "diverged":
            stop = {
                "kind": "diverged",
                "step": event.epochs_run,
                "payload": {"reason": event.reason},
            }
            self.outbox.put("events", {"events": [stop]})
        elif event.status == "early_stopped":
            payload = {"reason": event.reason, "restored_epoch": event.restored_epoch}
            stop = {"kind": "early_stopped", "step": event.epochs_run, "payload": payload}
            self.outbox.put("events", {"events": [stop]})
