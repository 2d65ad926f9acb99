"""Property-based: schemathesis generates requests from the OpenAPI schema (valid and not);
no input may make the API answer 500 or emit non-standard JSON, and every answer must be one
the schema documents, in the shape it documents (status code, content type, headers, body).
Both databases: PostgreSQL refuses things SQLite takes (NUL bytes in text, integers past 32/64
bits).

schemathesis' fixture-based loader does not work with pytest 9, so each app and schema is built
at import time on a database of its own, made by the migrations.
"""

from __future__ import annotations

import atexit
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.core.config import Settings
from api.core.db import run_migrations
from api.main import create_app
from api.runs.queue import RecordingQueue
from tests.api.conftest import bearer, postgres_database


def _app(url: str) -> tuple[FastAPI, list[int], dict[str, str]]:
    run_migrations(url)
    app = create_app(Settings(database_url=url), enqueuer=RecordingQueue())
    _, token = app.state.store.people.create_user(
        f"fuzzer-{uuid.uuid4().hex[:6]}", team=f"t-{uuid.uuid4().hex[:6]}"
    )
    auth = bearer(token)
    # Runs for generated requests to hit, so they get past the 404 into the real handlers.
    with TestClient(app, headers=auth) as client:
        running = client.post("/api/v1/jobs", json={}).json()["id"]
        client.post(f"/api/v1/runs/{running}/status", json={"status": "running"})
        queued = client.post("/api/v1/jobs", json={}).json()["id"]
        # A stream lasts as long as its run: fuzzed streams follow one that has ended.
        ended = client.post("/api/v1/jobs", json={}).json()["id"]
        client.post(f"/api/v1/runs/{ended}/cancel")
    return app, [running, queued, ended], auth


_sqlite_app, _sqlite_targets, _sqlite_auth = _app(
    f"sqlite:///{Path(tempfile.mkdtemp(prefix='fitlens-fuzz-')) / 'fuzz.db'}"
)
_pg = postgres_database()
_pg_app, _pg_targets, _pg_auth = _app(next(_pg))


@atexit.register
def _drop_pg() -> None:
    _pg_app.state.store.engine.dispose()
    _pg.close()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

sqlite_schema = schemathesis.openapi.from_asgi("/openapi.json", _sqlite_app)
pg_schema = schemathesis.openapi.from_asgi("/openapi.json", _pg_app)


def _check(case: Any, targets: list[int], auth: dict[str, str]) -> None:
    run_id = (case.path_parameters or {}).get("run_id")
    if isinstance(run_id, int) and run_id % 3 < 2:
        # Two thirds of the cases target a real run (running or queued; for a stream, ended).
        streamed = case.path.endswith("/stream")
        case.path_parameters["run_id"] = targets[2] if streamed else targets[run_id % 3]
    # Authenticated, so generated requests reach the handlers (auth itself: test_auth.py).
    response = case.call_and_validate(headers=auth, checks=CHECKS)
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    content_type = (response.headers.get("content-type") or [""])[0]  # values are lists here
    if content_type.startswith("application/json"):

        def refuse(token: str) -> Any:
            raise ValueError(f"non-standard JSON token {token}")

        json.loads(response.text, parse_constant=refuse)


@sqlite_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_on_sqlite(case: Any) -> None:
    _check(case, _sqlite_targets, _sqlite_auth)


@pg_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_on_postgresql(case: Any) -> None:
    _check(case, _pg_targets, _pg_auth)
