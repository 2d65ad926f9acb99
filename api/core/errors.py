"""Every error is JSON with a message that names the problem; nothing answers a bare 500."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.exceptions import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unauthorized

log = logging.getLogger("fitlens.api")

# A 422 lists at most this many errors, each cut to this many characters.
MAX_ERRORS = 20
MAX_MESSAGE = 300


def finite(obj: Any) -> Any:
    """Replace NaN / +-Infinity by the strings "NaN" / "Infinity" / "-Infinity"."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def json_bytes(content: Any) -> bytes:
    """Strict JSON always: non-finite floats become strings instead of a serialisation error."""
    try:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(
            finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    return text.encode("utf-8")


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": message}
    if errors is not None:
        body["errors"] = errors
    return SafeJSONResponse(status_code=status, content=body)


# How an error is answered: (status, message, field errors) -> response.
ErrorRenderer = Callable[[int, str, list[dict[str, str]] | None], JSONResponse]


class ErrorShapes:
    """Which shape a path's errors take: the API's own (ErrorBody) unless the path starts with a
    prefix that speaks another protocol (the MLflow tracking API's, api.mlflow.errors)."""

    def __init__(self, by_prefix: Mapping[str, ErrorRenderer] | None = None) -> None:
        self.by_prefix = dict(by_prefix or {})

    def for_path(self, path: str) -> ErrorRenderer:
        for prefix, render in self.by_prefix.items():
            if path == prefix or path.startswith(prefix + "/"):
                return render
        return error


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "spec", "optimizer", "lr") -> "spec.optimizer.lr"; keep query/path names.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _invalid(exc: Exception) -> tuple[str, list[dict[str, str]]]:
    assert isinstance(exc, RequestValidationError)
    found = exc.errors()
    errors = []
    for err in found[:MAX_ERRORS]:  # a bad body may hold one error per value
        field = _field(err.get("loc", ()))[:MAX_MESSAGE]
        msg = str(err.get("msg", "invalid"))[:MAX_MESSAGE]
        # Model-level checks already start with the field they are about ("loss: ...").
        errors.append({"field": field, "message": msg})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    if len(found) > MAX_ERRORS:
        summary += f" (and {len(found) - MAX_ERRORS} more errors)"
    return f"invalid request: {summary}", errors


# The stores' errors whose message is the whole answer.
_PLAIN: dict[type[Exception], int] = {NotFound: 404, Forbidden: 403, Conflict: 409}


def install_error_handlers(app: FastAPI, shapes: ErrorShapes | None = None) -> None:
    shapes = shapes or ErrorShapes()

    def render(
        request: Request, status: int, message: str, errors: list[dict[str, str]] | None = None
    ) -> JSONResponse:
        return shapes.for_path(request.url.path)(status, message, errors)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return render(request, 422, *_invalid(exc))

    for kind, status in _PLAIN.items():

        async def _plain(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return render(request, status, str(exc))

        app.add_exception_handler(kind, _plain)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        response = render(request, 401, str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(TooLarge)
    async def _too_large(request: Request, exc: TooLarge) -> JSONResponse:
        return render(request, 413, str(exc), [{"field": exc.field, "message": exc.message}])

    @app.exception_handler(Invalid)
    async def _bad_param(request: Request, exc: Invalid) -> JSONResponse:
        return render(request, 422, str(exc), [{"field": exc.field, "message": exc.message}])

    # Safety net for values the database cannot hold (a NUL byte in PostgreSQL text, an integer
    # past 64 bits): the input is at fault, so 422, and nothing was written.
    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        reason = str(exc.orig).splitlines()[0] if exc.orig else "value cannot be stored"
        return render(request, 422, f"invalid request: {reason}")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        return render(request, 422, f"invalid request: a number is out of range ({exc})")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        response = render(request, exc.status_code, message, getattr(exc, "errors", None))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    # The database is unreachable: say so (503, worth a retry), and stop judging runs lost on
    # silence the API could not hear (api.runs.delivery.Listening).
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_away(request: Request, exc: Exception) -> JSONResponse:
        listening = getattr(request.app.state, "listening", None)
        if listening is not None:
            listening.lost()
        log.warning("database unavailable: %s", str(exc).splitlines()[0][:200])
        response = render(request, 503, "the database is unavailable; try again shortly")
        response.headers["Retry-After"] = "2"
        return response

    # Anything else is answered 500 by api.core.http.RequestGuard, which keeps the connection.
