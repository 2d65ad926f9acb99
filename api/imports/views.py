"""``POST /imports/tensorboard``: a TensorBoard event file, posted as it is, becomes a run."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.core.deps import SettingsDep, part
from api.core.exceptions import Invalid
from api.core.http import GuardedRoute
from api.imports.service import ImportStore
from api.people.deps import UserDep
from api.runs.schemas import RunOut, RunStart, with_links

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[ImportStore, part("imports")]
TAGS: list[str | Enum] = ["runs"]
METRIC_KEY = re.compile(r"^[A-Za-z0-9_./:-]{1,100}$")


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        tag, sep, key = pair.partition("=")
        if not sep or not tag or not METRIC_KEY.match(key):
            raise Invalid("map", f"TAG=KEY with KEY a metric key, not {pair[:100]!r}")
        mapping[tag] = key
    return mapping


@router.post(
    "/imports/tensorboard",
    status_code=201,
    response_model=RunOut,
    tags=TAGS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def import_tensorboard(
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    principal: UserDep,
    project: Annotated[str, Query(max_length=200)] = "tensorboard",
    team: Annotated[str | None, Query(max_length=100)] = None,
    name: Annotated[str, Query(min_length=1, max_length=200)] = "tensorboard",
    map_tags: Annotated[
        list[str] | None,
        Query(alias="map", description="TAG=KEY: store TAG as metric KEY; repeatable"),
    ] = None,
) -> RunOut:
    """An event file (``events.out.tfevents.*``) as the body: a client run of its scalars
    (metrics by step; tags mapped as ``fitlens import tensorboard`` maps them) and histograms,
    ended. 201 with the run; the same file posted again with the same project and name: 200
    with the run it made, nothing stored twice."""
    mapping = _mapping((map_tags or [])[:100])
    start = RunStart(project=project, team=team, name=name)
    body = await request.body()
    run, new = await run_in_threadpool(
        store.import_tensorboard,
        principal,
        body,
        start,
        mapping,
        settings.max_metric_batch,
        settings.max_metric_keys,
    )
    if not new:
        response.status_code = 200
    response.headers["Location"] = f"{settings.api_prefix}/runs/{run.id}"
    return with_links(run, settings.api_prefix, settings.heartbeat_timeout)
