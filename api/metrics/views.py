"""Metric points in (the ingest hot path), curves out (downsampled keeping every spike, or
page by page at full resolution), every point streamed as CSV or JSON lines, and comparisons
of several runs.

Shapes are ready for any plotting library: each series is ``steps`` (x) and ``values`` (y).
Non-finite values are the strings "NaN", "Infinity", "-Infinity" (strict JSON has no NaN).

Polled routes are async: the ETag check is a few indexed lookups, done on the event loop to
spare a thread hop per poll; the real read runs in the threadpool, once per change for all
the pollers of the same request (api.core.cache).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from api.core.deps import (
    READ_TAGS,
    WORKER_TAGS,
    AnswersDep,
    AttemptQuery,
    RunId,
    SettingsDep,
    conditional_answer,
    csv_list,
    part,
    run_ids,
)
from api.core.errors import error
from api.core.exceptions import Invalid
from api.core.http import GuardedRoute, count_values
from api.core.schemas import IngestResult
from api.metrics.blocks import MAX_STEP
from api.metrics.schemas import METRIC_BATCH, Comparison, Curves, series_problem
from api.metrics.service import MetricStore
from api.people.deps import UserDep
from api.runs.deps import AccessDep, RunRead, RunReport
from api.runs.schemas import with_links

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[MetricStore, part("metrics")]
MaxPoints = Annotated[int, Query(ge=2, le=100_000, description="downsample above this")]
KeysQuery = Annotated[str | None, Query(description="comma-separated; default: every key")]


@router.post(
    "/runs/{run_id}/metrics",
    tags=WORKER_TAGS,
    response_model=IngestResult,
    responses={409: {}, 413: {}, 404: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MetricBatch"}}
            },
        }
    },
)
async def post_metrics(
    run_id: RunId,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: RunReport,
    attempt: AttemptQuery = None,
) -> IngestResult | JSONResponse:
    """A batch of (key, step, value, wall_time) points, one by one or as a series' columns
    (body: MetricBatch). Re-posting a (key, step) keeps one. NaN and +-Infinity are accepted
    as JSON tokens or strings."""
    body = await request.body()
    # A point holds 5 JSON values at most, and at least 2 (as columns): counting them costs a
    # scan of the bytes, while parsing an oversized batch first would cost hundreds of MB, and
    # validating a million empty objects tens of seconds (bodies are bounded; their points too).
    limit = settings.max_metric_batch
    if body.count(b'"key"') > limit or count_values(body) > 5 * limit + 3:
        return _too_many(limit)
    try:
        batch = METRIC_BATCH.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    if "points" not in batch and "series" not in batch:
        raise Invalid("points", "a batch holds points, series or both")
    points, series = batch.get("points", []), batch.get("series", [])
    if len(points) + sum(len(s["steps"]) for s in series) > limit:
        return _too_many(limit)
    problem = series_problem(series)
    if problem is not None:
        raise Invalid(*problem)
    # The database work is blocking: keep it off the event loop.
    return await run_in_threadpool(
        store.add_metrics, run_id, points, attempt, settings.max_metric_keys, series
    )


def _too_many(limit: int) -> JSONResponse:
    return error(
        413,
        f"points: more than {limit} points in one request",
        [{"field": "points", "message": f"at most {limit} points"}],
    )


@router.get(
    "/runs/{run_id}/curves", response_model=Curves, responses={304: {}, 404: {}}, tags=READ_TAGS
)
async def curves(
    run_id: RunId,
    request: Request,
    store: StoreDep,
    answers: AnswersDep,
    grant: RunRead,
    keys: KeysQuery = None,
    max_points: MaxPoints = 1000,
    start: Annotated[int | None, Query(ge=0, le=MAX_STEP, description="first step (zoom)")] = None,
    end: Annotated[int | None, Query(ge=0, le=MAX_STEP, description="last step (zoom)")] = None,
    downsample: Annotated[
        bool, Query(description="false: full resolution, max_points a page, next_start")
    ] = True,
) -> Curves | Response:
    """Per key: steps and values. Longer series are downsampled keeping each bucket's minimum
    and maximum point, so a spike stays visible; ``start``/``end`` zoom to full resolution.
    With ``downsample=false`` every point is sent, ``max_points`` at most per key and page:
    a series that has more says where the next page starts (``next_start``, passed as
    ``start``), so a curve of any length reads at full resolution, page by page."""
    wanted = csv_list(keys, "keys") or None
    # The ETag follows the curves asked for, not the run: heartbeats and other keys' points
    # leave it alone (docs/api.md, "Polling"). The state it is made of says what to read.
    state = store.curves_state(run_id, wanted)
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        state.validator,
        lambda: Curves(
            run_id=run_id,
            revision=grant.revision,
            series=store.get_curves(run_id, wanted, max_points, start, end, downsample, state),
        ),
    )


def _export(
    store: MetricStore,
    run_id: int,
    keys: str | None,
    header: str,
    line: Callable[[str, int, float, float], str],
    media_type: str,
    suffix: str,
) -> StreamingResponse:
    """Every point (of ``keys``) in blocks of 10,000 rows: memory stays flat whatever the
    run's length, and the stream costs one thread hop per block, not per row."""
    wanted = csv_list(keys, "keys") or None

    def blocks() -> Iterator[str]:
        if header:
            yield header
        for batch in store.iter_metric_batches(run_id, wanted):
            yield "".join([line(*row) for row in batch])

    return StreamingResponse(
        blocks(),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.{suffix}"'},
    )


