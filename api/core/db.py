"""The database: engines (the one place that knows SQLite from PostgreSQL connection details),
the column types and clock every domain's tables share, and the Alembic migrations."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, CursorResult, Engine, Integer, Result, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError

# Ids, steps and counts are 64-bit on PostgreSQL (the API accepts up to 2**62 everywhere); on
# SQLite INTEGER is 64-bit already and only "INTEGER PRIMARY KEY" auto-increments.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def placeholder(dialect: Dialect) -> str:
    """The driver's placeholder, for statements sent to the driver directly (hot paths)."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


def utcnow() -> datetime:
    return datetime.now(UTC)


# Requests run in a threadpool of 40 threads: a pool smaller than the requests in flight under
# load opens and closes a connection per request beyond it (SQLAlchemy's default keeps 5).
POOL = {"pool_size": 20, "max_overflow": 30}


def make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs = {**POOL, **kwargs}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            # WAL: readers (pollers) never block the writer (ingest), and vice versa.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        return engine
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


# A connection back in the pool within this long is trusted as it is: a ping per checkout
# (pool_pre_ping) cost a round trip on every request, a third of a 304 poll's time.
PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for PING_AFTER_IDLE_S: one
    that broke while idle (a server restart, an outage) is replaced before a request sees it
    (SQLAlchemy's own recipe: raising DisconnectionError makes the pool retry with a fresh
    connection). A connection in steady use is proven by its last statement."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return  # new (just connected), or recently in use
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(str(exc)) from exc


def alembic_config(url: str) -> Any:
    """The Alembic configuration for ``url`` (migrations/ of this checkout)."""
    from pathlib import Path

    from alembic.config import Config

    root = Path(__file__).resolve().parents[2]
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def run_migrations(url: str, revision: str = "head") -> None:
    """alembic upgrade head against ``url`` (the schema is made by migrations only)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


# An id is never handed out twice, even after the row holding the highest one is deleted: a
# client, a cache or a stream holding an old id must never reach another team's new row.
# PostgreSQL's sequences never go back; SQLite needs AUTOINCREMENT (otherwise it reuses the
# largest rowid + 1). Every table with an ``id`` key carries it (migration 0009).
NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}


def attempt_data() -> dict[str, Any]:
    """Table options marking a table that holds one attempt's data of a run (a ``run_id``
    column): api.runs clears such tables when a run goes back to the queue. Every table with a
    ``run_id`` column is emptied of a run that is deleted."""
    return {"info": {"attempt_data": True}}


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched: its result is a CursorResult, which the
    session's stubs type as a plain Result."""
    return cast(CursorResult[Any], result).rowcount
