"""What a stream sends, read from the database: everything about a run (or a study's members)
that a cursor has not seen, as events. The database stays the source of truth; a stream is a
view of it, so a reader that reconnects is caught up from here and loses nothing.

Reads are bounded: at most ``STEPS_PER_READ`` steps of metrics (and of histograms) and
``EVENTS_PER_READ`` run events at a time; ``more`` tells the caller to read again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select
from sqlmodel import col

from api.core.errors import finite
from api.core.store import StoreBase
from api.diagnosis.models import RunDiagnosis
from api.evaluation.models import Evaluation
from api.histograms.models import Histogram
from api.metrics.blocks import MAX_STEP
from api.metrics.models import PER_BATCH_SUFFIX, MetricSeries
from api.metrics.points import points_by_step, read_points
from api.runs.models import FINISHED, Run, RunEvent
from api.streams.cursor import Event, RunCursor, StudyCursor, digest

STEPS_PER_READ = 500
EVENTS_PER_READ = 500


@dataclass
class Batch:
    events: list[Event]
    more: bool = False  # a bound was reached: read again for the rest
    gone: bool = False  # the run (or study) no longer exists


class StreamReads(StoreBase):
    """The stream's reads (what a stream checks first, who may read the run or study, is
    the runs' access and the studies' store, which the stream's views hold too)."""

    def revisions(self, run_ids: Sequence[int]) -> dict[int, int]:
        """The current revision of each run that still exists: one query for every run any
        stream of this process follows."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(col(Run.id), col(Run.revision)).where(col(Run.id).in_(list(run_ids)))
            ).all()
        return {i: int(r) for i, r in rows if i is not None}  # ids: never None

    def study_member_ids(self, study_id: int) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(col(Run.id)).where(col(Run.study_id) == study_id).order_by(col(Run.id))
            )
            return [i for i in rows.scalars() if i is not None]  # ids: never None

    # ---- a run ----

    def run_now(self, run_id: int) -> Batch:
        """A new reader's start: the run as it is (status, diagnosis, evaluation, end), with
        the cursor placed after everything already stored (the page reads that by REST)."""
        with self.engine.connect() as conn:
            run = conn.execute(_RUN.where(col(Run.id) == run_id)).first()
            if run is None:
                return Batch([_gone()], gone=True)
            step = conn.execute(
                select(func.max(col(MetricSeries.last_step))).where(
                    col(MetricSeries.run_id) == run_id, *_per_epoch(MetricSeries)
                )
            ).scalar()
            hist = conn.execute(
                select(func.max(col(Histogram.step))).where(col(Histogram.run_id) == run_id)
            ).scalar()
            last_event = conn.execute(
                select(func.max(col(RunEvent.id))).where(col(RunEvent.run_id) == run_id)
            ).scalar()
            events = [
                _epoch_mark(conn, run_id, run.attempt, step),
                _mark(conn, "histograms", Histogram, run_id, run.attempt, hist),
                Event("event", {}, (int(last_event or 0),), run.attempt, quiet=True),
                _status(run),
                *_state(conn, run),
            ]
        return Batch([e for e in events if e is not None])

    def run_since(self, run_id: int, cursor: RunCursor) -> Batch:
        """Everything about the run that ``cursor`` has not seen, oldest first."""
        with self.engine.connect() as conn:
            run = conn.execute(_RUN.where(col(Run.id) == run_id)).first()
            if run is None:
                return Batch([_gone()], gone=True)
            base = cursor if cursor.attempt == run.attempt else RunCursor(attempt=run.attempt)
            status = _status(run)
            finished = run.status in FINISHED
            events: list[Event] = [] if finished else [status]
            epochs, more_epochs = _epochs(conn, run_id, run.attempt, base)
            hists, more_hists = _histograms(conn, run_id, run.attempt, base)
            run_events = _run_events(conn, run_id, run.attempt, cursor.event_id)
            events += epochs + hists + run_events
            more = more_epochs or more_hists or len(run_events) == EVENTS_PER_READ
            state = _state(conn, run)
            if finished:
                state.insert(0, status)
            if more:  # the end (and the final state) only once everything before it is sent
                state = [e for e in state if e.kind not in ("end", "status")] if finished else []
            events += state
        return Batch(events, more=more)

    # ---- a study ----

    def study_since(self, member_ids: Sequence[int], cursor: StudyCursor) -> Batch:
        """A ``member`` event for each member that changed since ``cursor``; ``end`` once every
        member has finished."""
        with self.engine.connect() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    select(
                        col(Run.id),
                        col(Run.revision),
                        col(Run.status),
                        col(Run.attempt),
                        col(Run.progress_epoch),
                        col(Run.progress_total),
                        col(Run.study_config),
                        col(Run.study_replicate),
                        col(Run.failure_reason),
                        col(RunDiagnosis.verdict),
                    )
                    .outerjoin(RunDiagnosis, col(RunDiagnosis.run_id) == col(Run.id))
                    .where(col(Run.id).in_(list(member_ids)))
                )
            }
        if len(rows) < len(member_ids):
            return Batch([_gone()], gone=True)
        events = []
        for index, run_id in enumerate(member_ids):
            row = rows[run_id]
            if row.revision > cursor.revisions[index]:
                data = {
                    "run_id": run_id,
                    "status": row.status,
                    "attempt": row.attempt,
                    "epoch": row.progress_epoch,
                    "epochs": row.progress_total,
                    "config": row.study_config,
                    "replicate": row.study_replicate,
                    "verdict": row.verdict,
                    "failure_reason": row.failure_reason,
                }
                events.append(Event("member", data, (index, int(row.revision))))
        if all(r.status in FINISHED for r in rows.values()):
            counts: dict[str, int] = {}
            for r in rows.values():
                counts[r.status] = counts.get(r.status, 0) + 1
            events.append(Event("end", {"members": counts}))
        return Batch(events)


_RUN = select(
    col(Run.id),
    col(Run.status),
    col(Run.attempt),
    col(Run.revision),
    col(Run.progress_epoch),
    col(Run.progress_total),
    col(Run.failure_reason),
    col(Run.started_at),
    col(Run.finished_at),
    col(Run.diverged_epoch),
)


def _gone() -> Event:
    return Event("end", {"status": "deleted"})


def _status(run: Any) -> Event:
    data = {
        "status": run.status,
        "attempt": run.attempt,
        "epoch": run.progress_epoch,
        "epochs": run.progress_total,
        "failure_reason": run.failure_reason,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "diverged_epoch": run.diverged_epoch,
    }
    return Event("status", data, (int(run.revision),), run.attempt, digest(data))


def _state(conn: Connection, run: Any) -> list[Event]:
    """The run's diagnosis, its evaluation's arrival and, if it has finished, the end."""
    events = []
    detail = conn.execute(
        select(col(RunDiagnosis.detail_json)).where(col(RunDiagnosis.run_id) == run.id)
    ).scalar()
    if detail is not None:
        events.append(
            Event(
                "diagnosis", json.loads(detail), (int(run.revision),), run.attempt, digest(detail)
            )
        )
    final = select(col(Evaluation.run_id)).where(
        col(Evaluation.run_id) == run.id, col(Evaluation.final)
    )
    if conn.execute(final.limit(1)).first():
        events.append(Event("evaluation", {"available": True}, (), run.attempt))
    if run.status in FINISHED:
        events.append(Event("end", {"status": run.status}, (), run.attempt))
    return events


def _steps(conn: Connection, model: Any, run_id: int, after: int) -> tuple[list[int], bool]:
    steps = list(
        conn.execute(
            select(model.step)
            .where(model.run_id == run_id, model.step >= after)
            .group_by(model.step)
            .order_by(model.step)
            .limit(STEPS_PER_READ + 1)
        ).scalars()
    )
    return steps[:STEPS_PER_READ], len(steps) > STEPS_PER_READ


def _epochs(
    conn: Connection, run_id: int, attempt: int, base: RunCursor
) -> tuple[list[Event], bool]:
    """The per-epoch points of up to ``STEPS_PER_READ`` steps from the cursor's, as epochs."""
    latest = dict(
        conn.execute(
            select(col(MetricSeries.key), col(MetricSeries.last_step)).where(
                col(MetricSeries.run_id) == run_id,
                col(MetricSeries.last_step) >= base.step,
                *_per_epoch(MetricSeries),
            )
        ).all()
    )
    if not latest:
        return [], False
    keys = sorted(latest)
    lo = base.step
    by_step = points_by_step(conn, run_id, keys, lo, min(lo + STEPS_PER_READ - 1, MAX_STEP))
    if not by_step:  # steps more than STEPS_PER_READ apart: on from the next one stored
        lo = min(read_points(conn, run_id, key, lo, MAX_STEP, limit=1).steps[0] for key in keys)
        by_step = points_by_step(conn, run_id, keys, lo, min(lo + STEPS_PER_READ - 1, MAX_STEP))
    more = any(last > lo + STEPS_PER_READ - 1 for last in latest.values())
    events = []
    for step, values in by_step.items():
        mark = (step, len(values))
        if mark > (base.step, base.step_points):
            events.append(Event("epoch", {"step": step, "metrics": finite(values)}, mark, attempt))
    return events, more


