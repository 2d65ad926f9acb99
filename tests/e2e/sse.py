"""Reading a stream in the tests: its events and its comments (frames: fitlens.sse)."""

from __future__ import annotations

import httpx

from fitlens.sse import Frame, frames


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
        for frame in frames(response.iter_lines()):
            if frame.comment is not None:
                comments.append(frame.comment)
                continue
            events.append(frame)
            if frame.event == "end" or (limit is not None and len(events) >= limit):
                break
    return events, comments
