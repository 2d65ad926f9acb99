"""The FastAPI application: every domain's routes and the shared plumbing, put together.

The one module that knows every domain (with api.store and api.models); the domains do not
import it, so their dependencies keep running one way: people <- runs <- metrics, histograms,
evaluation <- diagnosis (metrics') <- studies, and core under them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI

from api.checkpoints import views as checkpoints
from api.checkpoints.service import Budgets
from api.core import health
from api.core.artifacts import artifact_store
from api.core.cache import AnswerCache
from api.core.config import Settings, get_settings
from api.core.db import make_engine
from api.core.errors import ErrorShapes, SafeJSONResponse, install_error_handlers
from api.core.http import GuardedRoute, RequestGuard
from api.core.lease import LeaseHolder
from api.core.schemas import ErrorBody
from api.dashboard import views as dashboard
from api.diagnosis import views as diagnosis
from api.evaluation import views as evaluation
from api.histograms import views as histograms
from api.imports import views as imports
from api.metrics import views as metrics
from api.metrics.schemas import MetricBatch
from api.mlflow import views as mlflow
from api.mlflow.errors import ERROR_STATUSES as MLFLOW_ERROR_STATUSES
from api.mlflow.errors import PREFIX as MLFLOW_PREFIX
from api.mlflow.errors import MlflowErrorBody, mlflow_error
from api.mlflow.schemas import LogBatch
from api.people import session
from api.people import views as people
from api.runs import views as runs
from api.runs.delivery import Listening, reconcile_forever
from api.runs.queue import Enqueuer, make_enqueuer
from api.store import TrackingStore
from api.streams import views as streams
from api.streams.hub import Hub
from api.studies import views as studies
from api.webhooks import views as webhooks
from api.webhooks.sender import send_forever
from api.weights import views as weights

log = logging.getLogger("fitlens.api")


def create_app(settings: Settings | None = None, enqueuer: Enqueuer | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="fitlens",
        version="0.1.0",
        description="Experiment tracking that makes overfitting, and what fixes it, visible.",
        default_response_class=SafeJSONResponse,
        lifespan=_lifespan(settings),
        # FastAPI's docs pages load their scripts from a CDN: off unless asked for
        # (FITLENS_API_DOCS=true); /openapi.json is always served.
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.store = store = TrackingStore(
        engine,
        settings.default_project,
        settings.max_run_storage_mb << 20,
        artifact_store(settings),
        Budgets(settings.max_run_checkpoint_mb << 20, settings.max_team_checkpoint_mb << 20),
    )
    app.state.enqueuer = enqueuer or make_enqueuer(settings)
    app.state.listening = Listening()
    app.state.hub = Hub(store.streams.revisions, settings.stream_interval)
    mib = settings.answer_cache_mb
    app.state.answers = AnswerCache(mib << 20) if mib else None

    # MLflow's protocol answers errors in its own shape, so its client's handling works.
    shapes = ErrorShapes({MLFLOW_PREFIX: mlflow_error})
    app.add_middleware(
        RequestGuard,
        authenticate=store.people.authenticate,
        prefixes=(settings.api_prefix, MLFLOW_PREFIX),
        error_for=shapes.for_path,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
    )
    install_error_handlers(app, shapes)
    api = APIRouter(prefix=settings.api_prefix, route_class=GuardedRoute)
    domains = (
        runs,
        metrics,
        histograms,
        weights,
        checkpoints,
        evaluation,
        diagnosis,
        studies,
        streams,
        people,
        webhooks,
        imports,
    )
    for module in domains:
        api.include_router(module.router)
    api.include_router(session.router)
    app.include_router(api)
    mlflow.install(app)
    app.include_router(health.router)
    dashboard.mount(app)
    _document(app)
    return app


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What runs beside the server while it serves: the reconciler and reaper and the
    webhooks' sender (each under a database lease, so one process of several does it) and the
    streams' watcher."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = lease = None
        app.state.listening.since = time.monotonic()  # silence before now was not heard
        if settings.reaper_interval > 0:
            # Held for three passes: a holder that died is replaced within that.
            ttl = max(3 * settings.reaper_interval, 5.0)
            lease = LeaseHolder(app.state.store.engine, "reconciler", ttl=ttl)
            reaper = asyncio.create_task(
                reconcile_forever(
                    app.state.store.lifecycle,
                    app.state.enqueuer,
                    settings,
                    app.state.listening,
                    lease,
                )
            )
        watcher = asyncio.create_task(app.state.hub.watch_forever())
        hooks, hooks_lease = None, None
        if settings.webhook_interval > 0:
            ttl = max(3 * settings.webhook_interval, 3 * settings.webhook_timeout + 5, 5.0)
            hooks_lease = LeaseHolder(app.state.store.engine, "webhooks", ttl=ttl)
            hooks = asyncio.create_task(
                send_forever(app.state.store.webhooks, settings, hooks_lease)
            )
        yield
        for task in (reaper, watcher, hooks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for held in (lease, hooks_lease):
            if held is not None:
                with contextlib.suppress(Exception):  # the database may be gone: it expires
                    held.release()

    return lifespan


# Every error body is ErrorBody; these are the statuses an API operation can answer with one.
ERROR_STATUSES = {
    "400": "Bad request",
    "401": "Missing, unknown, revoked or expired token",
    "403": "Your role does not allow this",
    "404": "Not found, or not yours to see",
    "409": "Does not fit the current state",
    "413": "Body over the size limit, or too many points",
    "422": "Invalid input; `errors` names each field",
    "503": "The database is unavailable; retry (see Retry-After)",
}


def _document(app: FastAPI) -> None:
    """OpenAPI that tells the truth: every error is ErrorBody (not FastAPI's default 422 shape)
    and is documented, and routes that parse their body by hand (the metrics hot path) still
    get it documented."""
    from typing import Any

    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (MetricBatch, ErrorBody, MlflowErrorBody, LogBatch):
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            error_body = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
            }
            mlflow_body = {
                "application/json": {"schema": {"$ref": "#/components/schemas/MlflowErrorBody"}}
            }
            for path, operations in schema["paths"].items():
                if path.startswith(MLFLOW_PREFIX):  # MLflow's protocol: its errors, no 422
                    statuses, body = MLFLOW_ERROR_STATUSES, mlflow_body
                elif path.startswith(app.state.settings.api_prefix):
                    statuses, body = ERROR_STATUSES, error_body
                else:
                    continue
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.pop("422", None)
                    for status, description in statuses.items():
                        responses[status] = {"description": description, "content": body}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
