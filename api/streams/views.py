"""Server-Sent Events: ``GET /runs/{id}/stream`` and ``GET /studies/{id}/stream``.

A run's stream sends ``status``, ``epoch`` (each new step's metrics), ``histograms`` (new
histograms stored), ``event`` (LR cuts, early stops, status changes...), ``evaluation``,
``diagnosis`` and, last, ``end``. A study's sends ``member`` (a member's status, progress and
verdict whenever it changes) and ``end``. Each event's id is the reader's cursor: reconnecting
with ``Last-Event-ID`` resumes with nothing lost or repeated; a stream already ended answers
204 (an EventSource then stops reconnecting). Without ``Last-Event-ID`` a run's stream starts
from the run as it is now (its status, diagnosis...; the data stored so far are read by REST),
a study's with every member's state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from enum import Enum
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.core.config import Settings
from api.core.deps import MAX_ID, READ_TAGS, RunId, SettingsDep, get_store
from api.core.errors import error
from api.core.http import GuardedRoute
from api.people.auth import Principal
from api.people.deps import PrincipalDep, UserDep
from api.streams.cursor import RunCursor, StudyCursor
from api.streams.hub import Cursor, Feed, Hub
from api.streams.reads import Batch, StreamReads

router = APIRouter(route_class=GuardedRoute)
TAGS: list[str | Enum] = [*READ_TAGS, "streams"]
StudyId = Annotated[int, Path(ge=1, le=MAX_ID)]
LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", max_length=20_000, description="resume after this event"),
]
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "the stream"},
    204: {"description": "this stream has ended: nothing more will come"},
    429: {"description": "too many streams open for this user"},
}


async def get_hub(request: Request) -> Hub:
    return request.app.state.hub


HubDep = Annotated[Hub, Depends(get_hub)]
StoreDep = Annotated[StreamReads, Depends(get_store)]


class EventStream(StreamingResponse):
    """An SSE response that gives its reader's place back however it ends (even if the client
    left before the first byte)."""

    def __init__(self, body: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.get("/runs/{run_id}/stream", tags=TAGS, responses=SSE_RESPONSE)
async def run_stream(
    run_id: RunId,
    store: StoreDep,
    hub: HubDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    last_event_id: LastEventId = None,
) -> Response:
    """The run's news as it happens (a worker token may follow its own run)."""
    await run_in_threadpool(store.authorize_run, principal, run_id, "read")
    since = partial(store.run_since, run_id)
    cursor: RunCursor
    if last_event_id:
        cursor = RunCursor.decode(last_event_id)
        catch_up: Callable[[Any], Batch] = since
        if await run_in_threadpool(_has_ended, since, cursor):
            return Response(status_code=204)
    else:
        cursor = RunCursor()
        catch_up = _first(partial(store.run_now, run_id), since)

    def make_feed() -> Feed:
        start = RunCursor()
        for event in store.run_now(run_id).events:
            start.accept(event)
        return Feed([run_id], start, since)

    return _open(hub, principal, settings, f"run:{run_id}", make_feed, cursor, catch_up)


@router.get("/studies/{study_id}/stream", tags=TAGS, responses=SSE_RESPONSE)
async def study_stream(
    study_id: StudyId,
    store: StoreDep,
    hub: HubDep,
    settings: SettingsDep,
    principal: UserDep,
    last_event_id: LastEventId = None,
) -> Response:
    """Each member's status, progress and verdict as they change; ``end`` when all are done."""
    await run_in_threadpool(store.authorize_study, principal, study_id, "read")
    members = await run_in_threadpool(store.study_member_ids, study_id)
    since = partial(store.study_since, members)
    fresh = StudyCursor([-1] * len(members))
    cursor = StudyCursor.decode(last_event_id, len(members)) if last_event_id else fresh.copy()
    if last_event_id:
        ended = await run_in_threadpool(_has_ended, since, cursor)
        if ended:
            return Response(status_code=204)

    def make_feed() -> Feed:
        start = fresh.copy()
        for event in since(start).events:
            start.accept(event)
        return Feed(members, start, since)

    return _open(hub, principal, settings, f"study:{study_id}", make_feed, cursor, since)


def _open(
    hub: Hub,
    principal: Principal,
    settings: Settings,
    key: str,
    make_feed: Callable[[], Feed],
    cursor: Cursor,
    catch_up: Callable[[Any], Batch],
) -> Response:
    owner = f"user:{principal.user_id}" if principal.user_id else f"worker:{principal.run_id}"
    if not hub.acquire(owner, settings.max_streams_per_user):
        response = error(
            429,
            f"you have {settings.max_streams_per_user} streams open already "
            "(FITLENS_MAX_STREAMS_PER_USER): close one first",
        )
        response.headers["Retry-After"] = "5"
        return response
    body = hub.stream(key, make_feed, cursor, catch_up, settings.stream_keepalive)
    return EventStream(body, partial(hub.release, owner))


def _has_ended(read: Callable[[Any], Batch], cursor: Cursor) -> bool:
    """Whether a reconnecting reader saw the end and nothing came since (a retry would)."""
    if not getattr(cursor, "ended", 0):
        return False
    probe = cursor.copy()
    return not any(probe.accept(e) for e in read(probe).events if not e.quiet)


def _first(first: Callable[[], Batch], then: Callable[[Any], Batch]) -> Callable[[Any], Batch]:
    """``first()`` on the first call, ``then(cursor)`` on every later one."""
    done = False

    def read(cursor: Any) -> Batch:
        nonlocal done
        if done:
            return then(cursor)
        done = True
        return first()

    return read
