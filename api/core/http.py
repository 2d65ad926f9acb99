"""The door every request passes, before any route or store sees it.

- ``RequestGuard`` (pure ASGI middleware, cheaper than ``@app.middleware`` on a 304 poll):
  authenticates a request that carries a body *before* a byte of the body is read, so an
  anonymous client cannot make the server buffer anything (401 at once); adds Server-Timing;
  and answers an unexpected error with a JSON 500 without re-raising it, which would make the
  server drop the keep-alive connection under the next request.
- It counts body bytes as they arrive and stops at ``max_body_bytes`` (413 in the error schema),
  whatever ``Content-Length`` claimed (a chunked body has none); a Content-Length over it is
  refused before anything is read. The body must also be whole within ``body_timeout`` (408).
- ``GuardedRoute`` parses JSON bodies with pydantic-core's parser instead of ``json.loads``: it
  refuses text that cannot be stored or sent back (lone UTF-16 surrogates such as ``"\\ud800"``)
  and absurd nesting (over 200 levels, where ``json.loads`` hits Python's recursion limit: a
  500), and is about twice as fast. Query strings and paths with NUL characters are refused too.
  Each refusal is a 422 naming the field, before anything is stored. Before parsing, a body's
  JSON values are counted (an upper bound, from its commas and brackets: one pass in C), and
  a body with more than the route allows is a 413: a few MB of ``{}`` or of unknown keys would
  otherwise cost seconds of validation and an error per value.
- A route marked ``before_body(check)`` runs ``check(request)`` before its body is read: a
  run's routes check the caller's role on the run there, so a viewer's or an outsider's body
  is never parsed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from http.cookies import SimpleCookie
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.exceptions import Forbidden, Unauthorized

log = logging.getLogger("fitlens.api")

PRINCIPAL_KEY = "fitlens.principal"  # where RequestGuard leaves who it authenticated


class FieldError(HTTPException):
    """An error raised before validation, naming the field (api.core.errors renders
    ``errors``, in the documented error schema)."""

    def __init__(self, status: int, field: str, message: str, prefix: str = "") -> None:
        super().__init__(status, f"{prefix}{field}: {message}")
        self.errors = [{"field": field, "message": message}]


class Rejected(FieldError):
    """A 422 raised before validation."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(422, field, message, "invalid request: ")


# JSON values one request body may hold, unless its route says otherwise (api.core.config).
MAX_BODY_ITEMS = 100_000


