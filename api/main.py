"""The FastAPI application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response

from api.core.config import Settings, get_settings
from api.db import make_engine
from api.errors import SafeJSONResponse, error, install_error_handlers
from api.queue import Enqueuer, make_enqueuer
from api.routes import health, reads, runs, worker
from api.schemas import MetricBatch
from api.store import TrackingStore


def create_app(settings: Settings | None = None, enqueuer: Enqueuer | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="fitlens",
        version="0.1.0",
        description="Experiment tracking that makes overfitting, and what fixes it, visible.",
        default_response_class=SafeJSONResponse,
    )
    engine = make_engine(settings.database_url)
    app.state.settings = settings
    app.state.store = TrackingStore(engine, settings.default_project)
    app.state.enqueuer = enqueuer or make_enqueuer(settings.queue)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return error(
                413,
                f"request body of {length} bytes is over the {settings.max_body_bytes}-byte limit",
            )
        return await call_next(request)

    install_error_handlers(app)
    api = APIRouter(prefix=settings.api_prefix)
    for module in (runs, worker, reads):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    _document_raw_bodies(app)
    return app


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
