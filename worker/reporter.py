"""The trainer callback that posts a run's events to the API, and the heartbeat beside it."""

from __future__ import annotations

import logging
import threading
import time

from trainer.callbacks import Callback
from trainer.events import EpochEnd, Evaluation
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
                status="heartbeat",
                attempt=self.attempt,
                epoch=self.epoch,
                epochs=self.epochs,
            )
        except RunGone as exc:
            self.reason = exc.detail
            self.stop_requested.set()
        except Exception as exc:  # the API may be briefly away; the next beat tries again
            log.warning("heartbeat for run %s failed: %s", self.run_id, exc)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.beat()

    def should_stop(self) -> bool:
        return self.stop_requested.is_set()


class ApiReporter(Callback):
    """Each epoch: metrics (one point per key at step = epoch), histograms, LR changes, and a
    heartbeat with progress; at the end, the evaluation. Every post names the attempt."""

    def __init__(self, client: ApiClient, run_id: int, attempt: int, heartbeat: Heartbeat) -> None:
        self.client, self.run_id, self.attempt, self.heartbeat = (
            client,
            run_id,
            attempt,
            heartbeat,
        )

    def on_epoch_end(self, event: EpochEnd) -> None:
        now = time.time()
        points = [
            {"key": key, "step": event.epoch, "value": value, "wall_time": now}
            for key, value in event.metrics.items()
        ]
        self.client.post(self.run_id, "metrics", self.attempt, {"points": points})
        if event.histograms:
            self.client.post(
                self.run_id,
                "histograms",
                self.attempt,
                {
                    "histograms": [
                        {
                            "param": h.param,
                            "step": h.epoch,
                            "edges": h.edges,
                            "counts": h.counts,
                            "numel": h.numel,
                            "mean": h.mean,
                            "std": h.std,
                            "min": h.min,
                            "max": h.max,
                            "l1": h.l1,
                            "l2": h.l2,
                            "near_zero": h.near_zero,
                        }
                        for h in event.histograms
                    ]
                },
            )
        if event.lr_changes:
            self.client.post(
                self.run_id,
                "events",
                self.attempt,
                {
                    "events": [
                        {
                            "kind": "lr_change",
                            "step": c.epoch,
                            "payload": {"old_lr": c.old_lr, "new_lr": c.new_lr, "reason": c.reason},
                        }
                        for c in event.lr_changes
                    ]
                },
            )
        self.heartbeat.epoch = event.epoch
        self.heartbeat.beat()

    def on_evaluation(self, event: Evaluation) -> None:
        self.client.post(
            self.run_id,
            "evaluation",
            self.attempt,
            event.model_dump(mode="json", exclude={"event"}),
        )