def _histograms(
    conn: Connection, run_id: int, attempt: int, base: RunCursor
) -> tuple[list[Event], bool]:
    steps, more = _steps(conn, Histogram, run_id, base.hist_step)
    if not steps:
        return [], False
    by_step: dict[int, list[str]] = {}
    for step, param in conn.execute(
        select(col(Histogram.step), col(Histogram.param))
        .where(
            col(Histogram.run_id) == run_id,
            col(Histogram.step) >= steps[0],
            col(Histogram.step) <= steps[-1],
        )
        .order_by(col(Histogram.step), col(Histogram.param))
    ):
        by_step.setdefault(int(step), []).append(param)
    events = []
    for step, params in by_step.items():
        mark = (step, len(params))
        if mark > (base.hist_step, base.hist_params):
            events.append(Event("histograms", {"step": step, "params": params}, mark, attempt))
    return events, more


def _run_events(conn: Connection, run_id: int, attempt: int, after: int) -> list[Event]:
    rows = conn.execute(
        select(
            col(RunEvent.id),
            col(RunEvent.kind),
            col(RunEvent.step),
            col(RunEvent.payload_json),
            col(RunEvent.created_at),
        )
        .where(col(RunEvent.run_id) == run_id, col(RunEvent.id) > after)
        .order_by(col(RunEvent.id))
        .limit(EVENTS_PER_READ)
    ).all()
    return [
        Event(
            "event",
            {"kind": kind, "step": step, "payload": json.loads(payload), "created_at": created},
            (int(event_id or 0),),  # ids: never None
            attempt,
        )
        for event_id, kind, step, payload, created in rows
    ]


