"""A small Server-Sent Events reader for the tests (and bench): frames as they arrive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Frame:
    id: str | None
    event: str
    data: Any
    comment: str | None = None  # a ": keep-alive" line, when the frame is only that


def frames(response: httpx.Response) -> Iterator[Frame]:
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:  # a frame of only "retry:" is no event
                data = json.loads(fields["data"]) if "data" in fields else None
                yield Frame(fields.get("id"), fields.get("event", "message"), data)
            fields = {}
        elif line.startswith(":"):
            yield Frame(None, "", None, comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def read_stream(
    client: httpx.Client, path: str, last_id: str | None = None, limit: int | None = None
) -> tuple[list[Frame], list[str]]:
    """Events (until ``end`` or ``limit`` of them) and the comments seen meanwhile."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    events: list[Frame] = []
    comments: list[str] = []
    with client.stream("GET", path, headers=headers, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for frame in frames(response):
            if frame.comment is not None:
                comments.append(frame.comment)
                continue
            events.append(frame)
            if frame.event == "end" or (limit is not None and len(events) >= limit):
                break
    return events, comments