class TooLarge(FieldError):
    """A 413: a body over a bound."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(413, field, message)


def count_values(body: bytes) -> int:
    """An upper bound on the JSON values in ``body``: each value but the first follows a comma
    or opens an array or object (commas inside strings only make the bound looser)."""
    return body.count(b",") + body.count(b"[") + body.count(b"{") + 1


def parse_json_body(body: bytes, max_items: int = MAX_BODY_ITEMS) -> Any:
    if count_values(body) > max_items:
        raise TooLarge("body", f"more than {max_items:,} JSON values in one request")
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        reason = str(exc)
    if "recursion limit" in reason:
        raise Rejected("body", "nested more than 200 levels deep") from None
    field = _surrogate_field(body)
    if field is not None:
        raise Rejected(field, "text with a lone UTF-16 surrogate cannot be stored") from None
    raise Rejected("body", f"not valid JSON ({reason})") from None


def _surrogate_field(body: bytes) -> str | None:
    """The dotted path of the first string (or key) holding a lone surrogate, for the 422;
    None if there is none (the body is broken some other way)."""
    try:
        doc = json.loads(body)  # the standard library reads lone surrogates; find where
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and not _encodable(value):
            return path or "body"
        if isinstance(value, dict):
            for key, item in value.items():
                if not _encodable(key):
                    return path or "body"
                stack.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class GuardedRequest(Request):
    max_items = MAX_BODY_ITEMS

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_body(await self.body(), self.max_items)
        return self._json


BeforeBody = Callable[[Request], Awaitable[None]]


def before_body(check: BeforeBody, max_items: int = MAX_BODY_ITEMS) -> Callable[[Any], Any]:
    """Mark a route: ``check(request)`` runs before its body is read (it raises to refuse),
    and its body may hold ``max_items`` JSON values."""

    def mark(endpoint: Any) -> Any:
        endpoint.fitlens_before_body = check
        endpoint.fitlens_max_items = max_items
        return endpoint

    return mark


class GuardedRoute(APIRoute):
    """Every route of the API: JSON bodies through ``parse_json_body``; no NUL in the path or
    in a query parameter (PostgreSQL text cannot hold one; SQLite and PostgreSQL must agree);
    no query parameter the route does not take (unless ``strict_query`` is off: a protocol
    whose clients send what their servers ignore, MLflow's)."""

    strict_query = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        check: BeforeBody | None = getattr(self.endpoint, "fitlens_before_body", None)
        max_items: int = getattr(self.endpoint, "fitlens_max_items", MAX_BODY_ITEMS)
        # The query parameters this route reads, its dependencies' included: any other is a
        # 422 (a misspelt filter silently ignored answers a question nobody asked).
        known = query_names(self.dependant)

        async def guarded(request: Request) -> Response:
            if "\x00" in request.scope["path"]:
                raise Rejected("path", "must not contain NUL characters")
            if "%00" in request.scope["query_string"].decode("latin-1"):
                for key, value in request.query_params.multi_items():
                    if "\x00" in key or "\x00" in value:
                        raise Rejected(key.replace("\x00", ""), "must not contain NUL characters")
            # Only for a caller with a credential: an anonymous one is told 401 by the route.
            strict = self.strict_query and request.scope["query_string"]
            if strict and _has_credential(request.scope):
                unknown = sorted(set(request.query_params) - known)
                if unknown:
                    expected = ", ".join(sorted(known)) or "none"
                    raise Rejected(unknown[0], f"not a parameter of this endpoint ({expected})")
            if check is not None:
                await check(request)
            guarded_request = GuardedRequest(request.scope, request.receive)
            guarded_request.max_items = max_items
            return await handler(guarded_request)

        return guarded


def query_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter a route's endpoint and its dependencies take."""
    names: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        names.update(p.alias for p in current.query_params)
        todo.extend(current.dependencies)
    return frozenset(names)


def _has_credential(scope: Scope) -> bool:
    return any(
        name == b"authorization" or (name == b"cookie" and SESSION_COOKIE.encode() in value)
        for name, value in scope["headers"]
    )


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


# The browser's sign-in (POST /session): the token it was given lives in an HttpOnly,
# SameSite=Strict cookie that page scripts cannot read; writes made with it must also send the
# CSRF token (derived from it, handed to the page in a readable cookie) as a header.
SESSION_COOKIE = "fitlens_session"
CSRF_COOKIE = "fitlens_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_for(session_token: str) -> str:
    return hashlib.blake2b(f"csrf:{session_token}".encode(), digest_size=16).hexdigest()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def credential(scope: Scope) -> str | None:
    """The token a request acts with: its bearer token, else its session cookie; a write
    with the cookie but without the matching CSRF header is Forbidden."""
    token = _bearer(scope)
    if token is not None:
        return token
    headers = Headers(scope=scope)
    session = SimpleCookie(headers.get("cookie", "")).get(SESSION_COOKIE)
    if session is None or not session.value:
        return None
    if scope["method"] not in SAFE_METHODS and not hmac.compare_digest(
        headers.get(CSRF_HEADER, ""), csrf_for(session.value)
    ):
        raise Forbidden(f"a write signed in by cookie must send the {CSRF_HEADER} header")
    return session.value


class SlowBody(HTTPException):
    """A body that does not arrive in time: 408, in the error schema (api.core.errors)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")


# What every answer carries unless it sets its own (the dashboard does): nothing it returns may
# run as a page, be framed, or be sniffed into another type.
DEFAULT_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
]


class RequestGuard:
    """``prefixes``: the paths whose bodies need a token (the API's, the MLflow protocol's);
    ``error_for(path)``: how that path answers an error, (status, message, errors) -> Response
    (api.core.errors.ErrorShapes.for_path)."""

    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[str], Any],
        prefixes: tuple[str, ...],
        error_for: Callable[[str], Callable[[int, str, Any], Response]],
        max_body_bytes: int = 16 << 20,
        body_timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.prefixes = prefixes
        self.error_for = error_for
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        has_body = _has_body(scope)
        render = self.error_for(scope["path"])
        if has_body:
            refusal = self._too_large(scope, render)
            if refusal is None and scope["path"].startswith(self.prefixes):
                refusal = self._authenticate(scope, render)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            receive = self._timed_receive(receive)

        response_started = False

        async def timed_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                dur = 1000 * (time.perf_counter() - started)
                headers = [*message.get("headers", [])]
                if not any(name.lower() == b"content-security-policy" for name, _ in headers):
                    headers.extend(DEFAULT_HEADERS)
                headers.append((b"server-timing", f"app;dur={dur:.3f}".encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except Exception as exc:
            log.exception("unhandled error")
            if not response_started:
                response = render(500, f"internal error: {type(exc).__name__}", None)
                await response(scope, receive, send)

    def _too_large(
        self, scope: Scope, render: Callable[[int, str, Any], Response]
    ) -> Response | None:
        """A 413 in the error schema for a body whose Content-Length is over the limit, before
        anything reads it (FastAPI's own limit still counts a chunked body as it arrives)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    return render(400, "Content-Length is not a number", None)
                if size > self.max_body_bytes:
                    return render(413, f"body: {self._over_limit}", None)
        return None

    @property
    def _over_limit(self) -> str:
        return f"request body is over the {self.max_body_bytes}-byte limit (FITLENS_MAX_BODY_BYTES)"

    def _timed_receive(self, receive: Receive) -> Receive:
        """``receive`` that counts the body's bytes (413 past ``max_body_bytes``) and gives up
        on a body not whole within ``body_timeout`` of its first read (a client trickling bytes
        would hold a connection and a request forever)."""
        done = False
        deadline: float | None = None
        size = 0

        async def timed() -> Message:
            nonlocal done, deadline, size
            if done:
                return await receive()  # e.g. a stream listening for the client to leave
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + self.body_timeout
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - now))
            except TimeoutError:
                raise SlowBody(self.body_timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                raise TooLarge("body", self._over_limit)
            return message

        return timed

    def _authenticate(
        self, scope: Scope, render: Callable[[int, str, Any], Response]
    ) -> Response | None:
        """A 401 for a body without a usable token; else remember who it is (the route's own
        dependency reuses that: one lookup per request)."""
        try:
            token = credential(scope)
            if token is None:
                raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
            principal = self.authenticate(token)
        except Unauthorized as exc:
            response = render(401, str(exc), None)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except Forbidden as exc:
            return render(403, str(exc), None)
        except Exception:  # e.g. the database is down: the route's dependency answers that
            return None
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        return None
