"""Metric points in (into their series' blocks, idempotent per key and step, the series'
summaries kept up to date as they arrive), and comparisons of several runs. Reads:
api.metrics.reads; the blocks: api.metrics.blocks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Table, and_, case, or_, select
from sqlmodel import Session, SQLModel, col

from api.core.exceptions import Conflict, Invalid, NotFound
from api.core.schemas import IngestResult
from api.metrics.blocks import BLOCK_POINTS, Block, extremes, place
from api.metrics.models import MetricSeries
from api.metrics.points import block_summaries, blocks_at, replace_blocks, tail_blocks
from api.metrics.reads import MetricReads
from api.metrics.schemas import CompareRun, MetricPointDict, RunSummary
from api.runs.models import FINISHED
from api.runs.schemas import DiagnosisOut


def _block_of(points: dict[int, tuple[float, float]]) -> Block:
    steps = sorted(points)
    return Block(steps, [points[s][0] for s in steps], [points[s][1] for s in steps])


def _series_row(block: Block) -> dict[str, Any]:
    """A series summary of ``block``'s points (NaN: NULL in the summary columns)."""
    low, high = extremes(block.steps, block.values)
    last = block.values[-1]
    return {
        "count": len(block.steps),
        "first_step": block.steps[0],
        "last_step": block.steps[-1],
        "last_value": None if math.isnan(last) else last,
        "last_wall_time": block.walls[-1],
        "min_step": low[0] if low else None,
        "min_value": low[1] if low else None,
        "max_step": high[0] if high else None,
        "max_value": high[1] if high else None,
    }


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
    # Points a block holds at most (bench/blocks.py sets other sizes to measure them).
    block_points = BLOCK_POINTS

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
        by_key: dict[str, dict[int, tuple[float, float]]] = {}
        for p in points:
            steps = by_key.get(p["key"])
            if steps is None:
                steps = by_key[p["key"]] = {}
            if p["step"] not in steps:
                wall = p.get("wall_time")
                steps[p["step"]] = (p["value"], now if wall is None else wall)
        with Session(self.engine) as session:
            conn = session.connection()
            # One statement takes the run's row lock (SQLite: the write lock), bumps its
            # revision and reads what the checks need. The lock serialises ingestion per run,
            # so the blocks read below stay as they are until commit.
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
            accepted = self._store_points(conn, run_id, by_key, max_keys)
            if not accepted:
                # Nothing new (a retried post) leaves the revision, and every ETag, unchanged.
                session.rollback()
                return IngestResult(accepted=0, duplicates=len(points), revision=revision - 1)
            self._update_series(conn, run_id, accepted)
            self.access.data_changed(session, run_id, "metrics", set(accepted))
            session.commit()
        count = sum(len(b.steps) for b in accepted.values())
        return IngestResult(accepted=count, duplicates=len(points) - count, revision=revision)

    def _store_points(
        self,
        conn: Connection,
        run_id: int,
        by_key: dict[str, dict[int, tuple[float, float]]],
        max_keys: int,
    ) -> dict[str, Block]:
        """Write the points into their series' blocks; per key, the points that were new."""
        # Each key's last block tells its last step: most posts append, to the end of that
        # block. A key without one is new, and only then are the run's keys counted.
        news = {key: _block_of(points) for key, points in by_key.items()}
        tails = tail_blocks(conn, run_id, list(news))
        added_keys = len(news.keys() - tails.keys())
        if added_keys:
            have = conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM metric_series WHERE run_id = {self._mark}", (run_id,)
            ).scalar_one()
            if have + added_keys > max_keys:
                raise Invalid(
                    "points.key",
                    f"the run has {have} metric keys and this post adds {added_keys}; a run "
                    f"has at most {max_keys} (FITLENS_MAX_METRIC_KEYS)",
                )
        removed: list[tuple[str, int]] = []
        written: list[tuple[str, Block]] = []
        accepted: dict[str, Block] = {}
        for key, new in news.items():
            tail = tails.get(key)
            if tail is None or new.steps[0] > tail.steps[-1]:  # a new key, or an append
                if tail is None or len(tail.steps) >= self.block_points:
                    targets: list[tuple[int | None, Block, Block]] = [(None, Block(), new)]
                else:
                    targets = [(tail.steps[0], tail, new)]
            else:
                targets = self._targets(conn, run_id, key, new)
            got = Block()
            for first, stored, part in targets:
                if not stored.merge(part):
                    continue
                got.extend(part)  # the merge left only the new points in it
                if first is not None:
                    removed.append((key, first))
                written += [(key, chunk) for chunk in stored.chunks(self.block_points)]
            if got.steps:
                accepted[key] = got
        replace_blocks(conn, run_id, removed, written)
        return accepted

    @staticmethod
    def _targets(
        conn: Connection, run_id: int, key: str, new: Block
    ) -> list[tuple[int | None, Block, Block]]:
        """(stored block's first step or None, its points, the new points it takes) for the
        blocks that points out of order, repeats or gap fills go to."""
        summaries = block_summaries(conn, run_id, key, new.steps[0], new.steps[-1])
        placed = place(new.steps, [(r[0], r[1]) for r in summaries])
        firsts = [first for first, _, _ in placed if first is not None]
        stored = blocks_at(conn, run_id, key, firsts, walls=True)
        return [
            (first, Block() if first is None else stored[first], new.part(start, end))
            for first, start, end in placed
        ]

    def _update_series(self, conn: Connection, run_id: int, accepted: dict[str, Block]) -> None:
        conn.execute(
            self._series_upsert,
            [{"run_id": run_id, "key": k, **_series_row(b)} for k, b in accepted.items()],
        )

    @cached_property
    def _series_upsert(self) -> Any:
        """The series summaries' upsert, built once per store: building it (CASE expressions,
        an ON CONFLICT clause) cost more than running it, on every ingest."""
        least, greatest = self._least_greatest()
        s_ins = self._insert(_table(MetricSeries))
        s_ex = s_ins.excluded
        t = _table(MetricSeries).c
        later = s_ex.last_step > t.last_step
        return s_ins.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "count": t["count"] + s_ex["count"],
                "first_step": least(t.first_step, s_ex.first_step),
                "last_step": greatest(t.last_step, s_ex.last_step),
                "last_value": case((later, s_ex.last_value), else_=t.last_value),
                "last_wall_time": case((later, s_ex.last_wall_time), else_=t.last_wall_time),
                **minmax_set(t, s_ex),
            },
        )

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


def minmax_set(t: Any, ex: Any) -> dict[str, Any]:
    """ON CONFLICT updates that merge an incoming min/max into the stored one."""
    lower = or_(t.min_value.is_(None), ex.min_value < t.min_value)
    higher = or_(t.max_value.is_(None), ex.max_value > t.max_value)
    lower = and_(ex.min_value.is_not(None), lower)
    higher = and_(ex.max_value.is_not(None), higher)
    return {
        "min_value": case((lower, ex.min_value), else_=t.min_value),
        "min_step": case((lower, ex.min_step), else_=t.min_step),
        "max_value": case((higher, ex.max_value), else_=t.max_value),
        "max_step": case((higher, ex.max_step), else_=t.max_step),
    }


def _table(model: type[SQLModel]) -> Table:
    """A model's table (SQLModel sets ``__table__`` when the class is made; its stubs do not
    say so)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]
