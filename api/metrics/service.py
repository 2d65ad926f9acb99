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

from sqlalchemy import Connection, select
from sqlmodel import Session, col

from api.core.exceptions import Conflict, Invalid, NotFound
from api.core.schemas import IngestResult
from api.metrics.blocks import BLOCK_POINTS, Block, extremes, place
from api.metrics.models import MetricSeries
from api.metrics.points import (
    Statement,
    block_summaries,
    block_writes,
    blocks_at,
    run_together,
    tail_statements,
    tails,
)
from api.metrics.reads import MetricReads
from api.metrics.schemas import CompareRun, MetricPointDict, MetricSeriesDict, RunSummary
from api.runs.models import FINISHED
from api.runs.schemas import DiagnosisOut

Steps = dict[int, tuple[float, float]]  # step -> (value, wall time)


def _by_key(
    points: Sequence[MetricPointDict], series: Sequence[MetricSeriesDict], now: float
) -> dict[str, Steps]:
    """Each key's new points; a step repeated in the post keeps its first value."""
    by_key: dict[str, Steps] = {}
    for p in points:
        steps = by_key.get(p["key"])
        if steps is None:
            steps = by_key[p["key"]] = {}
        if p["step"] not in steps:
            wall = p.get("wall_time")
            steps[p["step"]] = (p["value"], now if wall is None else wall)
    for one in series:
        if not one["steps"]:
            continue
        walls = one.get("wall_times") or [now] * len(one["steps"])
        # Built backwards, so that the first of a repeated step is the one kept.
        pairs = zip(reversed(one["values"]), reversed(walls), strict=True)
        columns = zip(reversed(one["steps"]), pairs, strict=True)
        fresh: Steps = dict(columns)
        held = by_key.setdefault(one["key"], fresh)
        if held is not fresh:
            for step, point in fresh.items():
                held.setdefault(step, point)
    return by_key


def _block_of(points: Steps) -> Block:
    steps = sorted(points)
    return Block(steps, [points[s][0] for s in steps], [points[s][1] for s in steps])


def _series_row(block: Block) -> tuple[Any, ...]:
    """A series summary of ``block``'s points, in _SERIES_UPSERT's order after run and key
    (NaN: NULL in the summary columns)."""
    low, high = extremes(block.steps, block.values)
    last = block.values[-1]
    return (
        len(block.steps),
        block.steps[0],
        block.steps[-1],
        None if math.isnan(last) else last,
        block.walls[-1],
        *(low or (None, None)),
        *(high or (None, None)),
    )


# The series summaries' upsert, merging the new points' summary into the stored one. Every
# right-hand side sees the row as it was (SQL's UPDATE; both databases).
_LOWER = (
    "excluded.min_value IS NOT NULL AND (s.min_value IS NULL OR excluded.min_value < s.min_value)"
)
_HIGHER = (
    "excluded.max_value IS NOT NULL AND (s.max_value IS NULL OR excluded.max_value > s.max_value)"
)
_LATER = "excluded.last_step > s.last_step"
_SERIES_UPSERT = f"""INSERT INTO metric_series AS s (run_id, key, count, first_step, last_step,
last_value, last_wall_time, min_step, min_value, max_step, max_value)
VALUES ({{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}})
ON CONFLICT (run_id, key) DO UPDATE SET
count = s.count + excluded.count,
first_step = {{least}}(s.first_step, excluded.first_step),
last_step = {{greatest}}(s.last_step, excluded.last_step),
last_value = CASE WHEN {_LATER} THEN excluded.last_value ELSE s.last_value END,
last_wall_time = CASE WHEN {_LATER} THEN excluded.last_wall_time ELSE s.last_wall_time END,
min_step = CASE WHEN {_LOWER} THEN excluded.min_step ELSE s.min_step END,
min_value = CASE WHEN {_LOWER} THEN excluded.min_value ELSE s.min_value END,
max_step = CASE WHEN {_HIGHER} THEN excluded.max_step ELSE s.max_step END,
max_value = CASE WHEN {_HIGHER} THEN excluded.max_value ELSE s.max_value END"""


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
        series: Sequence[MetricSeriesDict] = (),
    ) -> IngestResult:
        """Store new points (``points``, then ``series``' columns); (run, key, step) already
        stored are kept as they were. A run has at most ``max_keys`` keys (a 422 for a post
        that would add more, nothing stored)."""
        by_key = _by_key(points, series, time.time())
        posted = len(points) + sum(len(s["steps"]) for s in series)
        news = {key: _block_of(steps) for key, steps in by_key.items()}
        with Session(self.engine) as session:
            conn = session.connection()
            # One statement takes the run's row lock (SQLite: the write lock), bumps its
            # revision and reads what the checks need. The lock serialises ingestion per run,
            # so the blocks read after it (each key's last block: most posts append to it)
            # stay as they are until commit.
            lock = Statement(
                f"UPDATE run SET revision = revision + 1 WHERE id = {self._mark} "
                "RETURNING status, attempt, revision",
                (run_id,),
                rows=True,
            )
            locked, *tail_rows = run_together(conn, [lock, *tail_statements(conn, run_id, [*news])])
            if not locked:
                raise NotFound(f"run {run_id} not found")
            status, run_attempt, revision = locked[0]
            if status == "failed" and self.access.revive_silent_client(session, run_id):
                status, revision = "running", revision + 1
            if status in FINISHED:
                raise Conflict(f"run {run_id} is {status}; it takes no more data")
            if attempt is not None and attempt != run_attempt:
                raise Conflict(
                    f"run {run_id} is on attempt {run_attempt}; attempt {attempt} is stale"
                )
            accepted, writes = self._store_points(conn, run_id, news, tails(tail_rows), max_keys)
            if not accepted:
                # Nothing new (a retried post) leaves the revision, and every ETag, unchanged.
                session.rollback()
                return IngestResult(accepted=0, duplicates=posted, revision=revision - 1)
            summaries = [(run_id, k, *_series_row(b)) for k, b in accepted.items()]
            upsert = Statement(self._series_upsert, summaries, many=True)
            run_together(conn, [*writes, upsert])
            self.access.data_changed(session, run_id, "metrics", set(accepted))
            session.commit()
        count = sum(len(b.steps) for b in accepted.values())
        return IngestResult(accepted=count, duplicates=posted - count, revision=revision)

    def _store_points(
        self,
        conn: Connection,
        run_id: int,
        news: dict[str, Block],
        tails: dict[str, Block],
        max_keys: int,
    ) -> tuple[dict[str, Block], list[Statement]]:
        """Place the new points in their series' blocks: per key, the points that were new,
        and the statements that write the blocks they changed."""
        # A key without a last block is new, and only then are the run's keys counted.
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
        return accepted, block_writes(conn, run_id, removed, written)

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

    @cached_property
    def _series_upsert(self) -> str:
        least, greatest = ("LEAST", "GREATEST") if self._dialect == "postgresql" else ("MIN", "MAX")
        return _SERIES_UPSERT.format(m=self._mark, least=least, greatest=greatest)

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
