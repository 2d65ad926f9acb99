"""Weight histograms in (from workers), and out: the per-run index, one parameter's series
(optionally on shared bins, a heat-map over epochs) and overlays of several runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.core.deps import (
    MAX_ID,
    READ_TAGS,
    WORKER_TAGS,
    AnswersDep,
    AttemptQuery,
    RunId,
    conditional_answer,
    csv_list,
    part,
    run_ids,
)
from api.core.exceptions import Invalid
from api.core.http import GuardedRoute, before_body
from api.core.schemas import IngestResult
from api.histograms.schemas import (
    HistogramBatch,
    HistogramIndex,
    HistogramOverlay,
    HistogramSeries,
)
from api.histograms.service import HistogramStore
from api.people.deps import UserDep
from api.runs.deps import AccessDep, RunRead, RunReport
from api.runs.guard import run_role

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[HistogramStore, part("histograms")]


@router.post("/runs/{run_id}/histograms", response_model=IngestResult, tags=WORKER_TAGS)
@before_body(run_role("worker"), max_items=600_000)  # e.g. 34 tensors x 1,024 bins, 8 epochs
def post_histograms(
    run_id: RunId,
    batch: HistogramBatch,
    store: StoreDep,
    _: RunReport,
    attempt: AttemptQuery = None,
) -> IngestResult:
    return store.add_histograms(run_id, batch.histograms, attempt)


@router.get(
    "/runs/{run_id}/histograms",
    response_model=HistogramSeries | HistogramIndex,
    responses={304: {}, 404: {}},
    tags=READ_TAGS,
)
async def histograms(
    run_id: RunId,
    request: Request,
    store: StoreDep,
    answers: AnswersDep,
    grant: RunRead,
    param: Annotated[str | None, Query(description="e.g. fc1.weight; omit to list params")] = None,
    steps: Annotated[str | None, Query(description="comma-separated steps; default all")] = None,
    shared_bins: Annotated[
        int | None,
        Query(ge=2, le=1024, description="re-bin every step onto the same N bins (a heat-map)"),
    ] = None,
) -> HistogramSeries | HistogramIndex | Response:
    try:
        wanted = [int(s) for s in csv_list(steps, "steps", limit=10_000)]
    except ValueError:
        raise Invalid("steps", "comma-separated integers") from None
    if any(not 0 <= s <= MAX_ID for s in wanted):
        raise Invalid("steps", f"steps are between 0 and {MAX_ID}")

    def read() -> HistogramSeries | HistogramIndex:
        if param is None:
            return store.histogram_index(run_id)
        return store.get_histograms(run_id, param, wanted or None, shared_bins)

    # Not the run's revision: the histograms' own.
    revisions = store.histograms_validator(run_id, param)
    return await conditional_answer(request, answers, grant.identity, revisions, read)


@router.get("/histograms/overlay", response_model=HistogramOverlay, tags=READ_TAGS)
def histogram_overlay(
    store: StoreDep,
    access: AccessDep,
    principal: UserDep,
    runs: Annotated[str, Query(description="comma-separated run ids")],
    param: str,
    step: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="default: each run's last")
    ] = None,
    bins: Annotated[int, Query(ge=2, le=1024)] = 64,
) -> HistogramOverlay:
    """One parameter's histogram for several runs on shared bin edges (e.g. none vs L1 vs L2)."""
    ids = run_ids(runs)
    for run_id in ids:
        access.authorize_run(principal, run_id, "read")
    return store.overlay_histograms(ids, param, step, bins)