def _per_epoch(model: Any) -> list[Any]:
    """The conditions that keep a stream's epochs to per-epoch series: a per-batch curve's
    steps count batches (api.metrics.models.PER_BATCH_SUFFIX)."""
    return [~col(model.key).endswith(PER_BATCH_SUFFIX, autoescape=True)]


def _epoch_mark(conn: Connection, run_id: int, attempt: int, step: int | None) -> Event | None:
    """Places a new reader after the stored epochs: the last step and how many per-epoch
    series reach it (no series goes further: the step is their highest)."""
    if step is None:
        return None
    count = conn.execute(
        select(func.count()).where(
            col(MetricSeries.run_id) == run_id,
            col(MetricSeries.last_step) == step,
            *_per_epoch(MetricSeries),
        )
    ).scalar_one()
    return Event("epoch", {}, (int(step), int(count)), attempt, quiet=True)


def _mark(
    conn: Connection, kind: str, model: Any, run_id: int, attempt: int, step: int | None
) -> Event | None:
    """Places a new reader after the stored epochs (or histograms): a quiet event, no data."""
    if step is None:
        return None
    count = conn.execute(
        select(func.count()).where(model.run_id == run_id, model.step == step)
    ).scalar_one()
    return Event(kind, {}, (int(step), int(count)), attempt, quiet=True)
