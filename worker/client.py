"""The worker's small HTTP client for the API, with retries and back-off.

Every write the worker makes is idempotent on the API side (metrics per (key, step), status
retries, events per (kind, step)), so retrying after a timeout or a 5xx is always safe.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from worker.config import WorkerSettings

log = logging.getLogger("fitlens.worker")
# One line per request at INFO would drown the worker's log; failures are logged here.
logging.getLogger("httpx").setLevel(logging.WARNING)
_RETRY_STATUS = {429, 502, 503, 504}


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class RunGone(ApiError):
    """Stop working on the run: 409, it was cancelled, finished, or handed to another attempt;
    or 401, the run's worker token no longer works (the run ended, or its attempt was reaped)."""


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

    def request(self, method: str, path: str, retry_for: float | None = None, **kwargs: Any) -> Any:
        """One call, retried with capped exponential back-off for ``retry_for`` seconds
        (default: the settings') while the API is unreachable or answers 5xx/429."""
        budget = self.settings.retry_for if retry_for is None else retry_for
        deadline = time.monotonic() + budget
        delay = self.settings.http_backoff
        tries = 0
        while True:
            tries += 1
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json() if response.content else None
                detail = _detail(response)
                if response.status_code in (401, 409):
                    raise RunGone(response.status_code, detail)
                if response.status_code < 500 and response.status_code not in _RETRY_STATUS:
                    raise ApiError(response.status_code, detail)
                problem = f"{response.status_code}: {detail}"
            if time.monotonic() + delay > deadline:
                raise ApiError(
                    0, f"{method} {path} failed {tries} times over {budget:g}s: {problem}"
                )
            log.warning("%s %s: %s; retrying in %.1fs", method, path, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    # ---- the calls the worker makes ----

    def get_run(self, run_id: int) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}")

    def status(self, run_id: int, retry_for: float | None = None, **body: Any) -> dict[str, Any]:
        return self.request(
            "POST",
            f"/runs/{run_id}/status",
            retry_for=retry_for,
            json={k: v for k, v in body.items() if v is not None},
        )

    def post(self, run_id: int, what: str, attempt: int, body: dict[str, Any]) -> Any:
        return self.request(
            "POST",
            f"/runs/{run_id}/{what}",
            params={"attempt": attempt},
            content=_json(body),
            headers={"content-type": "application/json"},
        )


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]


def _json(body: dict[str, Any]) -> bytes:
    # Python's json writes NaN / Infinity as bare tokens, which the API accepts; a diverged
    # run's metrics are reported as they are.
    import json

    return json.dumps(body).encode()
