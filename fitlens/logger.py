"""Logging a run you train in your own loop.

    with client.start_run(project="mnist", params={"lr": 1e-3}) as run:
        for epoch in range(1, 31):
            ...
            run.log({"train_loss": t, "val_loss": v}, step=epoch)
            run.log_histograms(model, step=epoch)

``log`` only appends to a bounded in-memory queue (microseconds; the training loop never
waits on the network unless the queue is full because the server has been away for long). A
background sender batches points into few posts, retries each post until the server answers
(the API's ingest is idempotent: a point posted twice is stored once), sends heartbeats, and
on leaving the block flushes everything, then ends the run: succeeded, or failed with the
exception that escaped. It beats at the pace the server asks (its answer to ``POST /runs``).

Tracking never kills training: if the server refuses or cannot be reached when the block
ends, the run warns once on stderr with its id and what was not sent, and does not raise into
your code; ``start_run(..., strict=True)`` raises instead.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter
from typing import Any

import httpx

from fitlens.errors import FitlensError
from fitlens.evaluation import evaluation_body
from fitlens.histograms import model_histograms
from fitlens.http import Http, error_of

BATCH = 10_000  # the API's most points per post
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


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
    ) -> None:
        self.client = client
        self.data = data
        self.id = int(data["id"])
        self.flush_every = flush_every
        # The server's pace (a third of its timeout), unless the caller asks for another.
        served = (data.get("heartbeat") or {}).get("interval_s")
        self.heartbeat_every = heartbeat_every or float(served or 10.0)
        self.retry_for = retry_for
        self.strict = strict
        self.unsent: Counter[str] = Counter()  # what a refused or lost post did not deliver
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._step = 0
        self._epochs = int(data["progress"]["epochs"])
        self.error: BaseException | None = None  # what stopped the sender, if anything did
        self._sender = threading.Thread(
            target=self._send, name=f"fitlens-run-{self.id}", daemon=True
        )
        self._sender.start()

    def __repr__(self) -> str:
        return f"<LoggedRun {self.id} {self.data['name']!r}>"

    def __enter__(self) -> LoggedRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        reason = None if exc is None else f"{kind.__name__ if kind else 'error'}: {exc}"
        self.finish(reason)

    # ---- what the loop calls ----

    def log(self, metrics: dict[str, float], step: int) -> None:
        """One value per key at ``step`` (an epoch, or a batch count)."""
        now = time.time()
        self._step = step
        self._queue.put(("points", [(k, step, v, now) for k, v in metrics.items()]))

    def log_histograms(
        self, model: Any, step: int, bins: int = 64, near_zero: float = 1e-3
    ) -> None:
        """Per-layer weight histograms of a torch module, binned as fitlens's trainer bins
        them (fitlens.histograms: numpy, each parameter copied to the host once)."""
        self.log_binned(model_histograms(model, step, bins, near_zero))

    def log_binned(self, histograms: list[dict[str, Any]]) -> None:
        """Histograms already binned, in the API's shape (param, step, edges, counts...)."""
        self._queue.put(("histograms", histograms))

    def set_params(self, params: dict[str, Any]) -> None:
        """Params known only once the run has started (merged into those it has)."""
        self._queue.put(("params", params))

    def log_event(self, kind: str, step: int | None, payload: dict[str, Any]) -> None:
        """E.g. ``log_event("lr_change", epoch, {"old_lr": a, "new_lr": b})``: marked on curves."""
        self._queue.put(("events", [{"kind": kind, "step": step, "payload": payload}]))

    def log_evaluation(
        self, y_true: Any, y_score: Any, labels: list[str] | None = None, epoch: int | None = None
    ) -> None:
        """The end-of-run evaluation from true classes and per-class scores (needs
        scikit-learn): confusion matrix, per-class precision/recall/F1, ROC curves with AUC."""
        body = evaluation_body(y_true, y_score, labels, epoch if epoch is not None else self._step)
        self.log_evaluation_body(body)

    def log_evaluation_body(self, body: dict[str, Any]) -> None:
        """An evaluation in the API's shape (what fitlens's trainer makes)."""
        self._queue.put(("evaluation", body))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything logged so far has reached the server."""
        done = threading.Event()
        self._queue.put(("flush", done))
        if not done.wait(timeout):
            raise TimeoutError("fitlens: logged data not sent yet")
        if self.error is not None and self.strict:
            raise self.error

    def finish(self, failure: str | None = None) -> None:
        """Send what is left, then end the run (``failure``: why it failed). What could not be
        sent is warned about once on stderr (raised with ``strict=True``)."""
        if self._sender.is_alive():
            self._queue.put(None)
            self._sender.join()
        status: dict[str, Any] = {"status": "failed" if failure else "succeeded", "attempt": 1}
        if failure:
            status["reason"] = failure[:2000]
        try:
            self._post("status", status)
        except Exception as exc:
            self.unsent["the run's end"] += 1
            self.error = self.error or exc
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

    # ---- the sender ----

    def _send(self) -> None:
        points: list[tuple[str, int, float, float]] = []
        last_beat = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self.flush_every)
            except queue.Empty:
                item = ("tick", None)
            try:
                if item is None or item[0] in ("flush", "tick") or len(points) >= BATCH:
                    self._send_points(points)
                if item is None:
                    return
                what, body = item
                if what == "points":
                    points.extend(body)
                    if len(points) >= BATCH:
                        self._send_points(points)
                elif what == "flush":
                    body.set()
                elif what != "tick":
                    self._send_points(points)  # in order: points first
                    key = {"histograms": "histograms", "events": "events", "params": "params"}.get(
                        what
                    )
                    self._post(what, {key: body} if key else body)
                if time.monotonic() - last_beat > self.heartbeat_every:
                    beat = {"status": "heartbeat", "attempt": 1, "epoch": min(self._step, 10**6)}
                    self._post("status", beat | ({"epochs": self._epochs} if self._epochs else {}))
                    last_beat = time.monotonic()
            except Exception as exc:  # a post refused for good: keep draining, report it
                self.error = exc
                self.unsent["points"] += len(points)
                if item is not None and item[0] not in ("points", "flush", "tick"):
                    self.unsent[item[0]] += 1
                points.clear()
                if item is not None and item[0] == "flush":
                    item[1].set()
                if item is None:
                    return

    def _send_points(self, points: list[tuple[str, int, float, float]]) -> None:
        while points:
            batch, points[:] = points[:BATCH], points[BATCH:]
            body = [{"key": k, "step": s, "value": v, "wall_time": w} for k, s, v, w in batch]
            try:
                self._post("metrics", {"points": body})
            except Exception:
                self.unsent["points"] += len(batch)  # the rest: counted by the sender
                raise

    def _post(self, what: str, body: dict[str, Any]) -> None:
        """One post, retried while the server is away or busy (the posts are idempotent)."""
        path = {"status": f"/runs/{self.id}/status", "params": f"/runs/{self.id}"}.get(
            what, f"/runs/{self.id}/{what}"
        )
        params = {} if what in ("status", "params") else {"attempt": 1}
        method = "PATCH" if what == "params" else "POST"
        deadline = time.monotonic() + self.retry_for
        wait = 0.2
        while True:
            try:
                response = self.client.http.request(
                    method, path, params=params, json=_json_safe(body)
                )
                if response.status_code < 400:
                    return
                if response.status_code not in RETRYABLE:
                    raise error_of(response)
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise FitlensError(
                    0, f"fitlens: the server did not take {what} for {self.retry_for:g}s"
                )
            time.sleep(wait)
            wait = min(wait * 2, 5.0)


def _json_safe(body: Any) -> Any:
    """NaN and infinities as the API's strings (strict JSON has no such numbers)."""
    import math

    if isinstance(body, float) and not math.isfinite(body):
        return "NaN" if math.isnan(body) else ("Infinity" if body > 0 else "-Infinity")
    if isinstance(body, dict):
        return {k: _json_safe(v) for k, v in body.items()}
    if isinstance(body, list | tuple):
        return [_json_safe(v) for v in body]
    return body
