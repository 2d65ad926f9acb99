"""MLflow's tracking REST API (``/mlflow/api/2.0/mlflow/...``), the endpoints its client uses
to log: each answers what MLflow's server answers, in its JSON. Every other endpoint of
MLflow's API (artifacts, the model registry, logged models, traces) is NOT_IMPLEMENTED (501),
so a client that calls one is told so at once rather than left to believe it worked.
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.deps import SettingsDep, part
from api.core.errors import SafeJSONResponse
from api.core.exceptions import TooLarge
from api.core.http import GuardedRoute, count_values
from api.mlflow.errors import NOT_IMPLEMENTED, PREFIX, MlflowError, coded_error
from api.mlflow.experiments import ExperimentStore
from api.mlflow.schemas import (
    LOG_BATCH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    CreateExperiment,
    CreateRun,
    DeleteTag,
    LogMetric,
    LogParam,
    RunRef,
    SearchExperiments,
    SearchRuns,
    SetTag,
    UpdateRun,
)
from api.mlflow.service import MlflowStore
from api.people.deps import UserDep


class MlflowRoute(GuardedRoute):
    strict_query = False  # MLflow's clients send fields its server ignores (run_uuid, ...)


router = APIRouter(prefix=PREFIX, route_class=MlflowRoute)
V2 = "/api/2.0/mlflow"
TAGS: list[str | Enum] = ["mlflow"]
StoreDep = Annotated[MlflowStore, part("mlflow")]
ExperimentsDep = Annotated[ExperimentStore, part("experiments")]
IdQuery = Annotated[str, Query(max_length=100)]


def _answer(content: dict[str, Any]) -> SafeJSONResponse:
    """Answered as it is: NaN and infinities as MLflow writes them ("NaN", "Infinity"), where
    FastAPI's own encoding would write null."""
    return SafeJSONResponse(content)


def _answer_page(key: str, items: list[dict[str, Any]], token: str | None) -> SafeJSONResponse:
    return _answer({key: items, **({"next_page_token": token} if token else {})})


@router.post(f"{V2}/experiments/create", tags=TAGS)
def create_experiment(
    body: CreateExperiment, experiments: ExperimentsDep, principal: UserDep
) -> SafeJSONResponse:
    """A new project of your team (the tag ``fitlens.team`` names it if you write to several)."""
    return _answer({"experiment_id": experiments.create(principal, body)})


@router.get(f"{V2}/experiments/get", tags=TAGS)
def get_experiment(
    experiments: ExperimentsDep, principal: UserDep, experiment_id: IdQuery = ""
) -> SafeJSONResponse:
    return _answer({"experiment": experiments.get(principal, experiment_id)})


@router.get(f"{V2}/experiments/get-by-name", tags=TAGS)
def get_experiment_by_name(
    experiments: ExperimentsDep,
    principal: UserDep,
    experiment_name: Annotated[str, Query(max_length=200)] = "",
) -> SafeJSONResponse:
    return _answer({"experiment": experiments.get_by_name(principal, experiment_name)})


@router.post(f"{V2}/experiments/search", tags=TAGS)
def search_experiments(
    body: SearchExperiments, experiments: ExperimentsDep, principal: UserDep
) -> SafeJSONResponse:
    return _answer_page("experiments", *experiments.search(principal, body))


