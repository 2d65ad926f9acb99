"""The schema comes from Alembic; the migrations must describe exactly the models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlmodel import SQLModel

import api.models  # noqa: F401 - registers the tables
from api.core.db import alembic_config, make_engine, run_migrations
from api.runs.filters import RunFilter
from api.store import TrackingStore
from tests.api.conftest import postgres_database

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_migrations_match_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == [], diff


def test_migrations_made_every_table(database_url: str) -> None:
    engine = create_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    gen = postgres_database()
    yield next(gen)
    gen.close()


def _legacy_run(url: str) -> Engine:
    """A database at revision 0001 holding one project, "old", and its run, "legacy"."""
    run_migrations(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO project (name, created_at) VALUES ('old', :t)"), {"t": NOW})
        conn.execute(
            text(
                "INSERT INTO run (project_id, name, status, spec_json, spec_hash, notes, task, "
                "dataset, model_kind, optimizer, lr, weight_decay, dropout, l1, l2, epochs, "
                "batch_size, seed, early_stopping, lr_schedule, attempt, revision, created_at, "
                "progress_epoch, progress_total) "
                "SELECT id, 'legacy', 'succeeded', '{}', 'h', '', 'classification', 'digits', "
                "'mlp', 'adam', 0.001, 0, 0, 0, 0, 1, 32, 0, false, 'none', 1, 1, :t, 1, 1 "
                "FROM project"
            ),
            {"t": NOW},
        )
    return engine


def test_upgrading_a_database_from_before_teams_keeps_its_runs(empty_database: str) -> None:
    """0001 -> 0002: projects made before teams existed go to team "default", whose runs a user
    added to that team then sees; and the migration goes down and up again."""
    engine = _legacy_run(empty_database)
    run_migrations(empty_database)
    with engine.connect() as conn:
        owner = conn.execute(
            text("SELECT team.name FROM project JOIN team ON team.id = project.team_id")
        ).scalar()
    assert owner == "default"

    store = TrackingStore(make_engine(empty_database))
    _, token = store.people.create_user("old-timer", team="default", role="viewer")
    principal = store.people.authenticate(token)
    runs, _ = store.runs.list_runs(RunFilter(teams=principal.teams()), "id", None, 10)
    assert [(r.name, r.project) for r in runs] == [("legacy", "old")]
    store.engine.dispose()

    command.downgrade(alembic_config(empty_database), "0001")
    with engine.connect() as conn:
        assert "team" not in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT name FROM run")).scalar() == "legacy"
    run_migrations(empty_database)
    engine.dispose()


def test_a_run_s_one_evaluation_becomes_its_final_validation_one_and_back(
    empty_database: str,
) -> None:
    """0009 -> 0010: the one evaluation a run had is its final validation evaluation, at the
    epoch its document names; going down keeps the final validation one."""
    engine = _legacy_run(empty_database)
    run_migrations(empty_database, "0009")
    document = '{"epoch": 7, "best_epoch": 7, "best_val_loss": 0.3, "accuracy": 0.9}'
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO evaluation (run_id, payload_json, created_at) "
                "SELECT id, :p, :t FROM run"
            ),
            {"p": document, "t": NOW},
        )
    run_migrations(empty_database)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT split, epoch, final, payload_json FROM run_evaluation"))
        assert [(s, e, bool(f), p) for s, e, f, p in rows] == [("val", 7, True, document)]
    command.downgrade(alembic_config(empty_database), "0009")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT payload_json FROM evaluation")).scalar() == document
    run_migrations(empty_database)
    engine.dispose()
