"""FastAPI dependencies every domain uses: the stores, settings, run ids, and ETag handling.

The app holds one ``api.store.TrackingStore``; each domain's views take the part they use by
its name and class (``Annotated[MetricStore, part("metrics")]``), so a route sees only the
methods of the stores it names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response

from api.core.cache import AnswerCache, answer
from api.core.config import Settings
from api.core.exceptions import Invalid


# Dependencies are async on purpose: FastAPI runs sync ones in the threadpool, a thread hop
# per dependency per request (measurable on a 304 poll).
async def get_store(request: Request) -> Any:
    return request.app.state.store


def part(name: str) -> Any:
    """A dependency on the app's store's part ``name`` (an attribute of TrackingStore)."""

    async def get_part(request: Request) -> Any:
        return getattr(request.app.state.store, name)

    return Depends(get_part)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


# OpenAPI groups, across domains: what workers post, and the read side.
WORKER_TAGS: list[str | Enum] = ["worker"]
READ_TAGS: list[str | Enum] = ["read"]

# Ids and steps are 64-bit in the database; anything larger is a 422, never an overflow.
MAX_ID = 2**62
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_answers(request: Request) -> AnswerCache | None:
    return request.app.state.answers


AnswersDep = Annotated[AnswerCache | None, Depends(get_answers)]


def etag(request: Request, identity: str, revisions: str) -> str:
    """Weak ETag from the exact request (path + query), which data it reads (``identity``:
    the run's or study's id, team and creation, so a body kept by this tag in the answer
    cache can never answer for another run that got the same id) and their revision(s)."""
    digest = hashlib.blake2b(
        f"{request.url.path}?{request.url.query}|{identity}|{revisions}".encode(), digest_size=12
    ).hexdigest()
    return f'W/"{digest}"'


def not_modified(request: Request, tag: str) -> Response | None:
    """A 304 when the client already holds this version, else None."""
    sent = request.headers.get("if-none-match")
    if sent and (sent.strip() == "*" or tag in [t.strip() for t in sent.split(",")]):
        return Response(status_code=304, headers={"ETag": tag})
    return None


async def conditional_answer(
    request: Request,
    answers: AnswerCache | None,
    identity: str,
    revisions: str,
    produce: Callable[[], Any],
) -> Response:
    """A read that polls cheaply: its ETag (``etag``), a 304 when the client holds that
    version, else the answer kept for the tag or ``produce()``'s (api.core.cache.answer)."""
    tag = etag(request, identity, revisions)
    if (held := not_modified(request, tag)) is not None:
        return held
    return await answer(answers, tag, produce)


# Workers send the attempt their "running" post got; data from any other attempt is refused.
AttemptQuery = Annotated[int | None, Query(ge=1, le=1_000_000, description="the worker's attempt")]


def csv_list(raw: str | None, field: str, limit: int = 100) -> list[str]:
    """A comma-separated query value as a list (empty entries dropped); at most ``limit``."""
    items = [k.strip() for k in (raw or "").split(",") if k.strip()]
    if len(items) > limit:
        raise Invalid(field, f"at most {limit} entries")
    return items


def run_ids(raw: str, field: str = "runs") -> list[int]:
    """Comma-separated run ids, each in range, at least one, duplicates dropped."""
    try:
        ids = [int(x) for x in csv_list(raw, field, limit=50)]
    except ValueError:
        raise Invalid(field, "comma-separated run ids, e.g. 1,2,3") from None
    if any(not 1 <= i <= MAX_ID for i in ids):
        raise Invalid(field, f"run ids are between 1 and {MAX_ID}")
    if not ids:
        raise Invalid(field, "name at least one run")
    return list(dict.fromkeys(ids))
