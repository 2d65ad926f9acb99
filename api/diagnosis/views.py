"""A run's diagnosis: the stored one, or one made with rules of the caller's own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.core.deps import READ_TAGS, AnswersDep, RunId, conditional_answer, part
from api.core.http import GuardedRoute
from api.diagnosis.rules import DiagnosisRules
from api.diagnosis.schemas import PerClassOut
from api.diagnosis.service import DiagnosisStore
from api.runs.deps import RunRead
from api.runs.schemas import DiagnosisOut

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[DiagnosisStore, part("diagnosis")]


@router.get(
    "/runs/{run_id}/diagnosis",
    response_model=DiagnosisOut,
    responses={304: {}, 404: {}},
    tags=READ_TAGS,
)
async def diagnosis(
    run_id: RunId,
    request: Request,
    store: StoreDep,
    answers: AnswersDep,
    grant: RunRead,
    patience: Annotated[int | None, Query(ge=1, le=1000, description="epochs a climb lasts")] = (
        None
    ),
    tolerance: Annotated[
        float | None, Query(ge=0, le=10, description="relative to the running minimum")
    ] = None,
    min_delta: Annotated[float | None, Query(ge=0, le=1e12)] = None,
    trend_window: Annotated[int | None, Query(ge=2, le=10_000)] = None,
    explode_factor: Annotated[float | None, Query(gt=1, le=1e12)] = None,
    underfit_fraction: Annotated[float | None, Query(gt=0, le=1)] = None,
    underfit_gap: Annotated[float | None, Query(ge=0, le=1e6)] = None,
    chance_level: Annotated[
        float | None, Query(gt=0, lt=1, description="binomial test level for not learning")
    ] = None,
    memorized_at: Annotated[
        float | None, Query(gt=0, le=1, description="training accuracy that is memorized")
    ] = None,
) -> DiagnosisOut | Response:
    """Best epoch, overfitting onset, gap and its trend, and a verdict with the numbers behind
    it. Any rule given in the query makes a fresh diagnosis with it (the others keep their
    defaults); without one, the stored diagnosis, kept up to date as the run trains."""
    given = {
        k: v
        for k, v in {
            "patience": patience,
            "tolerance": tolerance,
            "min_delta": min_delta,
            "trend_window": trend_window,
            "explode_factor": explode_factor,
            "underfit_fraction": underfit_fraction,
            "underfit_gap": underfit_gap,
            "chance_level": chance_level,
            "memorized_at": memorized_at,
        }.items()
        if v is not None
    }
    rules = DiagnosisRules(**given) if given else None  # type: ignore[arg-type]
    return await conditional_answer(
        request,
        answers,
        grant.identity,
        str(grant.revision),
        lambda: store.diagnosis(run_id, rules),
    )


@router.get(
    "/runs/{run_id}/per_class",
    response_model=PerClassOut,
    responses={304: {}, 404: {}},
    tags=READ_TAGS,
)
async def per_class(
    run_id: RunId, request: Request, store: StoreDep, answers: AnswersDep, grant: RunRead
) -> PerClassOut | Response:
    """Each class's validation minus training loss at each epoch evaluated per class (rows:
    classes, columns: epochs; a heat-map's data), with each class's onset of overfitting."""
    return await conditional_answer(
        request, answers, grant.identity, str(grant.revision), lambda: store.per_class(run_id)
    )
