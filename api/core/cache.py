"""Answers of polled reads, kept by their ETag, so a change is rendered once, not once per poller.

A read's ETag names the exact request (path and query) and the version of the data it returns
(api.core.deps.etag): two requests with the same ETag get the same bytes, which is what the ETag
already promises a client that revalidates. So when 50 pollers of one run see its ``val_loss``
curve change, the first renders it and the other 49 are served the stored bytes after their own
authorisation and validator check. Nothing here decides access: a view looks up the cache only
after the caller was found allowed to read the run.

Bounded in bytes (least recently used out first); bodies over an eighth of the budget are
not kept. One per API process.
"""

from __future__ import annotations

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
    body = cache.get(tag) if cache is not None else None
    if body is None:
        body = render(await run_in_threadpool(produce))
        if cache is not None:
            cache.put(tag, body)
    return Response(content=body, media_type="application/json", headers={"ETag": tag})
