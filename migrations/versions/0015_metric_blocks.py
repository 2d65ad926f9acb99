"""metric blocks: a series' points packed in blocks, not one row each

Every point of ``metric_point`` moves into ``metric_block`` (up to 1,024 consecutive points of
one series a row: steps, values and wall times packed, as api.metrics.blocks describes), the
per-bucket ``metric_rollup`` goes (the blocks' own minimum and maximum replace it) and each
series' summary learns its last point's wall time. The downgrade unpacks every block back into
rows and rebuilds the rollups. The codec is copied here, frozen: this migration must read and
write the format of its own day whatever the code later becomes.

Both directions read the old rows in order, a batch at a time (a server-side cursor on
PostgreSQL): memory stays flat whatever the database's size.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 05:38:57.125191
"""

import math
import sys
import zlib
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate, pairwise
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BLOCK_POINTS = 1024
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROLLUP_LEVELS = (1, 2, 3, 4, 5)  # metric_rollup's bucket width: 16**level steps


def _pack(typecode: str, items: list[Any]) -> bytes:
    data = array(typecode, items)
    if sys.byteorder == "big":
        data.byteswap()
    raw = data.tobytes()
    if len(raw) >= 256:
        packed = zlib.compress(raw, 1)
        if len(packed) <= len(raw) - len(raw) // 8:
            return b"\x01" + packed
    return b"\x00" + raw


def _unpack(typecode: str, blob: bytes) -> list[Any]:
    data = array(typecode)
    data.frombytes(blob[1:] if blob[0] == 0 else zlib.decompress(blob[1:]))
    if sys.byteorder == "big":
        data.byteswap()
    return data.tolist()


def _extremes(steps: list[int], values: list[float]) -> tuple[Any, Any, Any, Any]:
    numbers = [(v, s) for s, v in zip(steps, values, strict=True) if not math.isnan(v)]
    if not numbers:
        return None, None, None, None
    low = min(numbers, key=lambda p: p[0])
    high = max(numbers, key=lambda p: p[0])
    return low[1], low[0], high[1], high[0]


def _block_row(run_id: int, key: str, points: list[tuple[int, float, float]]) -> dict[str, Any]:
    steps = [p[0] for p in points]
    values = [p[1] for p in points]
    dense = steps[-1] - steps[0] + 1 == len(steps)
    min_step, min_value, max_step, max_value = _extremes(steps, values)
    return {
        "run_id": run_id,
        "key": key,
        "first_step": steps[0],
        "last_step": steps[-1],
        "count": len(steps),
        "min_step": min_step,
        "min_value": min_value,
        "max_step": max_step,
        "max_value": max_value,
        "steps_packed": None if dense else _pack("q", [b - a for a, b in pairwise(steps)]),
        "values_packed": _pack("d", values),
        "wall_times_packed": _pack("d", [p[2] for p in points]),
    }


def _batches(conn: sa.Connection, sql: str, size: int = 10_000) -> Iterator[Sequence[Any]]:
    # Options of this statement only (Connection.execution_options would change the bind's).
    rows = conn.execute(sa.text(sql), execution_options={"stream_results": True, "yield_per": size})
    yield from rows.partitions(size)


def _points_to_blocks(conn: sa.Connection) -> None:
    block = sa.table(
        "metric_block",
        *[sa.column(c) for c in _block_row(0, "", [(0, 0.0, 0.0)])],
    )
    series: tuple[int, str] | None = None
    points: list[tuple[int, float, float]] = []
    rows: list[dict[str, Any]] = []
    sql = "SELECT run_id, key, step, value, wall_time FROM metric_point ORDER BY run_id, key, step"
    for batch in _batches(conn, sql):
        for run_id, key, step, value, wall in batch:
            if (run_id, key) != series or len(points) == BLOCK_POINTS:
                if points and series is not None:
                    rows.append(_block_row(*series, points))
                series, points = (run_id, key), []
            points.append((step, math.nan if value is None else value, wall))
        if len(rows) >= 100:
            conn.execute(block.insert(), rows)
            rows = []
    if points and series is not None:
        rows.append(_block_row(*series, points))
    if rows:
        conn.execute(block.insert(), rows)


