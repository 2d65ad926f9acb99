"""Logging a run you train in your own loop.

    with client.start_run(project="mnist", params={"lr": 1e-3}) as run:
        for epoch in range(1, 31):
            ...
            run.log({"train_loss": t, "val_loss": v}, step=epoch)
            run.log_histograms(model, step=epoch)

``log`` only appends to a bounded in-memory queue (microseconds; the training loop never
waits on the network unless the queue is full because the server has been away for long).
The sender a training worker uses too (fitlens.sender) batches points into few posts, retries
each post until the server answers (the API's ingest is idempotent: a point posted twice is
stored once) and sends heartbeats at the pace the server asks (its answer to ``POST /runs``);
on leaving the block everything is sent, then the run ends: succeeded, or failed with the
exception that escaped.

Tracking never kills training: if the server refuses or cannot be reached when the block
ends, the run warns once on stderr with its id and what was not sent, and does not raise into
your code; ``start_run(..., strict=True)`` raises instead.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, Literal

from fitlens.errors import FitlensError
from fitlens.evaluation import evaluation_body
from fitlens.histograms import model_histograms
from fitlens.http import Http
from fitlens.sender import RunSender, send


class LoggedRun:
    def __init__(
        self,
        client: Http,
        data: dict[str, Any],
        queue_size: int = 100_000,
        flush_every: float = 0.25,
        heartbeat_every: float | None = None,
        retry_for: float = 900.0,
        strict: bool = False,
        stop_on: Literal["onset"] | None = None,
    ) -> None:
        if stop_on not in (None, "onset"):
            raise ValueError(f"stop_on: {stop_on!r} is not 'onset' or None")
        self.stop_on = stop_on
        self.client = client
        self.data = data
        self.id = int(data["id"])
        self.retry_for = retry_for
        self.strict = strict
        self._step = 0
        self._epochs = int(data["progress"]["epochs"])
        # The server's pace (a third of its timeout), unless the caller asks for another.
        served = (data.get("heartbeat") or {}).get("interval_s")
        self.heartbeat_every = heartbeat_every or float(served or 10.0)
        self.sender = RunSender(
            client.http,
            self.id,
            attempt=1,  # a client run has one attempt: it is never requeued
            progress=self._progress,
            heartbeat_every=self.heartbeat_every,
            queue_size=queue_size,
            flush_every=flush_every,
            retry_for=retry_for,
        )
        self._ended: FitlensError | None = None  # the run's end post, if it was refused

    def __repr__(self) -> str:
        return f"<LoggedRun {self.id} {self.data['name']!r}>"

    @property
    def should_stop(self) -> bool:
        """True once your loop should end: the run was cancelled or taken from this process,
        or, started with ``stop_on="onset"``, the API's diagnosis found the onset of
        overfitting (the heartbeats' answers say so; ``onset_epoch`` says after which
        epoch). Keep the weights of that epoch, as early stopping does."""
        if self.sender.gone.is_set():
            return True
        return self.stop_on == "onset" and self.sender.onset_epoch is not None

    @property
    def onset_epoch(self) -> int | None:
        """The epoch the diagnosis found the onset of overfitting after, once it has."""
        return self.sender.onset_epoch

    def __enter__(self) -> LoggedRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        reason = None if exc is None else f"{kind.__name__ if kind else 'error'}: {exc}"
        self.finish(reason)

    @property
    def error(self) -> FitlensError | None:
        """What was refused for good, if anything was (the run's end included)."""
        return self._ended or self.sender.error

    @property
    def unsent(self) -> Counter[str]:
        """What refused or lost posts did not deliver, by kind."""
        return self.sender.unsent

    # ---- what the loop calls ----

    def log(self, metrics: dict[str, float], step: int) -> None:
        """One value per key at ``step`` (an epoch, or a batch count)."""
        now = time.time()
        self._step = step
        self.sender.log_points([(k, step, float(v), now) for k, v in metrics.items()])

    def log_histograms(
        self, model: Any, step: int, bins: int = 64, near_zero: float = 1e-3
    ) -> None:
        """Per-layer weight histograms of a torch module, binned as fitlens's trainer bins
        them (fitlens.histograms: numpy, each parameter copied to the host once)."""
        self.log_binned(model_histograms(model, step, bins, near_zero))

    def log_binned(self, histograms: list[dict[str, Any]]) -> None:
        """Histograms already binned, in the API's shape (param, step, edges, counts...)."""
        self.sender.post("histograms", {"histograms": histograms})

    def set_params(self, params: dict[str, Any]) -> None:
        """Params known only once the run has started (merged into those it has)."""
        self.sender.post("params", {"params": params})

    def log_event(self, kind: str, step: int | None, payload: dict[str, Any]) -> None:
        """E.g. ``log_event("lr_change", epoch, {"old_lr": a, "new_lr": b})``: marked on curves."""
        self.sender.post("events", {"events": [{"kind": kind, "step": step, "payload": payload}]})

    def log_evaluation(
        self, y_true: Any, y_score: Any, labels: list[str] | None = None, epoch: int | None = None
    ) -> None:
        """The end-of-run evaluation from true classes and per-class scores (needs
        scikit-learn): confusion matrix, per-class precision/recall/F1, ROC curves with AUC."""
        body = evaluation_body(y_true, y_score, labels, epoch if epoch is not None else self._step)
        self.log_evaluation_body(body)

    def log_evaluation_body(self, body: dict[str, Any]) -> None:
        """An evaluation in the API's shape (what fitlens's trainer makes)."""
        self.sender.post("evaluation", body)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged so far has reached the server."""
        if not self.sender.flush(timeout):
            raise TimeoutError("fitlens: logged data not sent yet")
        if self.error is not None and self.strict:
            raise self.error

    def finish(self, failure: str | None = None) -> None:
        """Send what is left, then end the run (``failure``: why it failed). What could not be
        sent is warned about once on stderr (raised with ``strict=True``)."""
        self.sender.close()
        status: dict[str, Any] = {"status": "failed" if failure else "succeeded", "attempt": 1}
        status |= self._progress()
        if failure:
            status["reason"] = failure[:2000]
        if not self.sender.gone.is_set():
            path = f"/runs/{self.id}/status"
            try:
                send(self.client.http, "POST", path, status, retry_for=self.retry_for)
            except Exception as exc:  # tracking never raises into training (unless strict)
                self._ended = exc if isinstance(exc, FitlensError) else FitlensError(0, repr(exc))
        if self._ended is not None or self.sender.gone.is_set():
            self.unsent["the run's end"] += 1
        if self.error is None:
            return
        if self.strict:
            raise self.error
        lost = ", ".join(f"{n} {what}" for what, n in self.unsent.items() if n) or "nothing"
        print(
            f"fitlens: run {self.id} was not fully recorded ({self.error}); not sent: {lost}. "
            "Training went on; pass strict=True to raise instead.",
            file=sys.stderr,
        )

    def _progress(self) -> dict[str, Any]:
        epochs = {"epochs": self._epochs} if self._epochs else {}
        return {"epoch": min(self._step, 10**6), **epochs}
