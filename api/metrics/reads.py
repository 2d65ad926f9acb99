"""Metric points out: curves at any length (downsampled keeping every spike, zoomed, or page
by page at full resolution), their ETag validators, and every point in order for exports. How
the summaries behind fast curve reads work: api.metrics.rollup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlmodel import Session, col

from api.core.exceptions import NotFound
from api.core.store import StoreBase
from api.metrics.models import MetricSeries
from api.metrics.rollup import ROLLUP_BASE, ROLLUP_LEVELS, merge_buckets
from api.metrics.schemas import Series
from api.runs.access import RunAccess
from api.runs.models import Run


class MetricReads(StoreBase):
    """The metrics domain's reads; built with the runs' access (a curve of a run that is gone
    is NotFound)."""

    def __init__(self, access: RunAccess) -> None:
        super().__init__(access.engine)
        self.access = access

    def curves_validator(self, run_id: int, keys: Sequence[str] | None) -> str:
        """What a curves read's ETag is made of: the run's attempt and, per key asked for, how
        many points it has and its last step. Points are never rewritten (a repeat is
        ignored), so these change exactly when the curves do: a heartbeat, or a point of
        another key, leaves them alone (and a poll gets its 304)."""
        query = _SERIES_STATE if not keys else _SERIES_STATE_OF
        params: dict[str, Any] = {"run_id": run_id}
        if keys:
            params["keys"] = list(keys)
        with self.engine.connect() as conn:
            rows = conn.execute(query, params).all()
        if not rows:
            raise NotFound(f"run {run_id} not found")
        state = ";".join(f"{k}:{n}:{s}" for _, k, n, s in sorted(rows, key=lambda r: r[1] or ""))
        return f"a{rows[0][0]}|{state}"

    def get_curves(
        self,
        run_id: int,
        keys: Sequence[str] | None,
        max_points: int,
        start: int | None = None,
        end: int | None = None,
        downsample: bool = True,
    ) -> list[Series]:
        """Per key, the points from ``start`` to ``end``: downsampled to ``max_points`` when
        there are more, or (``downsample=False``) the first ``max_points`` of them at full
        resolution with ``next_start``, the step a next page starts from."""
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            query = select(MetricSeries).where(col(MetricSeries.run_id) == run_id)
            if keys:
                query = query.where(col(MetricSeries.key).in_(keys))
            found = {s.key: s for s in session.execute(query).scalars()}
            order = list(keys) if keys else sorted(found)
            out = []
            for key in order:
                s = found.get(key)
                if s is None:
                    out.append(_series_of(key, [], [], 0, downsampled=False))
                elif downsample:
                    out.append(self.series(session, run_id, s, max_points, start, end))
                else:
                    out.append(self._page(session, run_id, s, max_points, start, end))
            return out

    def _raw_points(
        self,
        session: Session,
        run_id: int,
        s: MetricSeries,
        lo: int,
        hi: int,
        limit: int | None = None,
    ) -> tuple[list[int], list[float | None]]:
        """Steps and stored values (NaN as None) of one key from ``lo`` to ``hi`` (at most
        ``limit``), through the driver's own cursor: SQLAlchemy's per-row result processing
        costs more than the database does here. A series with every step from its first to its
        last (an epoch log) has its steps known: only the values are fetched, half the rows'
        objects."""
        dense = s.count == s.last_step - s.first_step + 1
        mark = self._mark
        sql = (
            f"SELECT {'' if dense else 'step, '}value FROM metric_point WHERE run_id = {mark} "
            f"AND key = {mark} AND step BETWEEN {mark} AND {mark} ORDER BY step"
        )
        params: tuple[Any, ...] = (run_id, s.key, lo, hi)
        if limit is not None:
            sql += f" LIMIT {mark}"
            params += (limit,)
        dbapi = session.connection().connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if dense:
            return list(range(lo, lo + len(rows))), [v for (v,) in rows]
        return [r[0] for r in rows], [r[1] for r in rows]

    def _page(
        self,
        session: Session,
        run_id: int,
        s: MetricSeries,
        limit: int,
        start: int | None,
        end: int | None,
    ) -> Series:
        lo, hi = _span(s, start, end)
        steps, values = (
            self._raw_points(session, run_id, s, lo, hi, limit + 1) if lo <= hi else ([], [])
        )
        more = len(steps) > limit
        if more:
            steps.pop()
            values.pop()
        return _series_of(
            s.key,
            steps,
            values,
            s.count,
            downsampled=False,
            next_start=steps[-1] + 1 if more else None,
        )

    def series(
        self,
        session: Session,
        run_id: int,
        s: MetricSeries,
        max_points: int,
        start: int | None,
        end: int | None,
    ) -> Series:
        lo, hi = _span(s, start, end)
        if hi < lo:
            return _series_of(s.key, [], [], s.count, downsampled=False)
        if s.count <= max_points or hi - lo + 1 <= max_points:
            steps, stored = self._raw_points(session, run_id, s, lo, hi)
            return _series_of(s.key, steps, stored, s.count, downsampled=False)
        n_buckets = max(1, max_points // 2)
        width = -(-(hi - lo + 1) // n_buckets)  # ceil
        level = max((lv for lv in ROLLUP_LEVELS if ROLLUP_BASE**lv <= width), default=0)
        parts: Iterable[tuple[int, int | None, float | None, int | None, float | None]]
        if level == 0:
            # Fewer than 16 steps per output bucket: at most 8 * max_points raw rows.
            steps, stored = self._raw_points(session, run_id, s, lo, hi)
            # A NaN (None) point has no min or max: merge_buckets shows it as a gap.
            parts = ((st, st, v, st, v) for st, v in zip(steps, stored, strict=True))
        else:
            bw = ROLLUP_BASE**level
            # Thousands of rows on a hot read path: fetched through the driver directly, which
            # is several times cheaper per row than SQLAlchemy's result processing.
            mark = self._mark
            parts = (
                session.connection()
                .exec_driver_sql(
                    "SELECT first_step, min_step, min_value, max_step, max_value "
                    f"FROM metric_rollup WHERE run_id = {mark} AND key = {mark} AND level = {mark} "
                    f"AND bucket BETWEEN {mark} AND {mark}",
                    (run_id, s.key, level, lo // bw, hi // bw),
                )
                .all()
            )
        steps, values = merge_buckets(parts, lo, hi, width, n_buckets)
        return _series_of(s.key, steps, values, s.count, downsampled=True)

    def iter_metric_batches(
        self, run_id: int, keys: Sequence[str] | None = None, size: int = 10_000
    ) -> Iterator[list[Any]]:
        """Every point of a run (or of ``keys``), ordered by key then step, in batches of
        ``size`` rows (NaN as None), for exports of any length. Straight from the driver's
        cursor (SQLAlchemy's row processing doubled the time); on PostgreSQL a server-side
        cursor, and SQLite's steps through the rows as they are fetched: memory stays flat.
        """
        mark = self._mark
        only = f" AND key IN ({', '.join([mark] * len(keys))})" if keys else ""
        sql = (
            "SELECT key, step, value, wall_time FROM metric_point "
            f"WHERE run_id = {mark}{only} ORDER BY key, step"
        )
        with self.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            named = {"name": "fitlens_export"} if self._dialect == "postgresql" else {}
            cursor = dbapi.cursor(**named)
            try:
                cursor.execute(sql, (run_id, *(keys or ())))
                while batch := cursor.fetchmany(size):
                    yield list(batch)
            finally:
                cursor.close()


def _span(s: MetricSeries, start: int | None, end: int | None) -> tuple[int, int]:
    """The steps a read covers: ``start``..``end`` within the series' own first and last."""
    lo = s.first_step if start is None else max(start, s.first_step)
    hi = s.last_step if end is None else min(end, s.last_step)
    return lo, hi


def _series_of(
    key: str,
    steps: list[int],
    values: Sequence[float | None],
    total: int,
    downsampled: bool,
    next_start: int | None = None,
) -> Series:
    # Built from the database's own rows (no validation to repeat: up to 100,000 points);
    # NaN is stored as NULL.
    nan = math.nan
    return Series.model_construct(
        key=key,
        steps=steps,
        values=[nan if v is None else v for v in values],
        total_points=total,
        downsampled=downsampled,
        next_start=next_start,
    )


# Built once (they run on every poll): the run's attempt and its series' sizes, all keys or some.
def _series_state(keys: bool) -> Any:
    on = col(MetricSeries.run_id) == Run.id
    if keys:
        on = and_(on, col(MetricSeries.key).in_(bindparam("keys", expanding=True)))
    return (
        select(
            col(Run.attempt),
            col(MetricSeries.key),
            col(MetricSeries.count),
            col(MetricSeries.last_step),
        )
        .outerjoin(MetricSeries, on)
        .where(col(Run.id) == bindparam("run_id"))
    )


_SERIES_STATE = _series_state(keys=False)
_SERIES_STATE_OF = _series_state(keys=True)
