"""fitlens's trainer, run in your own process, logging to the server: pass
``FitlensCallback(run)`` (``run``: the client's ``LoggedRun``) among ``trainer.loop.train``'s
callbacks (the loop calls the hooks, as Lightning's loop calls its callbacks). It lives with the
worker, the server distribution's glue of the trainer to the client; it needs torch."""

from __future__ import annotations

from fitlens.logger import LoggedRun
from trainer.callbacks import Callback
from trainer.events import EpochEnd, Evaluation, RunEnded, RunStarted


class FitlensCallback(Callback):
    def __init__(self, run: LoggedRun) -> None:
        self.run = run

    def on_run_start(self, event: RunStarted) -> None:
        if event.baseline is not None:  # the diagnosis's bar for "not learning"
            self.run.log_event("baseline", 0, event.baseline.model_dump())

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.run.log(event.metrics, step=event.epoch)
        if event.histograms:
            self.run.log_binned([h.model_dump() for h in event.histograms])
        for change in event.lr_changes:
            payload = {"old_lr": change.old_lr, "new_lr": change.new_lr, "reason": change.reason}
            self.run.log_event("lr_change", change.epoch, payload)

    def on_evaluation(self, event: Evaluation) -> None:
        self.run.log_evaluation_body(event.model_dump(mode="json", exclude={"event"}))

    def on_run_end(self, event: RunEnded) -> None:
        if event.status == "early_stopped":
            self.run.log_event("early_stopped", event.epochs_run, {"reason": event.reason})
