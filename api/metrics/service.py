"""Metric points in (idempotent per key and step, the summaries kept up to date as they
arrive), and comparisons of several runs. Reads: api.metrics.reads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Table, case, select
from sqlmodel import Session, SQLModel, col

from api.core.exceptions import Conflict, Invalid, NotFound
from api.core.schemas import IngestResult
from api.metrics.models import MetricPoint, MetricRollup, MetricSeries
from api.metrics.reads import MetricReads
from api.metrics.rollup import (
    aggregate,
    minmax_set,
)
from api.metrics.schemas import CompareRun, MetricPointDict, RunSummary
from api.runs.models import FINISHED
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


class MetricStore(MetricReads):
    def add_metrics(
        self,
        run_id: int,
        points: Sequence[MetricPointDict],
        attempt: int | None = None,
        max_keys: int = 1_000,
    ) -> IngestResult:
        """Store new points; (run, key, step) already stored are kept as they were. A run has
        at most ``max_keys`` keys (a 422 for a post that would add more, nothing stored)."""
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
            if status == "failed" and self.access.revive_silent_client(session, run_id):
                status, revision = "running", revision + 1
            if status in FINISHED:
                raise Conflict(f"run {run_id} is {status}; it takes no more data")
            if attempt is not None and attempt != run_attempt:
                raise Conflict(
                    f"run {run_id} is on attempt {run_attempt}; attempt {attempt} is stale"
                )
            new = self._new_points(conn, run_id, unique, max_keys)
            if not new:
                # Nothing new (a retried post) leaves the revision, and every ETag, unchanged.
                session.rollback()
                return IngestResult(accepted=0, duplicates=len(points), revision=revision - 1)
            self._insert_points(conn, [(run_id, k, s, v, w) for k, s, v, w in new])
            self._update_summaries(conn, run_id, [(k, s, v) for k, s, v, _ in new])
            self.access.data_changed(session, run_id, "metrics", {k for k, _, _, _ in new})
            session.commit()
        return IngestResult(accepted=len(new), duplicates=len(points) - len(new), revision=revision)

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
        max_keys: int,
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
        added = len(spans.keys() - last.keys())
        if added and len(last) + added > max_keys:
            raise Invalid(
                "points.key",
                f"the run has {len(last)} metric keys and this post adds {added}; a run has at "
                f"most {max_keys} (FITLENS_MAX_METRIC_KEYS)",
            )
        existing: set[tuple[str, int]] = set()
        for key, (lo, hi) in spans.items():
            if key not in last or lo > last[key]:
                continue
            existing.update(
                (key, step)
                for (step,) in conn.execute(
                    select(col(MetricPoint.step)).where(
                        col(MetricPoint.run_id) == run_id,
                        col(MetricPoint.key) == key,
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
        series_upsert, rollup_upsert = self._upserts
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

    @cached_property
    def _upserts(self) -> tuple[Any, Any]:
        """The two summary upserts, built once per store: building them (CASE expressions,
        ON CONFLICT clauses) cost more than running them, on every ingest."""
        least, greatest = self._least_greatest()
        s_ins = self._insert(_table(MetricSeries))
        s_ex = s_ins.excluded
        t = _table(MetricSeries).c
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
        r_ins = self._insert(_table(MetricRollup))
        r_ex = r_ins.excluded
        rt = _table(MetricRollup).c
        rollup = r_ins.on_conflict_do_update(
            index_elements=["run_id", "key", "level", "bucket"],
            set_={
                "count": rt["count"] + r_ex["count"],
                "first_step": least(rt.first_step, r_ex.first_step),
                **minmax_set(rt, r_ex),
            },
        )
        return series, rollup

    def compare(
        self, run_ids: Sequence[int], keys: Sequence[str], max_points: int
    ) -> list[CompareRun]:
        summary_keys = ("val_loss", "gap", "val_accuracy", "train_loss")
        with Session(self.engine) as session:
            runs = [self.access.run_row(session, i) for i in run_ids]
            outs = self.access.run_outs(session, runs)
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


def _table(model: type[SQLModel]) -> Table:
    """A model's table (SQLModel sets ``__table__`` when the class is made; its stubs do not
    say so)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]
