"""Metric points: ingest (idempotent per key and step), curves at any length, the CSV export,
and comparisons of several runs. How the summaries behind fast curve reads work: api.metrics.rollup.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, select
from sqlmodel import Session, col

from api.core.exceptions import Conflict, NotFound
from api.metrics.models import MetricPoint, MetricRollup, MetricSeries
from api.metrics.rollup import (
    ROLLUP_BASE,
    ROLLUP_LEVELS,
    aggregate,
    merge_buckets,
    minmax_set,
)
from api.metrics.schemas import CompareRun, MetricPointDict, RunSummary, Series
from api.runs.access import RunAccess
from api.runs.models import FINISHED, Run
from api.runs.schemas import DiagnosisOut


def _nan_to_null(value: float) -> float | None:
    return None if math.isnan(value) else value


def _null_to_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _diagnosed(d: DiagnosisOut | None) -> dict[str, Any]:
    if d is None:
        return {}
    return {
        "evaluated_epoch": d.evaluated_epoch,
        "val_accuracy": d.at_evaluated.get("val_accuracy"),
        "onset_epoch": d.onset_epoch,
        "verdict": d.verdict,
    }


class MetricStore(RunAccess):
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

    def add_metrics(
        self, run_id: int, points: Sequence[MetricPointDict], attempt: int | None = None
    ) -> tuple[int, int, int]:
        """Store new points; (run, key, step) already stored are kept as they were.

        Returns (accepted, duplicates, revision).
        """
        now = time.time()
        unique: dict[tuple[str, int], tuple[float | None, float]] = {}
        for p in points:
            ident = (p["key"], p["step"])
            if ident not in unique:
                wall = p.get("wall_time")
                unique[ident] = (_nan_to_null(p["value"]), now if wall is None else wall)
        with Session(self.engine) as session:
            conn = session.connection()
            # One statement takes the run's row lock (SQLite: the write lock), bumps its
            # revision and reads what the checks need. The lock serialises ingestion per run,
            # so "which points are new" below stays true until commit.
            mark = self._mark
            row = conn.exec_driver_sql(
                f"UPDATE run SET revision = revision + 1 WHERE id = {mark} "
                "RETURNING status, attempt, revision",
                (run_id,),
            ).first()
            if row is None:
                raise NotFound(f"run {run_id} not found")
            status, run_attempt, revision = row
            if status in FINISHED:
                raise Conflict(f"run {run_id} is {status}; it takes no more data")
            if attempt is not None and attempt != run_attempt:
                raise Conflict(
                    f"run {run_id} is on attempt {run_attempt}; attempt {attempt} is stale"
                )
            new = self._new_points(conn, run_id, unique)
            if not new:
                # Nothing new (a retried post) leaves the revision, and every ETag, unchanged.
                session.rollback()
                return 0, len(points), revision - 1
            self._insert_points(conn, [(run_id, k, s, v, w) for k, s, v, w in new])
            self._update_summaries(conn, run_id, [(k, s, v) for k, s, v, _ in new])
            self._run_data_changed(session, run_id, "metrics", {k for k, _, _, _ in new})
            session.commit()
        return len(new), len(points) - len(new), revision

    def _insert_points(
        self, conn: Connection, rows: list[tuple[int, str, int, float | None, float]]
    ) -> None:
        # Straight to the driver: SQLAlchemy's per-row parameter handling would cost more than
        # the database's own work on this hot path. The rows are known to be new (see the lock
        # in add_metrics), so PostgreSQL can take them by COPY, its fastest way in.
        columns = "metric_point (run_id, key, step, value, wall_time)"
        if self._dialect == "postgresql":
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY {columns} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        conn.exec_driver_sql(f"INSERT INTO {columns} VALUES (?, ?, ?, ?, ?)", rows)

    def _new_points(
        self,
        conn: Connection,
        run_id: int,
        points: dict[tuple[str, int], tuple[float | None, float]],
    ) -> list[tuple[str, int, float | None, float]]:
        spans: dict[str, list[int]] = {}
        for key, step in points:
            span = spans.get(key)
            if span is None:
                spans[key] = [step, step]
            elif step < span[0]:
                span[0] = step
            elif step > span[1]:
                span[1] = step
        # Most posts append: a key whose steps all come after its stored last step has no
        # repeats to look for, which one read of the series' summaries tells.
        mark = self._mark
        last: dict[str, int] = dict(
            conn.exec_driver_sql(
                f"SELECT key, last_step FROM metric_series WHERE run_id = {mark}", (run_id,)
            ).all()
        )
        existing: set[tuple[str, int]] = set()
        for key, (lo, hi) in spans.items():
            if key not in last or lo > last[key]:
                continue
            existing.update(
                (key, step)
                for (step,) in conn.execute(
                    select(MetricPoint.step).where(
                        MetricPoint.run_id == run_id,
                        MetricPoint.key == key,
                        col(MetricPoint.step).between(lo, hi),
                    )
                )
            )
        return [
            (key, step, value, wall)
            for (key, step), (value, wall) in points.items()
            if (key, step) not in existing
        ]

    def _update_summaries(
        self, conn: Connection, run_id: int, points: list[tuple[str, int, float | None]]
    ) -> None:
        series, rollups = aggregate(points)
        series_upsert, rollup_upsert = self._upserts()
        conn.execute(
            series_upsert,
            [{"run_id": run_id, "key": k, **a.series_row()} for k, a in series.items()],
        )
        conn.execute(
            rollup_upsert,
            [
                {"run_id": run_id, "key": k, "level": lvl, "bucket": b, **a.rollup_row()}
                for (k, lvl, b), a in rollups.items()
            ],
        )

    def _upserts(self) -> tuple[Any, Any]:
        """The two summary upserts, built once per store: building them (CASE expressions,
        ON CONFLICT clauses) cost more than running them, on every ingest."""
        built = getattr(self, "_built_upserts", None)
        if built is not None:
            return built
        least, greatest = self._least_greatest()
        s_ins = self._insert(MetricSeries.__table__)
        s_ex = s_ins.excluded
        t = MetricSeries.__table__.c
        series = s_ins.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "count": t["count"] + s_ex["count"],
                "first_step": least(t.first_step, s_ex.first_step),
                "last_step": greatest(t.last_step, s_ex.last_step),
                "last_value": case(
                    (s_ex.last_step > t.last_step, s_ex.last_value), else_=t.last_value
                ),
                **minmax_set(t, s_ex),
            },
        )
        r_ins = self._insert(MetricRollup.__table__)
        r_ex = r_ins.excluded
        rt = MetricRollup.__table__.c
        rollup = r_ins.on_conflict_do_update(
            index_elements=["run_id", "key", "level", "bucket"],
            set_={
                "count": rt["count"] + r_ex["count"],
                "first_step": least(rt.first_step, r_ex.first_step),
                **minmax_set(rt, r_ex),
            },
        )
        self._built_upserts = (series, rollup)
        return self._built_upserts

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
            self._run(session, run_id)
            query = select(MetricSeries).where(MetricSeries.run_id == run_id)
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
                    out.append(self._series(session, run_id, s, max_points, start, end))
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
    ) -> tuple[list[int], list[float]]:
        """Steps and values of one key from ``lo`` to ``hi`` (at most ``limit``), through the
        driver's own cursor: SQLAlchemy's per-row result processing costs more than the
        database does here. A series with every step from its first to its last (an epoch
        log) has its steps known: only the values are fetched, half the rows' objects."""
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
        nan = math.nan
        if dense:
            return list(range(lo, lo + len(rows))), [nan if v is None else v for (v,) in rows]
        return [r[0] for r in rows], [nan if r[1] is None else r[1] for r in rows]

    def _page(
        self,
        session: Session,
        run_id: int,
        s: MetricSeries,
        limit: int,
        start: int | None,
        end: int | None,
    ) -> Series:
        lo = s.first_step if start is None else max(start, s.first_step)
        hi = s.last_step if end is None else min(end, s.last_step)
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

    def _series(
        self,
        session: Session,
        run_id: int,
        s: MetricSeries,
        max_points: int,
        start: int | None,
        end: int | None,
    ) -> Series:
        lo = s.first_step if start is None else max(start, s.first_step)
        hi = s.last_step if end is None else min(end, s.last_step)
        if hi < lo:
            return _series_of(s.key, [], [], s.count, downsampled=False)
        if s.count <= max_points or hi - lo + 1 <= max_points:
            steps, values = self._raw_points(session, run_id, s, lo, hi)
            return _series_of(s.key, steps, values, s.count, downsampled=False)
        n_buckets = max(1, max_points // 2)
        width = -(-(hi - lo + 1) // n_buckets)  # ceil
        level = max((lv for lv in ROLLUP_LEVELS if ROLLUP_BASE**lv <= width), default=0)
        parts: Iterable[tuple[int, int | None, float | None, int | None, float | None]]
        if level == 0:
            # Fewer than 16 steps per output bucket: at most 8 * max_points raw rows.
            steps, values = self._raw_points(session, run_id, s, lo, hi)
            # NaN as None again: merge_buckets counts such a point as a gap, not a value.
            parts = (
                (st, st, v, st, v) if v == v else (st, None, None, None, None)
                for st, v in zip(steps, values, strict=True)
            )
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
        return Series.model_construct(
            key=s.key, steps=steps, values=values, total_points=s.count, downsampled=True
        )

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

    def compare(
        self, run_ids: Sequence[int], keys: Sequence[str], max_points: int
    ) -> list[CompareRun]:
        summary_keys = ("val_loss", "gap", "val_accuracy", "train_loss")
        with Session(self.engine) as session:
            runs = [self._run(session, i) for i in run_ids]
            outs = self._run_outs(session, runs)
            rows = session.execute(
                select(MetricSeries).where(
                    col(MetricSeries.run_id).in_(run_ids), col(MetricSeries.key).in_(summary_keys)
                )
            ).scalars()
            by_run: dict[int, dict[str, MetricSeries]] = {}
            for s in rows:
                by_run.setdefault(s.run_id, {})[s.key] = s
        result = []
        for out in outs:
            series = by_run.get(out.id, {})
            val = series.get("val_loss")

            def last(key: str, series: dict[str, MetricSeries] = series) -> float | None:
                s = series.get(key)
                return None if s is None else _null_to_nan(s.last_value)

            result.append(
                CompareRun(
                    run=out,
                    summary=RunSummary(
                        best_epoch=val.min_step if val else None,
                        min_val_loss=val.min_value if val else None,
                        final_gap=last("gap"),
                        final_val_accuracy=last("val_accuracy"),
                        final_train_loss=last("train_loss"),
                        **_diagnosed(out.diagnosis),
                    ),
                    series=self.get_curves(out.id, keys, max_points),
                )
            )
        return result


def _series_of(
    key: str,
    steps: list[int],
    values: list[float],
    total: int,
    downsampled: bool,
    next_start: int | None = None,
) -> Series:
    # Built from the database's own rows (no validation to repeat: up to 100,000 points).
    return Series.model_construct(
        key=key,
        steps=steps,
        values=values,
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
        select(Run.attempt, MetricSeries.key, MetricSeries.count, MetricSeries.last_step)
        .outerjoin(MetricSeries, on)
        .where(col(Run.id) == bindparam("run_id"))
    )


_SERIES_STATE = _series_state(keys=False)
_SERIES_STATE_OF = _series_state(keys=True)
