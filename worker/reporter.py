"""The trainer callback that reports a run attempt to the API through the client's sender.

Training never waits on the network: each epoch's data go to fitlens.sender.RunSender, which
posts them in order from a thread of its own, retrying while the API is away (``retry_for``),
and sends heartbeats beside them, so a long epoch does not look like a dead worker. Training
waits only when the sender's queue is full; the run ends only once it has drained. A 401 or
409 (the run was cancelled, or given to another attempt) makes ``should_stop`` true, which
the training loop polls, and the next epoch raise RunGone.
"""

from __future__ import annotations

from typing import Any

from trainer.events import EpochEnd
from worker.callback import EventPoster
from worker.client import ApiClient, RunGone


class ApiReporter(EventPoster):
    """What EventPoster posts, and each epoch's progress; every post names the attempt."""

    def __init__(
        self, client: ApiClient, run_id: int, attempt: int, epochs: int, heartbeat_every: float
    ) -> None:
        self.epoch, self.epochs = 0, epochs
        super().__init__(client.sender(run_id, attempt, self.progress, heartbeat_every))

    def __enter__(self) -> ApiReporter:
        return self

    def __exit__(self, *_: object) -> None:
        self.sender.close()

    def progress(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "epochs": self.epochs}

    def should_stop(self) -> bool:
        return self.sender.gone.is_set()

    def onset(self) -> int | None:
        """The onset of overfitting the API's diagnosis found, as its last answer said."""
        return self.sender.onset_epoch

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

    def on_epoch_end(self, event: EpochEnd) -> None:
        self.check()
        super().on_epoch_end(event)
        self.epoch = event.epoch
        # Progress right away (the heartbeats repeat it every interval).
        self.sender.post(
            "status", {"status": "heartbeat", "attempt": self.sender.attempt, **self.progress()}
        )
