"""The worker's door to the API: its run's worker token on one HTTP session, and the calls a
worker makes, sent the way every run's data is (fitlens.sender: capped back-off, idempotent
retries, non-finite numbers as the API's strings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx

from fitlens.errors import FitlensError
from fitlens.sender import GONE, RunSender, send
from worker.config import WorkerSettings

# One line per request at INFO would drown the worker's log; failures are logged by the sender.
logging.getLogger("httpx").setLevel(logging.WARNING)


class RunGone(Exception):
    """Stop working on the run: 409, it was cancelled, finished, or handed to another attempt;
    or 401, the run's worker token no longer works (the run ended, or its attempt was reaped)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ApiClient:
    def __init__(
        self,
        settings: WorkerSettings,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        # The run's own worker token: it can report on that run and nothing else.
        self.http = httpx.Client(
            base_url=settings.api_url.rstrip("/") + settings.api_prefix,
            timeout=settings.http_timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body: Any = None, retry_for: float | None = None) -> Any:
        """One call, retried for ``retry_for`` seconds (default: the settings') while the API
        is unreachable or busy; RunGone for 401 and 409, FitlensError for other refusals."""
        budget = self.settings.retry_for if retry_for is None else retry_for
        try:
            return send(self.http, method, path, body, None, budget, self.settings.http_backoff)
        except FitlensError as exc:
            if exc.status in GONE:
                raise RunGone(exc.message) from None
            raise

    def get_run(self, run_id: int) -> dict[str, Any]:
        return self.call("GET", f"/runs/{run_id}")

    def status(self, run_id: int, retry_for: float | None = None, **body: Any) -> dict[str, Any]:
        update = {k: v for k, v in body.items() if v is not None}
        return self.call("POST", f"/runs/{run_id}/status", update, retry_for)

    def sender(
        self,
        run_id: int,
        attempt: int,
        progress: Callable[[], dict[str, Any]],
        heartbeat_every: float,
    ) -> RunSender:
        """The sender of one attempt's data, in order, with heartbeats beside it."""
        return RunSender(
            self.http,
            run_id,
            attempt,
            progress,
            heartbeat_every,
            queue_size=self.settings.outbox_size,
            retry_for=self.settings.retry_for,
            backoff=self.settings.http_backoff,
        )
