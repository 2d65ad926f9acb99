"""Jobs in; runs listed, read, edited, cancelled, retried and deleted; what workers report of a
run's status; its events."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.core.deps import (
    MAX_ID,
    READ_TAGS,
    WORKER_TAGS,
    AnswersDep,
    AttemptQuery,
    RunId,
    SettingsDep,
    conditional_answer,
    part,
)
from api.core.http import GuardedRoute, before_body
from api.core.schemas import IngestResult, UtcDatetime
from api.people.deps import UserDep
from api.runs.budget import check_budget
from api.runs.delivery import deliver, hand_over
from api.runs.deps import (
    AccessDep,
    EnqueuerDep,
    LifecycleDep,
    RunOwner,
    RunRead,
    RunReadByWorker,
    RunReport,
    RunWrite,
)
from api.runs.filters import RunFilter
from api.runs.guard import run_role
from api.runs.models import RunStatus, Verdict
from api.runs.schemas import (
    EventBatch,
    EventOut,
    JobCreate,
    RunOut,
    RunPage,
    RunPatch,
    RunStart,
    StatusOut,
    StatusUpdate,
    with_links,
)
from api.runs.service import RunStore
from trainer.spec import JobSpec

StoreDep = Annotated[RunStore, part("runs")]
# Tagged per route: "runs", or "worker" for what workers post and "read" for the read side.
DEFAULT_SPEC = JobSpec().model_dump(mode="json")
router = APIRouter(route_class=GuardedRoute)
RUNS_TAGS: list[str | Enum] = ["runs"]


@router.post("/jobs", status_code=201, response_model=RunOut, tags=RUNS_TAGS)
def submit_job(
    job: JobCreate,
    store: StoreDep,
    access: AccessDep,
    lifecycle: LifecycleDep,
    enqueuer: EnqueuerDep,
    settings: SettingsDep,
    response: Response,
    principal: UserDep,
) -> RunOut:
    """Validate and store a job spec as a new queued run, then hand it to the queue."""
    check_budget(job.spec, settings)
    run, worker_token = store.create_run(
        job.spec,
        job.project,
        job.name,
        job.tags,
        job.notes,
        principal,
        job.team,
        settings.max_team_storage_mb,
    )
    # Committed first: if the broker is away the run stays queued and is sent later (201).
    if not hand_over(lifecycle, enqueuer, run.id, job.spec, worker_token):
        run = access.get_run(run.id)
    response.headers["Location"] = f"{settings.api_prefix}/runs/{run.id}"
    return with_links(run, settings.api_prefix, settings.heartbeat_timeout)


@router.get("/jobs/defaults", response_model=dict[str, Any], tags=RUNS_TAGS)
def spec_defaults(_: UserDep) -> dict[str, Any]:
    """The job spec with every field at its default: what a submitted spec leaves out."""
    return DEFAULT_SPEC


@router.post("/runs", status_code=201, response_model=RunOut, tags=RUNS_TAGS)
def start_run(
    body: RunStart, store: StoreDep, settings: SettingsDep, response: Response, principal: UserDep
) -> RunOut:
    """A run trained in your own loop (the Python client's ``start_run``): running at once,
    no spec and no worker; post its metrics, histograms, events and evaluation with
    ``attempt=1`` and end it with a status post, like a worker (heartbeats keep it alive)."""
    run = store.start_client_run(body, principal)
    response.headers["Location"] = f"{settings.api_prefix}/runs/{run.id}"
    return with_links(run, settings.api_prefix, settings.heartbeat_timeout)


@router.get("/runs", response_model=RunPage, tags=RUNS_TAGS)
def list_runs(
    store: StoreDep,
    settings: SettingsDep,
    principal: UserDep,
    project: str | None = None,
    status: Annotated[list[RunStatus] | None, Query()] = None,
    verdict: Annotated[
        list[Verdict] | None, Query(description="what the diagnosis says; repeat for several")
    ] = None,
    study: Annotated[int | None, Query(ge=1, le=MAX_ID, description="a study's members")] = None,
    tag: Annotated[
        list[str] | None, Query(description="repeat for several; all must match")
    ] = None,
    name: Annotated[str | None, Query(description="case-insensitive substring")] = None,
    q: Annotated[
        str | None,
        Query(description="free text: in the name, the notes or a tag", max_length=200),
    ] = None,
    created_after: UtcDatetime | None = None,
    created_before: UtcDatetime | None = None,
    spec_hash: str | None = None,
    created_by: Annotated[str | None, Query(description="user name of the submitter")] = None,
    where: Annotated[
        str | None,
        Query(
            description="comma-separated tests, all must hold: spec columns (dropout>0), "
            "dotted spec paths (optimizer.name=adam, model.hidden_dropout>=0.2) and results "
            "(val_accuracy>0.95, verdict=overfitting, onset_epoch<10)",
            max_length=1000,
        ),
    ] = None,
    sort: Annotated[
        str,
        Query(
            description="created_at, name, id or a diagnosis value (min_val_loss, best_epoch, "
            "onset_epoch, gap_at_best, final_gap, gap_slope, final_train_loss, final_val_loss, "
            "val_accuracy, epochs; runs without one last); '-' for descending"
        ),
    ] = ("-created_at"),
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunPage:
    filters = RunFilter(
        project=project,
        status=status or (),
        tags=tag or (),
        name=name,
        created_after=created_after,
        created_before=created_before,
        spec_hash=spec_hash,
        where=where,
        text=q,
        created_by=created_by,
        teams=principal.teams(),  # every project the caller's teams own, and nothing else
        verdicts=verdict or (),
        study=study,
    )
    runs, next_cursor = store.list_runs(filters, sort, cursor, limit)
    return RunPage(
        items=[with_links(r, settings.api_prefix) for r in runs], next_cursor=next_cursor
    )


@router.get("/runs/{run_id}", response_model=RunOut, responses={304: {}, 404: {}}, tags=RUNS_TAGS)
async def get_run(
    run_id: RunId,
    request: Request,
    access: AccessDep,
    answers: AnswersDep,
    settings: SettingsDep,
    grant: RunReadByWorker,
) -> RunOut | Response:
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        str(grant.revision),
        lambda: with_links(access.get_run(run_id), settings.api_prefix, settings.heartbeat_timeout),
    )


@router.patch("/runs/{run_id}", response_model=RunOut, tags=RUNS_TAGS)
@before_body(run_role("write"))
def edit_run(
    run_id: RunId, patch: RunPatch, store: StoreDep, settings: SettingsDep, _: RunWrite
) -> RunOut:
    return with_links(store.update_run(run_id, patch), settings.api_prefix)


@router.delete("/runs/{run_id}", status_code=204, response_class=Response, tags=RUNS_TAGS)
def delete_run(run_id: RunId, store: StoreDep, _: RunOwner) -> None:
    """Delete a run with all its data (owners of its team only): nothing stored stays for good.
    A worker still training it is stopped at its next post."""
    store.delete_run(run_id)


@router.post("/runs/{run_id}/retry", response_model=RunOut, tags=RUNS_TAGS)
def retry_run(
    run_id: RunId,
    access: AccessDep,
    lifecycle: LifecycleDep,
    enqueuer: EnqueuerDep,
    settings: SettingsDep,
    principal: UserDep,
    _: RunWrite,
) -> RunOut:
    """A failed or cancelled run, or one stuck in the queue, goes back to the queue as a new
    attempt, its partial data cleared; the run's events record who asked."""
    lifecycle.retry_run(run_id, principal.user_name or "?")
    deliver(lifecycle, enqueuer, run_id, settings.redeliver_after)
    return with_links(access.get_run(run_id), settings.api_prefix)


@router.post("/runs/{run_id}/cancel", response_model=RunOut, tags=RUNS_TAGS)
def cancel_run(run_id: RunId, store: StoreDep, settings: SettingsDep, _: RunWrite) -> RunOut:
    return with_links(store.cancel_run(run_id), settings.api_prefix)


# ---- what a run's worker reports (or a user who may write to the run) ----


@router.post("/runs/{run_id}/status", response_model=StatusOut, tags=WORKER_TAGS)
@before_body(run_role("worker"))
def post_status(
    run_id: RunId, update: StatusUpdate, lifecycle: LifecycleDep, _: RunReport
) -> StatusOut:
    """running (worker host, device) starts an attempt and answers its number; heartbeat
    (progress), succeeded, or failed (reason) name that attempt. A cancelled run answers 409:
    that is how a worker, heartbeating, learns to stop."""
    return lifecycle.set_status(run_id, update)


@router.post("/runs/{run_id}/events", response_model=IngestResult, tags=WORKER_TAGS)
@before_body(run_role("worker"))
def post_events(
    run_id: RunId,
    batch: EventBatch,
    store: StoreDep,
    _: RunReport,
    attempt: AttemptQuery = None,
) -> IngestResult:
    """Run events such as learning-rate changes; one per (kind, step)."""
    return store.add_events(run_id, batch.events, attempt)


@router.get("/runs/{run_id}/events", response_model=list[EventOut], tags=READ_TAGS)
def events(
    run_id: RunId,
    store: StoreDep,
    _: RunRead,
    kind: Annotated[str | None, Query(description="lr_change or status")] = None,
) -> list[EventOut]:
    """What happened to the run: status transitions, learning-rate changes."""
    return store.get_events(run_id, kind)
