"""The FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.config import Settings, get_settings
from api.db import make_engine
from api.errors import SafeJSONResponse, error, install_error_handlers
from api.queue import Enqueuer, make_enqueuer
from api.routes import health, reads, runs, teams, worker
from api.schemas import MetricBatch
from api.store import TrackingStore
from trainer.spec import JobSpec

log = logging.getLogger("fitlens.api")


def create_app(settings: Settings | None = None, enqueuer: Enqueuer | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = None
        if settings.reaper_interval > 0:
            reaper = asyncio.create_task(
                reap_forever(app.state.store, app.state.enqueuer, settings)
            )
        yield
        if reaper is not None:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper

    app = FastAPI(
        title="fitlens",
        version="0.1.0",
        description="Experiment tracking that makes overfitting, and what fixes it, visible.",
        default_response_class=SafeJSONResponse,
        lifespan=lifespan,
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.store = TrackingStore(engine, settings.default_project)
    app.state.enqueuer = enqueuer or make_enqueuer(settings)

    app.add_middleware(TimingAndBodyLimit, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    api = APIRouter(prefix=settings.api_prefix)
    for module in (runs, worker, reads, teams):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    _document_raw_bodies(app)
    return app


async def reap_forever(store: TrackingStore, enqueuer: Enqueuer, settings: Settings) -> None:
    """Every reaper_interval seconds: runs whose worker went silent are requeued (and sent to
    the queue again) or failed; see TrackingStore.reap_stale. Safe with several API replicas:
    each run is re-checked under its lock."""
    while True:
        await asyncio.sleep(settings.reaper_interval)
        try:
            requeued = await run_in_threadpool(
                store.reap_stale, settings.heartbeat_timeout, settings.max_attempts
            )
            for run_id, spec_json, token in requeued:
                enqueuer.enqueue(run_id, JobSpec.model_validate_json(spec_json), token)
        except Exception:  # keep reaping; a database blip must not end the loop
            log.exception("reaper pass failed")


class TimingAndBodyLimit:
    """Pure ASGI middleware (cheaper than @app.middleware, which matters for 304 polls):
    refuses bodies over the limit by their Content-Length before anything parses them, and
    adds a Server-Timing header so clients can see time spent in the server itself."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                response = error(
                    413,
                    f"request body of {int(value)} bytes is over the "
                    f"{self.max_body_bytes}-byte limit",
                )
                await response(scope, receive, send)
                return

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                dur = 1000 * (time.perf_counter() - started)
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={dur:.3f}".encode()),
                ]
            await send(message)

        await self.app(scope, receive, timed_send)


def _document_raw_bodies(app: FastAPI) -> None:
    """Routes that parse their body by hand (the metrics hot path) still get it documented."""
    from typing import Any

    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            body = MetricBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["MetricBatch"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
