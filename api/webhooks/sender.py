"""Sending the deliveries api.webhooks.service queued: from the one API process that holds the
"webhooks" lease, a few at a time, each signed, each connection made to the address that was
checked (so a name that resolves elsewhere a moment later is not followed), no redirect
followed, no answer body read, retried with doubling waits. None of it runs in a request:
a receiver that hangs or fails slows no ingest.

Signature: ``X-Fitlens-Signature: sha256=<hex>``, the HMAC-SHA256 with the webhook's secret of
``<X-Fitlens-Timestamp>.<body>``; a receiver recomputes it and compares in constant time, and
refuses old timestamps to stop replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastapi.concurrency import run_in_threadpool

from api.core.config import Settings
from api.core.db import utcnow
from api.core.lease import LeaseHolder
from api.webhooks.addresses import Refused, Target, resolve
from api.webhooks.service import Due, WebhookStore

log = logging.getLogger("fitlens.api")
AT_ONCE = 20  # deliveries tried together
MAX_WAIT = 3600.0  # seconds: the longest wait between tries


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def pinned(target: Target) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by the first checked address, the Host header, and
    the TLS server name to verify (https keeps checking the certificate of the name)."""
    parts = urlsplit(target.url)
    address = target.addresses[0]
    literal = f"[{address}]" if ":" in address else address
    url = urlunsplit((parts.scheme, f"{literal}:{target.port}", parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    return url, {"Host": parts.netloc}, extensions


async def try_once(
    http: httpx.AsyncClient, due: Due, allow_private: bool
) -> tuple[int | None, str | None]:
    """One try: (status code, None) for a 2xx, else (code or None, what went wrong)."""
    try:  # resolved again now, off the event loop: the address rule holds at every try
        target = await asyncio.to_thread(resolve, due.url, allow_private)
    except Refused as exc:
        return None, f"refused: {exc}"
    body = due.payload_json.encode()
    timestamp = str(int(time.time()))
    url, host, extensions = pinned(target)
    headers = {
        **host,
        "Content-Type": "application/json",
        "User-Agent": "fitlens-webhooks",
        "X-Fitlens-Event": due.event,
        "X-Fitlens-Delivery": str(due.id),
        "X-Fitlens-Timestamp": timestamp,
        "X-Fitlens-Signature": signature(due.secret, timestamp, body),
    }
    try:
        request = http.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions
        )
        response = await http.send(request, stream=True)  # the answer's body is never read
        await response.aclose()
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    code = response.status_code
    if 200 <= code < 300:
        return code, None
    if 300 <= code < 400:
        return code, f"answered {code}, a redirect (not followed)"
    return code, f"answered {code}"


def retry_in(tries: int, settings: Settings) -> float | None:
    """Seconds to the next try after ``tries`` failed ones; None when none is left."""
    if tries >= settings.webhook_max_tries:
        return None
    return min(settings.webhook_backoff * 2 ** (tries - 1), MAX_WAIT)


async def send_due(http: httpx.AsyncClient, store: WebhookStore, settings: Settings) -> int:
    """Try every due delivery once (AT_ONCE together); how many were tried."""
    hold = settings.webhook_timeout * 3 + 5  # a try's longest, and then some
    due = await run_in_threadpool(store.due, utcnow(), AT_ONCE, hold)

    async def one(d: Due) -> None:
        code, error = await try_once(http, d, settings.webhook_allow_private)
        wait = None if error is None else retry_in(d.tries + 1, settings)
        await run_in_threadpool(store.record, d.id, code, error, wait)
        if error is not None:
            log.info("webhook delivery %s (%s): %s", d.id, d.event, error)

    await asyncio.gather(*(one(d) for d in due))
    return len(due)


async def send_forever(
    store: WebhookStore, settings: Settings, lease: LeaseHolder | None = None
) -> None:
    timeout = httpx.Timeout(settings.webhook_timeout)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as http:
        while True:
            await asyncio.sleep(settings.webhook_interval)
            try:
                if lease is not None and not await run_in_threadpool(lease.hold):
                    continue
                while await send_due(http, store, settings) == AT_ONCE:
                    pass  # a backlog: on at once
            except Exception:  # a database blip must not end the loop
                log.exception("webhook pass failed")
