"""What every domain's store shares: the engine, and the SQL that differs by dialect.

Each domain keeps its persistence in a store of its own (``api/<domain>/service.py``) built on
this one and given, in its constructor, the stores of the domains it uses; ``api.store``
builds them all, in dependency order. Routes call store methods and never see a session; the
methods answer API shapes, not rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, text
from sqlalchemy.dialects import postgresql, sqlite

from api.core.db import placeholder


class StoreBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._mark = placeholder(engine.dialect)
        # For reads of one statement (what every poll runs: its token, its grant, its
        # validator): no transaction begun and rolled back around it, two round trips fewer on
        # PostgreSQL; one statement sees one snapshot either way (READ COMMITTED, SQLite WAL).
        # (SQLite begins no transaction for a read anyway: switching its connections to
        # autocommit and back would only cost a PRAGMA each time.)
        self.reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._dialect == "postgresql"
            else engine
        )

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def _insert(self, model: Any) -> Any:
        """INSERT with the dialect's ON CONFLICT clauses."""
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(model)

    def _least_greatest(self) -> tuple[Any, Any]:
        # Two-argument MIN/MAX are scalar functions in SQLite; PostgreSQL calls them LEAST/GREATEST.
        if self._dialect == "postgresql":
            return func.least, func.greatest
        return func.min, func.max
