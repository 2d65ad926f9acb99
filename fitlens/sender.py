"""The one way a run's data reaches the API, for a training worker and for your own loop alike.

``send`` makes one call, retried with capped exponential back-off while the API cannot be
reached or answers that it is busy or away (every ingest is idempotent: a point, event or
histogram posted twice is stored once, a repeated status post is a no-op). ``RunSender`` posts
one run attempt's data from a thread of its own, in the order it was logged: points batched
(at most ``BATCH`` a post), everything else as it comes, each post through ``send``; a second
thread sends heartbeats with the run's progress. Training never waits on the network, unless
the bounded queue is full because the API has been away for long.

A post refused with 401 or 409 means the run is gone for this sender (cancelled, finished,
taken over by another attempt, or deleted): ``gone`` is set and nothing more is sent. Any
other refusal is kept in ``error`` (and what it carried in ``unsent``) and the next posts are
still tried. NaN and infinities travel as the API's strings (strict JSON has no such numbers).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from fitlens.errors import FitlensError
from fitlens.http import error_of

log = logging.getLogger("fitlens")
BATCH = 10_000  # the API's most points per post
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
GONE = frozenset({401, 409})
MAX_WAIT = 10.0  # seconds: the back-off's cap
Point = tuple[str, int, float, float]  # key, step, value, wall time


@dataclass(frozen=True)
class Upload:
    data: bytes
    params: dict[str, Any]


def send(
    http: httpx.Client,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
    retry_for: float = 900.0,
    backoff: float = 0.2,
) -> Any:
    """The JSON answer of one call (None when empty), retried for ``retry_for`` seconds at most
    (0: one try); FitlensError for an answer it should not retry, or once time is up."""
    deadline = time.monotonic() + retry_for
    wait, tries = backoff, 0
    raw = body if isinstance(body, bytes) else None  # a file, as is (a checkpoint)
    content = None if body is None or raw is not None else json_safe(body)
    headers = {"content-type": "application/octet-stream"} if raw is not None else None
    while True:
        tries += 1
        try:
            response = http.request(
                method, path, params=params, json=content, content=raw, headers=headers
            )
        except httpx.HTTPError as exc:  # unreachable, timed out, the connection dropped...
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 400:
                return _answer(response)
            if response.status_code not in RETRYABLE:
                raise error_of(response)
            problem = str(error_of(response))
        if time.monotonic() + wait > deadline:
            raise FitlensError(
                0, f"{method} {path} failed {tries} times over {retry_for:g}s: {problem}"
            )
        log.warning("%s %s: %s; retrying in %.1fs", method, path, problem, wait)
        time.sleep(wait)
        wait = min(wait * 2, MAX_WAIT)


def _answer(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def json_safe(body: Any) -> Any:
    """``body`` with NaN and infinities as "NaN", "Infinity" and "-Infinity"."""
    if isinstance(body, float):
        return body if math.isfinite(body) else _token(body)
    if isinstance(body, dict):
        return {k: json_safe(v) for k, v in body.items()}
    if isinstance(body, list | tuple):
        return [json_safe(v) for v in body]
    return body


def as_columns(points: list[Point]) -> list[dict[str, Any]]:
    """Points as one series a key, in columns (the API's MetricSeriesIn): each key's points in
    the order logged: half the bytes of the same points one by one, and a seventh of the
    server's time to validate them."""
    by_key: dict[str, dict[str, Any]] = {}
    for key, step, value, wall in points:
        columns = by_key.get(key)
        if columns is None:
            columns = by_key[key] = {"key": key, "steps": [], "values": [], "wall_times": []}
        columns["steps"].append(step)
        columns["values"].append(value if math.isfinite(value) else _token(value))
        columns["wall_times"].append(wall)
    return list(by_key.values())


def _token(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


class RunSender:
    """One run attempt's posts (see the module's docstring). ``progress()`` answers what the
    heartbeats carry (e.g. epoch and epochs); ``close()`` sends what is left and stops."""

    def __init__(
        self,
        http: httpx.Client,
        run_id: int,
        attempt: int,
        progress: Callable[[], dict[str, Any]],
        heartbeat_every: float,
        queue_size: int = 100_000,
        flush_every: float = 0.25,
        retry_for: float = 900.0,
        backoff: float = 0.2,
    ) -> None:
        self.http, self.run_id, self.attempt = http, run_id, attempt
        self.progress, self.heartbeat_every = progress, heartbeat_every
        self.flush_every, self.retry_for, self.backoff = flush_every, retry_for, backoff
        self.error: FitlensError | None = None  # the last post refused for good
        self.gone = threading.Event()  # the run takes no more from this sender
        self.unsent: Counter[str] = Counter()  # what refused or lost posts did not deliver
        # The epoch the API's diagnosis found the onset of overfitting after, as the last
        # answer to a status post (an epoch's progress, a heartbeat) said; None: none yet.
        self.onset_epoch: int | None = None
        self.answers = 0  # status posts answered so far
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._closed = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, name=f"fitlens-send-{run_id}", daemon=True),
            threading.Thread(target=self._beat, name=f"fitlens-beat-{run_id}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ---- what the run logs ----

    def log_points(self, points: list[Point]) -> None:
        self._queue.put(("points", points))

    def post(self, what: str, body: Any) -> None:
        """``what``: "histograms", "events", "evaluation", "status" (bodies as the API takes
        them) or "params" (a client run's params, merged)."""
        self._queue.put((what, body))

    def upload(self, what: str, data: bytes, params: dict[str, Any]) -> None:
        """A file posted as is (``what``: e.g. "checkpoints/best"), ``params`` in the query."""
        self._queue.put((what, Upload(data, params)))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far was sent (or refused); False on timeout."""
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(timeout)

    def close(self) -> None:
        if not self._closed.is_set():
            self._queue.put(None)
            self._threads[0].join()
            self._closed.set()
            self._threads[1].join(timeout=5)

    # ---- the threads ----

    def _send(self) -> None:
        points: list[Point] = []
        while True:
            try:
                item = self._queue.get(timeout=self.flush_every)
            except queue.Empty:
                item = ("flush", None)
            what = "end" if item is None else item[0]
            if what == "points":
                points.extend(item[1] if item else ())
                if len(points) < BATCH:
                    continue
            self._post_points(points)  # before anything else: in the order logged
            if what == "flush" and item and item[1] is not None:
                item[1].set()
            elif what not in ("points", "flush", "end") and item is not None:
                self._post(what, item[1])
            if what == "end":
                return

    def _post_points(self, points: list[Point]) -> None:
        while points:
            batch, points[:] = points[:BATCH], points[BATCH:]
            self._post("metrics", {"series": as_columns(batch)}, count=len(batch))

    def _post(self, what: str, body: Any, count: int = 1) -> None:
        label = "points" if what == "metrics" else what
        if self.gone.is_set():
            self.unsent[label] += count
            return
        method, path, params = self._route(what)
        if isinstance(body, Upload):
            params, body = {**(params or {}), **body.params}, body.data
        try:
            answer = send(self.http, method, path, body, params, self.retry_for, self.backoff)
            if what == "status":
                self._heard(answer)
        except Exception as exc:  # refused for good; the sender goes on (it must never die)
            self._refused(exc if isinstance(exc, FitlensError) else FitlensError(0, repr(exc)))
            self.unsent[label] += count

    def _route(self, what: str) -> tuple[str, str, dict[str, Any] | None]:
        run = f"/runs/{self.run_id}"
        if what == "params":
            return "PATCH", run, None
        if what == "status":
            return "POST", f"{run}/status", None
        return "POST", f"{run}/{what}", {"attempt": self.attempt}

    def _heard(self, answer: Any) -> None:
        """Keep what a status post's answer says of the run's diagnosis."""
        self.answers += 1
        onset = answer.get("onset_epoch") if isinstance(answer, dict) else None
        if isinstance(onset, int) and not isinstance(onset, bool) and onset > 0:
            self.onset_epoch = onset

    def _refused(self, exc: FitlensError) -> None:
        self.error = exc
        if exc.status in GONE:
            self.gone.set()

    def _beat(self) -> None:
        while not self._closed.wait(self.heartbeat_every) and not self.gone.is_set():
            beat = {"status": "heartbeat", "attempt": self.attempt, **self.progress()}
            try:  # one try: the next beat is the retry
                self._heard(
                    send(self.http, "POST", f"/runs/{self.run_id}/status", beat, retry_for=0)
                )
            except FitlensError as exc:
                if exc.status in GONE:
                    self._refused(exc)
                else:  # the API may be away for a while; the next beat tries again
                    log.warning("heartbeat for run %s failed: %s", self.run_id, exc)
            except Exception as exc:  # whatever it was, the next beat tries again
                log.warning("heartbeat for run %s failed: %s", self.run_id, exc)
