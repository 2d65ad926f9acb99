"""The end-of-run evaluation: posted once by the worker, read by anyone who may see the run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from api.core.deps import READ_TAGS, WORKER_TAGS, AttemptQuery, RunId, part
from api.core.http import GuardedRoute, before_body
from api.evaluation.schemas import EvaluationOut
from api.evaluation.service import EvaluationStore
from api.runs.deps import RunRead, RunReport
from api.runs.guard import run_role
from trainer.events import Evaluation as EvaluationBody

router = APIRouter(route_class=GuardedRoute)
StoreDep = Annotated[EvaluationStore, part("evaluations")]


@router.post(
    "/runs/{run_id}/evaluation", status_code=204, response_class=Response, tags=WORKER_TAGS
)
@before_body(run_role("worker"), max_items=300_000)  # weight heat-maps: up to 64x64 a layer
def post_evaluation(
    run_id: RunId,
    evaluation: EvaluationBody,
    store: StoreDep,
    _: RunReport,
    attempt: AttemptQuery = None,
) -> None:
    """Confusion matrix, per-class metrics, ROC curves, weight heat-maps, best epoch."""
    store.set_evaluation(run_id, evaluation, attempt)


@router.get("/runs/{run_id}/evaluation", response_model=EvaluationOut, tags=READ_TAGS)
def evaluation(run_id: RunId, store: StoreDep, _: RunRead) -> EvaluationOut:
    return EvaluationOut(run_id=run_id, evaluation=store.get_evaluation(run_id))
