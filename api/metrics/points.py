"""A series' blocks in and out of the database (the codec: api.metrics.blocks).

Statements go to the driver directly (a handful of rows, most of them packed arrays: SQLAlchemy's
per-row processing would cost more than the database here; PostgreSQL's by a binary cursor), and
an ingest's several at once (``run_together``: one round trip on PostgreSQL).
Every read is bounded: blocks are
fetched ``BATCH`` at a time and a read of ``limit`` points stops there, so a page or an export
of any length holds a few batches in memory at most.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from api.core.db import placeholder
from api.metrics.blocks import Block, unpack, unpack_steps

BATCH = 64  # blocks a query

_INSERT = (
    "INSERT INTO metric_block (run_id, key, first_step, last_step, count, min_step, min_value, "
    "max_step, max_value, steps_packed, values_packed, wall_times_packed) "
    "VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}, {m})"
)


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement for ``run_together``: with ``many``, ``params`` holds one tuple a row."""

    sql: str
    params: Sequence[Any]
    many: bool = False
    rows: bool = False  # it answers rows


def _cursor(conn: Connection) -> Any:
    """The driver's own cursor: on PostgreSQL a binary one, which hands bytea over as it is
    (the text protocol sent each packed array as hex, twice its size, for psycopg to decode:
    most of a long read's time)."""
    conn.connection  # noqa: B018 - begins SQLAlchemy's transaction, as exec_driver_sql would
    dbapi: Any = conn.connection.dbapi_connection
    return dbapi.cursor(binary=True) if conn.dialect.name == "postgresql" else dbapi.cursor()


