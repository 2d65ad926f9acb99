"""Answers of polled reads, kept by their ETag, so a change is rendered once, not once per poller.

A read's ETag names the exact request (path and query) and the version of the data it returns
(api.core.deps.etag): two requests with the same ETag get the same bytes, which is what the ETag
already promises a client that revalidates. So when 50 pollers of one run see its ``val_loss``
curve change, the first renders it and the other 49 are served the stored bytes after their own
authorisation and validator check. Nothing here decides access: a view looks up the cache only
after the caller was found allowed to read the run.

Bounded in bytes (least recently used out first); bodies over an eighth of the budget are
not kept. One per API process. A read that misses while the same answer is being rendered
waits for that one instead of rendering it again: when a run's curve changes, its 50 pollers
arrive within a few milliseconds of each other, and all of them used to miss.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from api.core.errors import json_bytes


class AnswerCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_entry = max_bytes // 8
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        # Answers being rendered, by ETag; touched only on the event loop.
        self.rendering: dict[str, asyncio.Future[bytes | None]] = {}

    def get(self, tag: str) -> bytes | None:
        with self._lock:
            body = self._bodies.get(tag)
            if body is None:
                self.misses += 1
                return None
            self._bodies.move_to_end(tag)
            self.hits += 1
            return body

    def put(self, tag: str, body: bytes) -> None:
        if len(body) > self.max_entry:
            return
        with self._lock:
            old = self._bodies.pop(tag, None)
            self._size += len(body) - (len(old) if old is not None else 0)
            self._bodies[tag] = body
            while self._size > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped)


def render(value: Any) -> bytes:
    """A response model as FastAPI would send it (by alias; non-finite floats as strings)."""
    if isinstance(value, BaseModel):
        if value.model_config.get("ser_json_inf_nan") == "strings":
            # Its fields write NaN/Infinity as strings themselves: pydantic's serializer in one
            # pass, several times faster than a dict round trip (100,000-point curves).
            return value.__pydantic_serializer__.to_json(value, by_alias=True)
        value = value.model_dump(mode="json", by_alias=True)
    return json_bytes(value)


async def answer(cache: AnswerCache | None, tag: str, produce: Callable[[], Any]) -> Response:
    """The 200 for ``tag``: the stored bytes, else ``produce()`` (run in the threadpool: it
    reads the database) rendered and kept."""
    body: bytes | None = None
    if cache is None:
        body = render(await run_in_threadpool(produce))
    elif (body := cache.get(tag)) is None:
        if (pending := cache.rendering.get(tag)) is not None:
            body = await asyncio.shield(pending)  # None: that render failed; try our own
        if body is None:
            body = await _render_once(cache, tag, produce)
    return Response(content=body, media_type="application/json", headers={"ETag": tag})


async def _render_once(cache: AnswerCache, tag: str, produce: Callable[[], Any]) -> bytes:
    done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
    cache.rendering.setdefault(tag, done)
    try:
        body = render(await run_in_threadpool(produce))
    except BaseException:
        done.set_result(None)
        raise
    finally:
        if cache.rendering.get(tag) is done:
            del cache.rendering[tag]
    cache.put(tag, body)
    done.set_result(body)
    return body