def _csv_line(key: str, step: int, value: float, wall_time: float) -> str:
    # repr() writes nan, inf and -inf as such.
    return f"{key},{step},{value!r},{wall_time!r}\n"


def _json_number(value: float) -> str:
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    return repr(value)


def _json_line(key: str, step: int, value: float, wall_time: float) -> str:
    # Keys match [A-Za-z0-9_./:-]+ (checked on ingest): nothing in them needs escaping.
    return (
        f'{{"key":"{key}","step":{step},"value":{_json_number(value)},"wall_time":{wall_time!r}}}\n'
    )


@router.get(
    "/runs/{run_id}/metrics.csv",
    response_class=StreamingResponse,
    tags=READ_TAGS,
    responses={200: {"content": {"text/csv": {}}}},
)
def metrics_csv(
    run_id: RunId, store: StoreDep, _: RunRead, keys: KeysQuery = None
) -> StreamingResponse:
    """Every point, long format: key,step,value,wall_time (non-finite: nan, inf, -inf),
    ordered by key and step, streamed (a run you cannot read is a 404 before it starts)."""
    header = "key,step,value,wall_time\n"
    return _export(store, run_id, keys, header, _csv_line, "text/csv", "csv")


@router.get(
    "/runs/{run_id}/metrics.jsonl",
    response_class=StreamingResponse,
    tags=READ_TAGS,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def metrics_jsonl(
    run_id: RunId, store: StoreDep, _: RunRead, keys: KeysQuery = None
) -> StreamingResponse:
    """Every point as JSON lines, {"key", "step", "value", "wall_time"} each (non-finite
    values as the strings "NaN", "Infinity", "-Infinity"), ordered by key and step, streamed."""
    return _export(store, run_id, keys, "", _json_line, "application/x-ndjson", "jsonl")


@router.get("/compare", response_model=Comparison, responses={304: {}, 404: {}}, tags=READ_TAGS)
async def compare(
    request: Request,
    store: StoreDep,
    access: AccessDep,
    answers: AnswersDep,
    settings: SettingsDep,
    principal: UserDep,
    runs: Annotated[str, Query(description="comma-separated run ids")],
    keys: Annotated[str, Query(description="comma-separated metric keys")] = "val_loss,train_loss",
    max_points: MaxPoints = 1000,
) -> Comparison | Response:
    """Series of several runs side by side plus a summary row each: best epoch (lowest
    val_loss), min val loss, final gap, final val accuracy."""
    ids = run_ids(runs)
    grants = [access.grant_run(principal, i, "read") for i in ids]
    key_list = csv_list(keys, "keys")

    def comparison() -> Comparison:
        compared = store.compare(ids, key_list, max_points)
        for item in compared:
            item.run = with_links(item.run, settings.api_prefix)
        return Comparison(keys=key_list, runs=compared)

    identity = ",".join(g.identity for g in grants)
    revisions = ",".join(str(g.revision) for g in grants)
    return await conditional_answer(request, answers, identity, revisions, comparison)