@router.post(f"{V2}/runs/create", tags=TAGS)
def create_run(body: CreateRun, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    """A client run, running at once: log to it, end it with runs/update."""
    return _answer({"run": store.create_run(principal, body)})


@router.post(f"{V2}/runs/update", tags=TAGS)
def update_run(body: UpdateRun, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    return _answer({"run_info": store.update_run(principal, body)})


@router.post(f"{V2}/runs/delete", tags=TAGS)
def delete_run(body: RunRef, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    store.delete_run(principal, body.run)
    return _answer({})


@router.get(f"{V2}/runs/get", tags=TAGS)
def get_run(
    store: StoreDep, principal: UserDep, run_id: IdQuery = "", run_uuid: IdQuery = ""
) -> SafeJSONResponse:
    return _answer({"run": store.run_json(principal, run_id or run_uuid)})


@router.post(f"{V2}/runs/search", tags=TAGS)
def search_runs(body: SearchRuns, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    return _answer_page("runs", *store.search(principal, body))


@router.post(
    f"{V2}/runs/log-batch",
    tags=TAGS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LogBatch"}}},
        }
    },
)
async def log_batch(
    request: Request, store: StoreDep, settings: SettingsDep, principal: UserDep
) -> SafeJSONResponse:
    """Params, tags and metric points at once (at most 1,000 points, 100 params, 100 tags).
    Validated straight from the bytes (LOG_BATCH: LogBatch's rules, without its models)."""
    body = await request.body()
    if count_values(body) > 10 * (MAX_METRICS_PER_BATCH + 2 * MAX_PARAMS_TAGS_PER_BATCH):
        raise TooLarge("body", "more JSON values than a log-batch of MLflow's limits holds")
    try:
        batch = LOG_BATCH.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    await run_in_threadpool(
        store.log_batch,
        principal,
        batch.get("run_id") or batch.get("run_uuid") or "",
        batch.get("metrics", []),
        batch.get("params", []),
        batch.get("tags", []),
        settings.max_metric_keys,
    )
    return _answer({})


@router.post(f"{V2}/runs/log-metric", tags=TAGS)
def log_metric(
    body: LogMetric, store: StoreDep, settings: SettingsDep, principal: UserDep
) -> SafeJSONResponse:
    metric = body.as_dict()
    store.log_batch(principal, body.run, metrics=[metric], max_keys=settings.max_metric_keys)
    return _answer({})


@router.post(f"{V2}/runs/log-parameter", tags=TAGS)
def log_param(body: LogParam, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    store.log_batch(principal, body.run, params=[body.as_dict()])
    return _answer({})


@router.post(f"{V2}/runs/set-tag", tags=TAGS)
def set_tag(body: SetTag, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    store.log_batch(principal, body.run, tags=[body.as_dict()])
    return _answer({})


@router.post(f"{V2}/runs/delete-tag", tags=TAGS)
def delete_tag(body: DeleteTag, store: StoreDep, principal: UserDep) -> SafeJSONResponse:
    store.delete_tag(principal, body.run, body.key)
    return _answer({})


@router.get(f"{V2}/metrics/get-history", tags=TAGS)
def metric_history(
    store: StoreDep,
    principal: UserDep,
    run_id: IdQuery = "",
    run_uuid: IdQuery = "",
    metric_key: Annotated[str, Query(max_length=250)] = "",
    max_results: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    page_token: Annotated[str, Query(max_length=30)] = "",
) -> SafeJSONResponse:
    """A metric's every point by step, 25,000 at most a page."""
    points, token = store.metric_history(
        principal, run_id or run_uuid, metric_key, max_results, page_token
    )
    return _answer_page("metrics", points, token)


# What is not answered: each named (README's table), anything else under MLflow's prefixes too.
UNANSWERED = {
    f"{V2}/runs/restore": "restore-run",
    f"{V2}/experiments/delete": "experiment-lifecycle",
    f"{V2}/experiments/restore": "experiment-lifecycle",
    f"{V2}/experiments/update": "experiment-lifecycle",
    f"{V2}/experiments/set-experiment-tag": "experiment-tags",
    f"{V2}/experiments/delete-experiment-tag": "experiment-tags",
    f"{V2}/metrics/get-history-bulk-interval": "get-history-bulk-interval",
    f"{V2}/runs/log-model": "logged-models",
    f"{V2}/runs/log-inputs": "logged-models",
    f"{V2}/runs/outputs": "logged-models",
}
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


@router.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
def not_implemented(path: str, request: Request, _: UserDep) -> None:
    full = f"/{path}"
    if f"{PREFIX}{full}" in _answered():
        raise StarletteHTTPException(405, f"{request.method} is not a method of {PREFIX}{full}")
    area = UNANSWERED.get(full) or next(
        (a for a in NOT_IMPLEMENTED if f"/{a}" in full or full.endswith(f"/{a}")), None
    )
    what = NOT_IMPLEMENTED[area] if area else "this endpoint of MLflow's API"
    raise MlflowError("NOT_IMPLEMENTED", f"{PREFIX}{full}: fitlens does not implement {what}", 501)


@functools.cache
def _answered() -> frozenset[str]:
    """The paths answered above (another method there is a 405, not a 501)."""
    return frozenset(
        r.path for r in router.routes if isinstance(r, APIRoute) and "{path" not in r.path
    )


def install(app: FastAPI) -> None:
    """The routes, and MlflowError answered in MLflow's shape."""

    async def _coded(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MlflowError)
        return coded_error(exc)

    app.add_exception_handler(MlflowError, _coded)
    app.include_router(router)