def upgrade() -> None:
    op.create_table(
        "metric_block",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("steps_packed", sa.LargeBinary(), nullable=True),
        sa.Column("values_packed", sa.LargeBinary(), nullable=False),
        sa.Column("wall_times_packed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", "first_step"),
        info={"attempt_data": True},
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        # Out of line, uncompressed: the arrays are packed already (zlib where it pays), so
        # PostgreSQL's own compression (pglz) would only spend CPU on every write and read.
        for column in ("steps_packed", "values_packed", "wall_times_packed"):
            op.execute(f"ALTER TABLE metric_block ALTER COLUMN {column} SET STORAGE EXTERNAL")
    _points_to_blocks(conn)
    with op.batch_alter_table("metric_series", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_wall_time", sa.Float(), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE metric_series SET last_wall_time = (SELECT wall_time FROM metric_point p "
            "WHERE p.run_id = metric_series.run_id AND p.key = metric_series.key "
            "AND p.step = metric_series.last_step)"
        )
    )
    with op.batch_alter_table("metric_series", schema=None) as batch_op:
        batch_op.alter_column("last_wall_time", existing_type=sa.Float(), nullable=False)
    op.drop_table("metric_point")
    op.drop_table("metric_rollup")


class _Rollups:
    """metric_rollup's rows of one series, from its points in step order (NaN as None), as the
    old code kept them: a bucket of each level is written once its last point has gone by."""

    def __init__(self, run_id: int, key: str) -> None:
        self.run_id, self.key = run_id, key
        self.open: dict[int, dict[str, Any]] = {}  # level -> its current bucket's row
        self.done: list[dict[str, Any]] = []

    def add(self, step: int, value: float | None) -> None:
        for level in ROLLUP_LEVELS:
            bucket = step // 16**level
            row = self.open.get(level)
            if row is None or row["bucket"] != bucket:
                if row is not None:
                    self.done.append(row)
                row = self.open[level] = {
                    "run_id": self.run_id,
                    "key": self.key,
                    "level": level,
                    "bucket": bucket,
                    "count": 0,
                    "min_value": None,
                    "min_step": None,
                    "max_value": None,
                    "max_step": None,
                    "first_step": step,
                }
            row["count"] += 1
            if value is not None:
                if row["min_value"] is None or value < row["min_value"]:
                    row["min_value"], row["min_step"] = value, step
                if row["max_value"] is None or value > row["max_value"]:
                    row["max_value"], row["max_step"] = value, step

    def flush(self, conn: sa.Connection, table: Any, final: bool = False) -> None:
        if final:
            self.done += self.open.values()
            self.open = {}
        if self.done:
            conn.execute(table.insert(), self.done)
            self.done = []


def _blocks_to_points(conn: sa.Connection) -> None:
    point = sa.table(
        "metric_point", *[sa.column(c) for c in ("run_id", "key", "step", "value", "wall_time")]
    )
    columns = ("run_id", "key", "level", "bucket", "count", "min_value", "min_step")
    columns += ("max_value", "max_step", "first_step")
    rollup = sa.table("metric_rollup", *[sa.column(c) for c in columns])
    sql = (
        "SELECT run_id, key, first_step, last_step, steps_packed, values_packed, "
        "wall_times_packed FROM metric_block ORDER BY run_id, key, first_step"
    )
    rollups: _Rollups | None = None
    for batch in _batches(conn, sql, 100):
        rows = []
        for run_id, key, first, last, steps_blob, values_blob, walls_blob in batch:
            if rollups is None or (run_id, key) != (rollups.run_id, rollups.key):
                if rollups is not None:
                    rollups.flush(conn, rollup, final=True)
                rollups = _Rollups(run_id, key)
            steps = (
                list(range(first, last + 1))
                if steps_blob is None
                else list(accumulate(_unpack("q", steps_blob), initial=first))
            )
            values = [None if math.isnan(v) else v for v in _unpack("d", values_blob)]
            walls = _unpack("d", walls_blob)
            for s, v, w in zip(steps, values, walls, strict=True):
                rows.append({"run_id": run_id, "key": key, "step": s, "value": v, "wall_time": w})
                rollups.add(s, v)
        if rows:
            conn.execute(point.insert(), rows)
        if rollups is not None:
            rollups.flush(conn, rollup)
    if rollups is not None:
        rollups.flush(conn, rollup, final=True)


def downgrade() -> None:
    op.create_table(
        "metric_rollup",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", "level", "bucket"),
    )
    op.create_table(
        "metric_point",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("wall_time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "key", "step"),
    )
    _blocks_to_points(op.get_bind())
    with op.batch_alter_table("metric_series", schema=None) as batch_op:
        batch_op.drop_column("last_wall_time")
    op.drop_table("metric_block")