def fetch(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Every row of ``sql``, from the driver's own cursor."""
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def run_together(conn: Connection, statements: Sequence[Statement]) -> list[list[Any]]:
    """Run ``statements`` in order, in the connection's transaction; the rows of each (empty
    for one without ``rows``). On PostgreSQL in one round trip, psycopg's pipeline: each
    statement still runs after the one before it is done, and (READ COMMITTED) sees what was
    committed when it starts, after the locks those before it took."""
    pipeline: Any = nullcontext()
    if conn.dialect.name == "postgresql":
        conn.connection  # noqa: B018 - begins SQLAlchemy's transaction
        dbapi: Any = conn.connection.dbapi_connection
        pipeline = dbapi.pipeline()
    cursors = []
    try:
        with pipeline:
            for statement in statements:
                cursor = _cursor(conn)
                cursors.append(cursor)
                run = cursor.executemany if statement.many else cursor.execute
                run(statement.sql, statement.params)
            answers = zip(cursors, statements, strict=True)
            return [list(c.fetchall()) if s.rows else [] for c, s in answers]
    finally:
        for cursor in cursors:
            cursor.close()


def _in_range(m: str) -> str:
    # The blocks holding steps lo..hi: from the last block starting at or before lo (found by
    # the primary key, like every other bound here), up to hi.
    return (
        f"run_id = {m} AND key = {m} AND last_step >= {m} AND first_step <= {m} AND first_step "
        f">= (SELECT COALESCE(MAX(first_step), {m}) FROM metric_block WHERE run_id = {m} "
        f"AND key = {m} AND first_step <= {m})"
    )


def _range_params(run_id: int, key: str, lo: int, hi: int) -> tuple[Any, ...]:
    return (run_id, key, lo, hi, lo, run_id, key, lo)


def _decode(row: Sequence[Any], walls: bool) -> Block:
    first, last, steps, values = row[0], row[1], row[2], row[3]
    return Block(
        unpack_steps(first, last, steps),
        unpack("d", values),
        unpack("d", row[4]) if walls else [],
    )


def iter_blocks(
    conn: Connection, run_id: int, key: str, lo: int, hi: int, walls: bool = False
) -> Iterator[Block]:
    """The points of (run, key) from step ``lo`` to ``hi``, block by block in step order (wall
    times only with ``walls``)."""
    m = placeholder(conn.dialect)
    columns = "first_step, last_step, steps_packed, values_packed" + (
        ", wall_times_packed" if walls else ""
    )
    sql = (
        f"SELECT {columns} FROM metric_block WHERE {_in_range(m)} ORDER BY first_step LIMIT {BATCH}"
    )
    while lo <= hi:
        rows = fetch(conn, sql, _range_params(run_id, key, lo, hi))
        for row in rows:
            block = _decode(row, walls).within(lo, hi)
            if block.steps:
                yield block
        if len(rows) < BATCH or rows[-1][1] >= hi:
            return
        lo = rows[-1][1] + 1


def read_points(
    conn: Connection,
    run_id: int,
    key: str,
    lo: int,
    hi: int,
    limit: int | None = None,
    walls: bool = False,
) -> Block:
    """The first ``limit`` points (all, without one) of (run, key) from ``lo`` to ``hi``."""
    out = Block()
    for block in iter_blocks(conn, run_id, key, lo, hi, walls):
        room = len(block.steps) if limit is None else limit - len(out.steps)
        out.steps += block.steps[:room]
        out.values += block.values[:room]
        out.walls += block.walls[:room]
        if limit is not None and len(out.steps) >= limit:
            break
    return out


def block_summaries(
    conn: Connection, run_id: int, key: str, lo: int, hi: int, width: int | None = None
) -> list[Any]:
    """(first, last, count, min_step, min_value, max_step, max_value) of the blocks holding
    steps ``lo`` to ``hi`` and of the block before ``lo`` (where a new point in the gap goes),
    in step order: no packed array is read. With ``width``, each row also holds the packed
    steps and values of a block that is not inside one bucket of ``width`` steps from ``lo``
    (NULL for those that are: their summary is all a downsampled read needs), in the same
    query."""
    m = placeholder(conn.dialect)
    packed = ""
    params: tuple[Any, ...] = ()
    if width is not None:
        inside = (
            f"first_step >= {m} AND last_step <= {m} AND "
            f"(first_step - {m}) / {m} = (last_step - {m}) / {m}"
        )
        packed = (
            f", CASE WHEN {inside} THEN NULL ELSE steps_packed END"
            f", CASE WHEN {inside} THEN NULL ELSE values_packed END"
        )
        params = (lo, hi, lo, width, lo, width) * 2
    sql = (
        f"SELECT first_step, last_step, count, min_step, min_value, max_step, max_value{packed} "
        f"FROM metric_block WHERE run_id = {m} AND key = {m} AND first_step <= {m} AND "
        f"first_step >= (SELECT COALESCE(MAX(first_step), {m}) FROM metric_block "
        f"WHERE run_id = {m} AND key = {m} AND first_step <= {m}) ORDER BY first_step"
    )
    return fetch(conn, sql, (*params, run_id, key, hi, lo, run_id, key, lo))


def blocks_at(
    conn: Connection, run_id: int, key: str, firsts: Sequence[int], walls: bool = False
) -> dict[int, Block]:
    """The blocks of (run, key) starting at ``firsts``, whole."""
    m = placeholder(conn.dialect)
    columns = "first_step, last_step, steps_packed, values_packed" + (
        ", wall_times_packed" if walls else ""
    )
    found: dict[int, Block] = {}
    for i in range(0, len(firsts), 500):
        part = firsts[i : i + 500]
        sql = (
            f"SELECT {columns} FROM metric_block WHERE run_id = {m} AND key = {m} "
            f"AND first_step IN ({', '.join([m] * len(part))})"
        )
        for row in fetch(conn, sql, (run_id, key, *part)):
            found[row[0]] = _decode(row, walls)
    return found


def tail_statements(conn: Connection, run_id: int, keys: Sequence[str]) -> list[Statement]:
    """What reads each key's last block, whole (what an append extends), for ``tails``: per
    key, the primary key's last entry (a backward index step, whatever the series' length; a
    GROUP BY over the run's blocks grew with them, and PostgreSQL's generic plan for it with
    the table)."""
    m = placeholder(conn.dialect)
    one = (
        "SELECT * FROM (SELECT first_step, last_step, steps_packed, values_packed, "
        f"wall_times_packed, key FROM metric_block WHERE run_id = {m} AND key = {m} "
        "ORDER BY first_step DESC LIMIT 1) AS tail"
    )
    return [
        Statement(
            " UNION ALL ".join([one] * len(part)),
            tuple(v for key in part for v in (run_id, key)),
            rows=True,
        )
        for part in (keys[i : i + 200] for i in range(0, len(keys), 200))
    ]


def tails(answers: Sequence[Sequence[Any]]) -> dict[str, Block]:
    """Each key's last block, from the rows of ``tail_statements``."""
    return {row[5]: _decode(row, walls=True) for rows in answers for row in rows}


def block_writes(
    conn: Connection,
    run_id: int,
    removed: Sequence[tuple[str, int]],
    added: Sequence[tuple[str, Block]],
) -> list[Statement]:
    """What deletes the blocks (key, first step) ``removed`` and writes ``added``."""
    m = placeholder(conn.dialect)
    writes = []
    if removed:
        writes.append(
            Statement(
                f"DELETE FROM metric_block WHERE run_id = {m} AND key = {m} AND first_step = {m}",
                [(run_id, key, first) for key, first in removed],
                many=True,
            )
        )
    if added:
        rows = [(run_id, key, *b.row()) for key, b in added]
        writes.append(Statement(_INSERT.format(m=m), rows, many=True))
    return writes


def points_by_step(
    conn: Connection, run_id: int, keys: Sequence[str], lo: int, hi: int
) -> dict[int, dict[str, float]]:
    """Every point of ``keys`` from step ``lo`` to ``hi``, by step then key, in one query."""
    if not keys:
        return {}
    m = placeholder(conn.dialect)
    sql = (
        "SELECT first_step, last_step, steps_packed, values_packed, key FROM metric_block "
        f"WHERE run_id = {m} AND key IN ({', '.join([m] * len(keys))}) AND last_step >= {m} "
        f"AND first_step <= {m} ORDER BY key, first_step"
    )
    found: dict[int, dict[str, float]] = {}
    for row in fetch(conn, sql, (run_id, *keys, lo, hi)):
        block = _decode(row, walls=False).within(lo, hi)
        for step, value in zip(block.steps, block.values, strict=True):
            found.setdefault(step, {})[row[4]] = value
    return dict(sorted(found.items()))


def whole_series(
    conn: Connection, series: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], Block]:
    """Every point of each (run, key) in ``series``, in one query (short series: a study's
    per-epoch curves)."""
    m = placeholder(conn.dialect)
    found: dict[tuple[int, str], Block] = {}
    for i in range(0, len(series), 250):
        part = series[i : i + 250]
        sql = (
            "SELECT first_step, last_step, steps_packed, values_packed, run_id, key "
            f"FROM metric_block WHERE {' OR '.join([f'(run_id = {m} AND key = {m})'] * len(part))} "
            "ORDER BY run_id, key, first_step"
        )
        for row in fetch(conn, sql, tuple(v for pair in part for v in pair)):
            found.setdefault((row[4], row[5]), Block()).extend(_decode(row, walls=False))
    return found
