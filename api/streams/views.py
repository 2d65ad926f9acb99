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

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.core.config import Settings
from api.core.deps import READ_TAGS, RunId, SettingsDep, part
from api.core.errors import error
from api.core.exceptions import Forbidden, NotFound, Unauthorized
from api.core.http import GuardedRoute, credential
from api.people.auth import Principal
from api.people.deps import PrincipalDep, UserDep
from api.people.tokens import TokenStore
from api.runs.deps import AccessDep
from api.streams.cursor import RunCursor, StudyCursor
from api.streams.hub import Cursor, Feed, Hub
from api.streams.reads import Batch, StreamReads
from api.studies.deps import StudiesDep, StudyId

log = logging.getLogger("fitlens.api")
router = APIRouter(route_class=GuardedRoute)
TAGS: list[str | Enum] = [*READ_TAGS, "streams"]
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
StoreDep = Annotated[StreamReads, part("streams")]
TokensDep = Annotated[TokenStore, part("people")]  # who a stream's credential is now


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
    request: Request,
    store: StoreDep,
    access: AccessDep,
    tokens: TokensDep,
    hub: HubDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    last_event_id: LastEventId = None,
) -> Response:
    """The run's news as it happens (a worker token may follow its own run). It ends when the
    run is deleted, or when its reader may no longer read it (checked every few seconds)."""
    grant = await run_in_threadpool(access.grant_run, principal, run_id, "read")
    allowed = _still_allowed(request, tokens, lambda who: access.grant_run(who, run_id, "read"))
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
        return Feed([run_id], start, since, single=True)

    key = f"run:{grant.identity}"
    place = _Place(principal, grant.team_id, allowed)
    return _open(hub, place, settings, key, make_feed, cursor, catch_up)


@router.get("/studies/{study_id}/stream", tags=TAGS, responses=SSE_RESPONSE)
async def study_stream(
    study_id: StudyId,
    request: Request,
    store: StoreDep,
    studies: StudiesDep,
    tokens: TokensDep,
    hub: HubDep,
    settings: SettingsDep,
    principal: UserDep,
    last_event_id: LastEventId = None,
) -> Response:
    """Each member's status, progress and verdict as they change; ``end`` when all are done.
    It ends too when its reader may no longer read the study (checked every few seconds)."""
    grant = await run_in_threadpool(studies.grant_study, principal, study_id, "read")
    allowed = _still_allowed(
        request, tokens, lambda who: studies.grant_study(who, study_id, "read")
    )
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

    place = _Place(principal, grant.team_id, allowed)
    return _open(hub, place, settings, f"study:{grant.identity}", make_feed, cursor, since)


@dataclass(frozen=True)
class _Place:
    """Who opens a stream, the team whose data it shows, and whether they still may."""

    principal: Principal
    team_id: int
    allowed: Callable[[], bool]


def _still_allowed(
    request: Request, tokens: TokenStore, check: Callable[[Principal], object]
) -> Callable[[], bool]:
    """Whether the stream's credential still works and still reaches what it follows (a
    revoked token, a signed-out session, a reader removed from the team: no). A database
    that is away is ridden out (yes)."""
    token = credential(request.scope)

    def allowed() -> bool:
        try:
            check(tokens.authenticate(token or ""))
        except (Unauthorized, Forbidden, NotFound):
            return False
        except Exception:  # the database is away: the stream waits with its reader
            log.warning("stream: could not re-check access", exc_info=True)
        return True

    return allowed


def _open(
    hub: Hub,
    place: _Place,
    settings: Settings,
    key: str,
    make_feed: Callable[[], Feed],
    cursor: Cursor,
    catch_up: Callable[[Any], Batch],
) -> Response:
    principal = place.principal
    who = f"user:{principal.user_id}" if principal.user_id else f"worker:{principal.run_id}"
    # Each bound: its counter's name, its size, and how the 429 names it.
    bounds = {
        who: (settings.max_streams_per_user, "you have", "FITLENS_MAX_STREAMS_PER_USER"),
        f"team:{place.team_id}": (
            settings.max_streams_per_team,
            "this team has",
            "FITLENS_MAX_STREAMS_PER_TEAM",
        ),
        "process": (settings.max_streams, "this server has", "FITLENS_MAX_STREAMS"),
    }
    full = hub.acquire({owner: limit for owner, (limit, _, _) in bounds.items()})
    if full is not None:
        limit, holder, setting = bounds[full]
        response = error(429, f"{holder} {limit} streams open already ({setting}): close one first")
        response.headers["Retry-After"] = "5"
        return response
    body = hub.stream(
        key,
        make_feed,
        cursor,
        catch_up,
        settings.stream_keepalive,
        place.allowed,
        settings.stream_recheck,
    )
    return EventStream(body, partial(hub.release, list(bounds)))


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
