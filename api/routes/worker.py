"""What workers post: status, metrics, histograms, evaluation and events. All idempotent."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.core.http import GuardedRoute
from api.deps import PrincipalDep, RunId, SettingsDep, StoreDep
from api.errors import error
from api.schemas import (
    METRIC_BATCH,
    EventBatch,
    HistogramBatch,
    IngestResult,
    StatusOut,
    StatusUpdate,
)
from trainer.events import Evaluation as EvaluationBody

# Each post is allowed to the run's own worker token, or to a user who may write to the run
# (scripts may log metrics themselves); viewers and other runs' workers are refused.
router = APIRouter(tags=["worker"], route_class=GuardedRoute)

# Workers send the attempt their "running" post got; data from any other attempt is refused.
AttemptQuery = Annotated[int | None, Query(ge=1, le=1_000_000, description="the worker's attempt")]


@router.post("/runs/{run_id}/status", response_model=StatusOut)
def post_status(
    run_id: RunId, update: StatusUpdate, store: StoreDep, principal: PrincipalDep
) -> StatusOut:
    """running (worker host, device) starts an attempt and answers its number; heartbeat
    (progress), succeeded, or failed (reason) name that attempt. A cancelled run answers 409:
    that is how a worker, heartbeating, learns to stop."""
    store.authorize_run(principal, run_id, "worker")
    run = store.set_status(run_id, update)
    return StatusOut(id=run.id, status=run.status, attempt=run.attempt, revision=run.revision)


@router.post(
    "/runs/{run_id}/metrics",
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
    principal: PrincipalDep,
    attempt: AttemptQuery = None,
) -> IngestResult | JSONResponse:
    """A batch of (key, step, value, wall_time) points (body: MetricBatch). Re-posting a
    (key, step) keeps one. NaN and +-Infinity are accepted as JSON tokens or strings."""
    store.authorize_run(principal, run_id, "worker")
    body = await request.body()
    # Every point names its "key": counting them costs a scan of the bytes, while parsing an
    # oversized batch first would cost hundreds of MB (bodies are bounded; their points too).
    if body.count(b'"key"') > settings.max_metric_batch:
        return error(413, f"points: more than {settings.max_metric_batch} points in one request")
    try:
        batch = METRIC_BATCH.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    points = batch["points"]
    if len(points) > settings.max_metric_batch:
        return error(
            413, f"points: {len(points)} points in one request; at most {settings.max_metric_batch}"
        )
    # The database work is blocking: keep it off the event loop.
    accepted, duplicates, revision = await run_in_threadpool(
        store.add_metrics, run_id, points, attempt
    )
    return IngestResult(accepted=accepted, duplicates=duplicates, revision=revision)


@router.post("/runs/{run_id}/histograms", response_model=IngestResult)
def post_histograms(
    run_id: RunId,
    batch: HistogramBatch,
    store: StoreDep,
    principal: PrincipalDep,
    attempt: AttemptQuery = None,
) -> IngestResult:
    store.authorize_run(principal, run_id, "worker")
    accepted, duplicates = store.add_histograms(run_id, batch.histograms, attempt)
    return IngestResult(
        accepted=accepted, duplicates=duplicates, revision=store.run_revision(run_id)
    )


@router.post("/runs/{run_id}/evaluation", status_code=204, response_class=Response)
def post_evaluation(
    run_id: RunId,
    evaluation: EvaluationBody,
    store: StoreDep,
    principal: PrincipalDep,
    attempt: AttemptQuery = None,
) -> None:
    """Confusion matrix, per-class metrics, ROC curves, weight heat-maps, best epoch."""
    store.authorize_run(principal, run_id, "worker")
    store.set_evaluation(run_id, evaluation, attempt)


@router.post("/runs/{run_id}/events", response_model=IngestResult)
def post_events(
    run_id: RunId,
    batch: EventBatch,
    store: StoreDep,
    principal: PrincipalDep,
    attempt: AttemptQuery = None,
) -> IngestResult:
    """Run events such as learning-rate changes; one per (kind, step)."""
    store.authorize_run(principal, run_id, "worker")
    added = store.add_events(run_id, batch.events, attempt)
    return IngestResult(
        accepted=added, duplicates=len(batch.events) - added, revision=store.run_revision(run_id)
    )
