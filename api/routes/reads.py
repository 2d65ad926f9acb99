"""The read side: curves, histograms, evaluation, events, CSV export, comparisons.

Shapes are ready for any plotting library: each series is ``steps`` (x) and ``values`` (y).
Non-finite values are the strings "NaN", "Infinity", "-Infinity" (strict JSON has no NaN).

Polled routes are async: the ETag check is one primary-key lookup, done on the event loop to
spare a thread hop per poll; the real read runs in the threadpool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.core.http import GuardedRoute
from api.deps import MAX_ID, RunId, SettingsDep, StoreDep, UserDep, etag, not_modified
from api.routes.runs import with_links
from api.schemas import (
    Comparison,
    Curves,
    EvaluationOut,
    EventOut,
    HistogramIndex,
    HistogramOverlay,
    HistogramSeries,
)
from api.store import Invalid

router = APIRouter(tags=["read"], route_class=GuardedRoute)

MaxPoints = Annotated[int, Query(ge=2, le=100_000, description="downsample above this")]


def _csv_list(raw: str | None, field: str, limit: int = 100) -> list[str]:
    items = [k.strip() for k in (raw or "").split(",") if k.strip()]
    if len(items) > limit:
        raise Invalid(field, f"at most {limit} entries")
    return items


def _ids(raw: str, field: str = "runs") -> list[int]:
    try:
        ids = [int(x) for x in _csv_list(raw, field, limit=50)]
    except ValueError:
        raise Invalid(field, "comma-separated run ids, e.g. 1,2,3") from None
    if any(not 1 <= i <= MAX_ID for i in ids):
        raise Invalid(field, f"run ids are between 1 and {MAX_ID}")
    if not ids:
        raise Invalid(field, "name at least one run")
    return list(dict.fromkeys(ids))


@router.get("/runs/{run_id}/curves", response_model=Curves, responses={304: {}, 404: {}})
async def curves(
    run_id: RunId,
    request: Request,
    response: Response,
    store: StoreDep,
    principal: UserDep,
    keys: Annotated[str | None, Query(description="comma-separated; default: every key")] = None,
    max_points: MaxPoints = 1000,
    start: Annotated[int | None, Query(ge=0, le=MAX_ID, description="first step (zoom)")] = None,
    end: Annotated[int | None, Query(ge=0, le=MAX_ID, description="last step (zoom)")] = None,
) -> Curves | Response:
    """Per key: steps and values. Longer series are downsampled keeping each bucket's minimum
    and maximum point, so a spike stays visible; ``start``/``end`` zoom to full resolution."""
    revision = store.authorize_run(principal, run_id, "read")
    tag = etag(request, str(revision))
    if (cached := not_modified(request, tag)) is not None:
        return cached
    response.headers["ETag"] = tag
    series = await run_in_threadpool(
        store.get_curves, run_id, _csv_list(keys, "keys") or None, max_points, start, end
    )
    return Curves(run_id=run_id, revision=revision, series=series)


@router.get(
    "/runs/{run_id}/histograms",
    response_model=HistogramSeries | HistogramIndex,
    responses={304: {}, 404: {}},
)
async def histograms(
    run_id: RunId,
    request: Request,
    response: Response,
    store: StoreDep,
    principal: UserDep,
    param: Annotated[str | None, Query(description="e.g. fc1.weight; omit to list params")] = None,
    steps: Annotated[str | None, Query(description="comma-separated steps; default all")] = None,
    shared_bins: Annotated[
        int | None,
        Query(ge=2, le=1024, description="re-bin every step onto the same N bins (a heat-map)"),
    ] = None,
) -> HistogramSeries | HistogramIndex | Response:
    tag = etag(request, str(store.authorize_run(principal, run_id, "read")))
    if (cached := not_modified(request, tag)) is not None:
        return cached
    response.headers["ETag"] = tag
    if param is None:
        return await run_in_threadpool(store.histogram_index, run_id)
    try:
        wanted = [int(s) for s in _csv_list(steps, "steps", limit=10_000)]
    except ValueError:
        raise Invalid("steps", "comma-separated integers") from None
    if any(not 0 <= s <= MAX_ID for s in wanted):
        raise Invalid("steps", f"steps are between 0 and {MAX_ID}")
    return await run_in_threadpool(store.get_histograms, run_id, param, wanted or None, shared_bins)


@router.get("/histograms/overlay", response_model=HistogramOverlay)
def histogram_overlay(
    store: StoreDep,
    principal: UserDep,
    runs: Annotated[str, Query(description="comma-separated run ids")],
    param: str,
    step: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="default: each run's last")
    ] = None,
    bins: Annotated[int, Query(ge=2, le=1024)] = 64,
) -> HistogramOverlay:
    """One parameter's histogram for several runs on shared bin edges (e.g. none vs L1 vs L2)."""
    ids = _ids(runs)
    for run_id in ids:
        store.authorize_run(principal, run_id, "read")
    return store.overlay_histograms(ids, param, step, bins)


@router.get("/runs/{run_id}/evaluation", response_model=EvaluationOut)
def evaluation(run_id: RunId, store: StoreDep, principal: UserDep) -> EvaluationOut:
    store.authorize_run(principal, run_id, "read")
    return EvaluationOut(run_id=run_id, evaluation=store.get_evaluation(run_id))


@router.get("/runs/{run_id}/events", response_model=list[EventOut])
def events(
    run_id: RunId,
    store: StoreDep,
    principal: UserDep,
    kind: Annotated[str | None, Query(description="lr_change or status")] = None,
) -> list[EventOut]:
    """What happened to the run: status transitions, learning-rate changes."""
    store.authorize_run(principal, run_id, "read")
    return store.get_events(run_id, kind)


@router.get(
    "/runs/{run_id}/metrics.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def metrics_csv(run_id: RunId, store: StoreDep, principal: UserDep) -> StreamingResponse:
    """Every point, long format: key,step,value,wall_time (non-finite: nan, inf, -inf).
    Streamed in blocks of 10,000 rows: memory stays flat whatever the run's length, and the
    stream costs one thread hop per block, not per row."""
    store.authorize_run(principal, run_id, "read")  # 404 before streaming starts

    def blocks() -> Iterator[str]:
        yield "key,step,value,wall_time\n"
        for batch in store.iter_metric_batches(run_id):
            # repr() writes inf and -inf as such; NaN is stored as NULL.
            yield "".join(
                [
                    f"{key},{step},{'nan' if value is None else repr(value)},{wall_time!r}\n"
                    for key, step, value, wall_time in batch
                ]
            )

    return StreamingResponse(
        blocks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'},
    )


@router.get("/compare", response_model=Comparison, responses={304: {}, 404: {}})
async def compare(
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    principal: UserDep,
    runs: Annotated[str, Query(description="comma-separated run ids")],
    keys: Annotated[str, Query(description="comma-separated metric keys")] = "val_loss,train_loss",
    max_points: MaxPoints = 1000,
) -> Comparison | Response:
    """Series of several runs side by side plus a summary row each: best epoch (lowest
    val_loss), min val loss, final gap, final val accuracy."""
    ids = _ids(runs)
    revisions = {i: store.authorize_run(principal, i, "read") for i in ids}
    tag = etag(request, ",".join(f"{i}:{revisions[i]}" for i in ids))
    if (cached := not_modified(request, tag)) is not None:
        return cached
    response.headers["ETag"] = tag
    key_list = _csv_list(keys, "keys")
    compared = await run_in_threadpool(store.compare, ids, key_list, max_points)
    for item in compared:
        item.run = with_links(item.run, settings.api_prefix)
    return Comparison(keys=key_list, runs=compared)
