"""Migration 0015 moves every point into blocks and back, on a database filled by the code
from before blocks (tests/fixtures/fill_before_blocks.py wrote tests/fixtures/points_0014.db
through that code's own API): every point, every series summary and every rollup row is
compared, bit for bit, before, after and after the way back."""

from __future__ import annotations

import math
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, create_engine, text

from api.core.db import alembic_config, make_engine, run_migrations
from api.store import TrackingStore
from tests.api.conftest import postgres_database

FIXTURE = Path(__file__).parents[1] / "fixtures" / "points_0014.db"
POINTS = "SELECT run_id, key, step, value, wall_time FROM metric_point"
ROLLUPS = (
    "SELECT run_id, key, level, bucket, count, min_value, min_step, max_value, max_step, "
    "first_step FROM metric_rollup"
)
SERIES = (
    "SELECT run_id, key, count, first_step, last_step, last_value, min_value, min_step, "
    "max_value, max_step FROM metric_series"
)


def exact(value: Any) -> Any:
    """A float as its bits (-0.0 is not 0.0), NaN (NULL in the old rows) as one token."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if isinstance(value, float):
        return struct.pack("<d", value)
    return value


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = sorted(tuple(exact(v) for v in row) for row in conn.execute(text(sql)))
    engine.dispose()
    return found


def without_steps(rollup: tuple[Any, ...]) -> tuple[Any, ...]:
    run_id, key, level, bucket, count, min_value, _, max_value, _, first_step = rollup
    return run_id, key, level, bucket, count, min_value, max_value, first_step


def copy_rows(source: str, target: str) -> None:
    """Every row of every table of ``source`` into ``target`` (same revision), parents first."""
    src, dst = create_engine(source), create_engine(target)
    tables = MetaData()
    tables.reflect(dst)
    copied = [t for t in tables.sorted_tables if t.name != "alembic_version"]
    with src.connect() as read, dst.begin() as write:
        for table in reversed(copied):  # what the migrations seeded (leases) gives way
            write.execute(table.delete())
        for table in copied:
            found = [dict(r._mapping) for r in read.execute(text(f"SELECT * FROM {table.name}"))]
            if found:
                write.execute(table.insert(), found)
    src.dispose()
    dst.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def before_blocks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at revision 0014 holding the fixture's runs and points."""
    copy = tmp_path / "before.db"
    shutil.copy(FIXTURE, copy)
    if request.param == "sqlite":
        yield f"sqlite:///{copy}"
        return
    gen = postgres_database()
    url = next(gen)
    run_migrations(url, "0014")
    copy_rows(f"sqlite:///{copy}", url)
    yield url
    gen.close()


def exported(url: str) -> list[tuple[Any, ...]]:
    """Every point as the new code reads it: the exports' rows, run by run."""
    store = TrackingStore(make_engine(url))
    with store.engine.connect() as conn:
        run_ids = [r for (r,) in conn.execute(text("SELECT id FROM run"))]
    found = [
        (run_id, *row)
        for run_id in run_ids
        for batch in store.metrics.iter_metric_batches(run_id, size=500)
        for row in batch
    ]
    store.engine.dispose()
    return sorted(tuple(exact(v) for v in row) for row in found)


def test_every_point_moves_into_blocks_and_back(before_blocks: str) -> None:
    points, rollups, series = (rows(before_blocks, q) for q in (POINTS, ROLLUPS, SERIES))
    assert len(points) > 5_000 and {p[1] for p in points} >= {"loss", "sparse", "nan_only"}
    assert any(p[3] == "NaN" for p in points) and max(p[2] for p in points) == 2**62

    run_migrations(before_blocks)
    assert exported(before_blocks) == points
    assert rows(before_blocks, SERIES) == series
    # Each series now knows its last point's wall time, and its blocks hold every point.
    last_walls = rows(
        before_blocks, "SELECT run_id, key, last_step, last_wall_time FROM metric_series"
    )
    by_point = {(p[0], p[1], p[2]): p[4] for p in points}
    assert all(by_point[(r, k, s)] == w for r, k, s, w in last_walls)
    counts = rows(before_blocks, "SELECT run_id, key, SUM(count) FROM metric_block GROUP BY 1, 2")
    per_series = {(s[0], s[1]): s[2] for s in series}
    assert {(r, k): n for r, k, n in counts} == per_series

    command.downgrade(alembic_config(before_blocks), "0014")
    assert rows(before_blocks, POINTS) == points
    assert rows(before_blocks, SERIES) == series
    rebuilt = rows(before_blocks, ROLLUPS)
    assert [without_steps(r) for r in rebuilt] == [without_steps(r) for r in rollups]
    # A tie's step depends on the order the points came in: any step holding the extreme will do.
    value_at = {(p[0], p[1], p[2]): p[3] for p in points}
    for run_id, key, *_, min_value, min_step, max_value, max_step, _ in rebuilt:
        if min_value != "NaN":
            assert value_at[(run_id, key, min_step)] == min_value
            assert value_at[(run_id, key, max_step)] == max_value
