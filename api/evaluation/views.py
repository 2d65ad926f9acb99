"""The end-of-run evaluation: posted once by the worker, read by anyone who may see the run."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

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
    """One split's evaluation at one epoch: the final ones (confusion matrix, per-class
    metrics, ROC and precision-recall curves, mistakes, weight heat-maps, best epoch), or a
    per-class one made while training."""
    store.set_evaluation(run_id, evaluation, attempt)


@router.get("/runs/{run_id}/evaluation", response_model=EvaluationOut, tags=READ_TAGS)
def evaluation(
    run_id: RunId,
    store: StoreDep,
    _: RunRead,
    split: Annotated[Literal["train", "val", "test"], Query()] = "val",
    epoch: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> EvaluationOut:
    """The split's evaluation at ``epoch``; without one, its final evaluation (of the weights
    the run kept), else its latest. ``evaluated`` lists the epochs there are."""
    return EvaluationOut(
        run_id=run_id,
        evaluation=store.get_evaluation(run_id, split, epoch),
        evaluated=store.epochs(run_id),
    )
