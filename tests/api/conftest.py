"""API tests run against SQLite and PostgreSQL, each built by the Alembic migrations."""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from api.core.config import Settings
from api.core.db import run_migrations
from api.main import create_app
from api.runs.queue import RecordingQueue

# The server CI starts (trust auth); a throw-away database is created in it per test session.
PG_ADMIN_URL = os.environ.get(
    "FITLENS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TABLES = (
    "api_token",
    "webhook_delivery",
    "webhook",
    "metric_series",
    "metric_block",
    "histogram",
    "weight_snapshot",
    "run_checkpoint",
    "run_evaluation",
    "run_event",
    "run_diagnosis",
    "mlflow_tag",
    "runtag",
    "run",
    "study",
    "project",
    "membership",
    "team",
    '"user"',
)


def postgres_database() -> Generator[str, None, None]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"fitlens_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "fitlens.db"
        url = f"sqlite:///{path}"
        run_migrations(url)
        yield url
        return
    gen = postgres_database()
    url = next(gen)
    run_migrations(url)
    yield url
    gen.close()


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def client(database_url: str, queue: RecordingQueue) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url), enqueuer=queue)
    engine = app.state.store.engine
    empty_tables(engine)  # every test starts from empty tables
    # Tests act as alice, the owner of team "lab", unless they say otherwise.
    _, token = app.state.store.people.create_user("alice", team="lab", role="owner")
    with TestClient(app, headers=bearer(token)) as test_client:
        yield test_client
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    """What earlier tests on this worker left in the session's database, gone."""
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"DELETE FROM {table}"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


API = "/api/v1"


def submit(client: TestClient, spec: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    response = client.post(f"{API}/jobs", json={"spec": spec or {}, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def start(client: TestClient, run_id: int) -> None:
    response = client.post(
        f"{API}/runs/{run_id}/status",
        json={"status": "running", "worker_host": "host-a", "device": "cpu"},
    )
    assert response.status_code == 200, response.text


def post_points(client: TestClient, run_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(f"{API}/runs/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
    return response.json()
