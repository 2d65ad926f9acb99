"""The one translation of the trainer's events into the API's posts, and fitlens's trainer run
in your own process, logging to the server: pass ``FitlensCallback(run)`` (``run``: the
client's ``LoggedRun``) among ``trainer.loop.train``'s callbacks (the loop calls the hooks, as
Lightning's loop calls its callbacks). It lives with the worker, the server distribution's glue
of the trainer to the client; it needs torch."""

from __future__ import annotations

import base64
import time
from typing import Any

from fitlens.logger import LoggedRun
from fitlens.sender import RunSender
from trainer.callbacks import Callback
from trainer.events import EpochEnd, Evaluation, RunEnded, RunStarted, WeightSnapshot

# The test split's scores, kept as metrics at the evaluated epoch (the diagnosis's optimism).
TEST_METRICS = ("loss", "accuracy", "rmse", "mae")


class EventPoster(Callback):
    """Posts what the trainer emits through a run's sender: each epoch's metrics (step =
    epoch), its per-batch losses (train_loss_batch, step = batches since the start),
    histograms, learning-rate changes and per-class evaluations; the baseline, the final
    evaluations, the test split's scores, and the epoch a run stopped early or diverged."""

    def __init__(self, sender: RunSender) -> None:
        self.sender = sender

    def log(self, metrics: dict[str, float], step: int) -> None:
        now = time.time()
        self.sender.log_points([(k, step, v, now) for k, v in metrics.items()])

    def on_run_start(self, event: RunStarted) -> None:
        if event.baseline is not None:  # the diagnosis's bar for "not learning"
            self.events("baseline", [(0, event.baseline.model_dump())])
        sizes = {"n_train": event.n_train, "n_val": event.n_val}
        self.events("data", [(0, {**event.fingerprints, **sizes})])

    def on_epoch_end(self, event: EpochEnd) -> None:
        for step, value in event.batch_losses:  # first: the epoch's own step is the last
            self.log({"train_loss_batch": value}, step)
        self.log(event.metrics, event.epoch)
        if event.histograms:
            self.sender.post(
                "histograms", {"histograms": [h.model_dump() for h in event.histograms]}
            )
        if event.lr_changes:
            payloads = [
                (c.epoch, {"old_lr": c.old_lr, "new_lr": c.new_lr, "reason": c.reason})
                for c in event.lr_changes
            ]
            self.events("lr_change", payloads)
        for evaluation in event.evaluations:
            self.on_evaluation(evaluation)
        self.snapshots(event.snapshots)

    def snapshots(self, snapshots: list[WeightSnapshot]) -> None:
        for snapshot in snapshots:
            self.sender.post("weights", snapshot.model_dump(exclude={"event"}))

    def on_evaluation(self, event: Evaluation) -> None:
        self.sender.post("evaluation", event.model_dump(mode="json", exclude={"event"}))
        if event.split == "test":
            scores = {f"test_{k}": getattr(event, k) for k in TEST_METRICS}
            now = time.time()
            points = [(k, event.epoch, v, now) for k, v in scores.items() if v is not None]
            self.sender.log_points(points)

    def on_run_end(self, event: RunEnded) -> None:
        steps = {"steps": event.steps, "epochs": event.epochs_run}
        self.events("trained", [(event.epochs_run, steps)])
        self.snapshots(event.snapshots)
        for checkpoint in event.checkpoints:
            meta = {k: getattr(checkpoint, k) for k in ("epoch", "size", "sha256", "why")}
            data = base64.b64decode(checkpoint.data)
            self.sender.upload(f"checkpoints/{checkpoint.name}", data, meta)
        # The trainer stopped at the epoch it diverged, or where its stopping rule fired.
        if event.status == "diverged":
            self.events("diverged", [(event.epochs_run, {"reason": event.reason})])
        elif event.status == "early_stopped":
            payload = {"reason": event.reason, "restored_epoch": event.restored_epoch}
            self.events("early_stopped", [(event.epochs_run, payload)])

    def events(self, kind: str, payloads: list[tuple[int, dict[str, Any]]]) -> None:
        events = [{"kind": kind, "step": step, "payload": p} for step, p in payloads]
        self.sender.post("events", {"events": events})


class FitlensCallback(EventPoster):
    def __init__(self, run: LoggedRun) -> None:
        super().__init__(run.sender)
        self.run = run

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step)  # the run's progress follows the step
