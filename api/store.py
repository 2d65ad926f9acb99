"""All persistence lives here: one narrow interface (TrackingStore) with SQL behind it.

Routes call these methods and never see a session. Methods return API schemas, not ORM rows.

Curves at any size: every ingested point also updates
- ``metric_series``: one row per (run, key) with count, first/last step, last value, min, max;
- ``metric_rollup``: min and max (with their steps) per bucket of 16, 256, 4096, 65536 and
  1048576 steps.
A curve read picks the finest rollup level that keeps the rows read to a few thousand and
merges them into ``max_points / 2`` buckets, each contributing its minimum and its maximum point:
a one-step spike survives any zoom level, which stride or random sampling cannot promise.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from api.auth import WRITE_ROLES, Principal
from api.core.exceptions import Conflict, Forbidden, Invalid, NotFound
from api.identity import IdentityStore
from api.models import (
    ApiToken,
    Evaluation,
    Histogram,
    MetricPoint,
    MetricRollup,
    MetricSeries,
    Project,
    Run,
    RunEvent,
    RunTag,
    Team,
    User,
    utcnow,
)
from api.schemas import (
    FINISHED,
    CompareRun,
    EventIn,
    EventOut,
    HistogramIn,
    HistogramIndex,
    HistogramOverlay,
    HistogramSeries,
    HistogramStep,
    MetricPointDict,
    OverlayRun,
    Progress,
    RunOut,
    RunPatch,
    RunSummary,
    Series,
    StatusUpdate,
)
from trainer.events import Evaluation as EvaluationBody
from trainer.spec import JobSpec

ROLLUP_LEVELS = (1, 2, 3, 4, 5)  # bucket width 16**level steps
_ROLLUP_BASE = 16


@dataclass(frozen=True)
class RunFilter:
    project: str | None = None
    status: Sequence[str] = ()
    tags: Sequence[str] = ()
    name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    spec_hash: str | None = None
    where: str | None = None  # e.g. "dataset=digits,dropout>0,weight_decay>=1e-4"
    created_by: str | None = None  # user name
    # Only runs of projects these teams own: the caller's visibility. None means no limit.
    teams: Sequence[int] | None = None


# Spec columns that ``where`` may test, and whether they hold numbers.
FILTERABLE: dict[str, bool] = {
    "task": False,
    "dataset": False,
    "model_kind": False,
    "optimizer": False,
    "lr_schedule": False,
    "lr": True,
    "weight_decay": True,
    "dropout": True,
    "l1": True,
    "l2": True,
    "epochs": True,
    "batch_size": True,
    "seed": True,
    "early_stopping": True,
}
_WHERE = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$")
SORTS = {"created_at", "-created_at", "name", "-name", "id", "-id"}


def _due_for_delivery(cutoff: datetime) -> Any:
    """Queued, and never handed over (or the hand-over failed), or handed over before cutoff."""
    return and_(
        Run.status == "queued",
        or_(col(Run.enqueued_at).is_(None), col(Run.enqueued_at) < cutoff),
    )


def _nan_to_null(value: float) -> float | None:
    return None if math.isnan(value) else value


def _null_to_nan(value: float | None) -> float:
    return math.nan if value is None else value


class TrackingStore(IdentityStore):
    """Runs and everything they hold; identity (users, teams, tokens) comes from IdentityStore."""

    def __init__(self, engine: Engine, default_project: str = "default") -> None:
        super().__init__(engine)
        self.default_project = default_project
        self._dialect = engine.dialect.name

    # ---- health ----

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # ---- runs ----

    def create_run(
        self,
        spec: JobSpec,
        project: str,
        name: str | None,
        tags: Sequence[str],
        notes: str,
        principal: Principal,
        team: str | None = None,
    ) -> tuple[RunOut, str]:
        """Store a queued run; returns it and the run's worker token (shown once, never stored
        in clear): the only credential its worker gets."""
        project = project or self.default_project
        with Session(self.engine) as session:
            project_id = self._project_for(session, project, principal, team)
            model = spec.model
            run = Run(
                project_id=project_id,
                created_by_id=principal.user_id,
                name=name or "",
                status="queued",
                spec_json=spec.canonical_json(),
                spec_hash=spec.spec_hash(),
                notes=notes,
                task=spec.task,
                dataset=spec.dataset.name,
                model_kind=model.kind,
                optimizer=spec.optimizer.name,
                lr=spec.optimizer.lr,
                weight_decay=spec.optimizer.weight_decay,
                dropout=max(model.dropout, getattr(model, "input_dropout", 0.0)),
                l1=spec.regularization.l1,
                l2=spec.regularization.l2,
                lr_schedule=spec.lr_schedule.kind,
                early_stopping=spec.early_stopping is not None,
                epochs=spec.epochs,
                batch_size=spec.batch_size,
                seed=spec.seed,
                progress_total=spec.epochs,
                enqueued_at=utcnow(),  # the caller hands it over next (else: undo_delivery)
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            if not name:
                run.name = f"run-{run.id}"
            for tag in dict.fromkeys(tags):
                session.add(RunTag(run_id=run.id, tag=tag))
            self._event(session, run.id, "status", None, {"status": "queued"})
            token = self._mint_worker(session, run.id)
            session.commit()
            return self._run_out(session, run), token

    def _project_for(
        self, session: Session, name: str, principal: Principal, team: str | None
    ) -> int:
        """The project to file a new run in: by name among the projects of the caller's teams
        (of ``team`` when given), or a new one in the caller's team. Names are unique per team,
        so ``team`` is needed only when several of the caller's teams could be meant."""
        team_id: int | None = None
        if team is not None:
            team_id = session.execute(select(Team.id).where(Team.name == team)).scalar()
            if team_id is None or team_id not in principal.roles:
                raise NotFound(f"team {team!r} not found")
        teams = [team_id] if team_id is not None else principal.teams()
        found = session.execute(
            select(Project.id, Project.team_id).where(
                Project.name == name, col(Project.team_id).in_(teams)
            )
        ).all()
        if len(found) > 1:
            raise Invalid("team", f"several of your teams have a project {name!r}: name the team")
        if found:
            team_id = int(found[0][1])
        elif team_id is None:
            writable = principal.teams(write=True)
            if not writable:
                raise Forbidden("you are not an owner or member of any team")
            if len(writable) > 1:
                raise Invalid("team", f"name the team for the new project {name!r}")
            team_id = writable[0]
        role = principal.roles[team_id]
        if role not in WRITE_ROLES:
            raise Forbidden(f"you are a {role} of project {name!r}'s team: read only")
        if found:
            return int(found[0][0])
        try:
            with session.begin_nested():
                new = Project(name=name, team_id=team_id)
                session.add(new)
            assert new.id is not None
            return new.id
        except IntegrityError:  # created concurrently by another request: use that one
            return int(
                session.execute(
                    select(Project.id).where(Project.name == name, Project.team_id == team_id)
                ).scalar_one()
            )

    def get_run(self, run_id: int) -> RunOut:
        with Session(self.engine) as session:
            return self._run_out(session, self._run(session, run_id))

    def run_revision(self, run_id: int) -> int:
        """The cheapest possible read, for ETag checks."""
        with self.engine.connect() as conn:
            rev = conn.execute(_RUN_REVISION, {"run_id": run_id}).scalar()
        if rev is None:
            raise NotFound(f"run {run_id} not found")
        return int(rev)

    def list_runs(
        self,
        filters: RunFilter,
        sort: str = "-created_at",
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[RunOut], str | None]:
        if sort not in SORTS:
            raise Invalid("sort", f"must be one of {sorted(SORTS)}")
        field = sort.lstrip("-")
        descending = sort.startswith("-")
        column = {"created_at": Run.created_at, "name": Run.name, "id": Run.id}[field]
        query = select(Run).join(Project, col(Project.id) == Run.project_id)
        if filters.teams is not None:
            query = query.where(col(Project.team_id).in_(filters.teams))
        if filters.project:
            query = query.where(Project.name == filters.project)
        if filters.created_by:
            query = query.join(User, col(User.id) == Run.created_by_id).where(
                User.name == filters.created_by
            )
        if filters.status:
            query = query.where(col(Run.status).in_(filters.status))
        for tag in filters.tags:
            query = query.where(
                select(RunTag.run_id).where(RunTag.run_id == Run.id, RunTag.tag == tag).exists()
            )
        if filters.name:
            query = query.where(func.lower(Run.name).contains(filters.name.lower()))
        if filters.created_after:
            query = query.where(Run.created_at >= filters.created_after)
        if filters.created_before:
            query = query.where(Run.created_at < filters.created_before)
        if filters.spec_hash:
            query = query.where(Run.spec_hash == filters.spec_hash)
        for clause in _parse_where(filters.where):
            query = query.where(clause)
        if cursor:
            value, last_id = _decode_cursor(cursor, field)
            key = tuple_(column, Run.id)
            query = query.where(key < (value, last_id) if descending else key > (value, last_id))
        order = (column.desc(), col(Run.id).desc()) if descending else (column, col(Run.id))
        query = query.order_by(*order).limit(limit + 1)
        with Session(self.engine) as session:
            runs = list(session.execute(query).scalars())
            page = runs[:limit]
            outs = self._run_outs(session, page)
        next_cursor = None
        if len(runs) > limit:
            last = page[-1]
            next_cursor = _encode_cursor(getattr(last, field), last.id)
        return outs, next_cursor

    def update_run(self, run_id: int, patch: RunPatch) -> RunOut:
        with Session(self.engine) as session:
            run = self._run(session, run_id)
            if patch.name is not None:
                run.name = patch.name
            if patch.notes is not None:
                run.notes = patch.notes
            if patch.tags is not None:
                session.execute(delete(RunTag).where(col(RunTag.run_id) == run_id))
                for tag in dict.fromkeys(patch.tags):
                    session.add(RunTag(run_id=run_id, tag=tag))
            run.revision += 1
            session.commit()
            return self._run_out(session, run)

    def cancel_run(self, run_id: int) -> RunOut:
        with Session(self.engine) as session:
            run = self._run(session, run_id, lock=True)
            if run.status == "cancelled":
                return self._run_out(session, run)
            if run.status in FINISHED:
                raise Conflict(f"run {run_id} already {run.status}; nothing to cancel")
            run.status = "cancelled"
            run.finished_at = utcnow()
            run.failure_reason = "cancelled by user"
            run.revision += 1
            self._event(session, run_id, "status", None, {"status": "cancelled"})
            session.commit()
            return self._run_out(session, run)

    def delete_run(self, run_id: int) -> None:
        """The run and everything it holds, its worker token included (a worker still training
        it gets 401 at its next post, and stops). Explicit deletes, not only ON DELETE CASCADE,
        so a database with foreign keys off loses nothing to orphans either."""
        with Session(self.engine) as session:
            self._run(session, run_id, lock=True)
            for model in (
                MetricPoint,
                MetricSeries,
                MetricRollup,
                Histogram,
                Evaluation,
                RunEvent,
                RunTag,
                ApiToken,
            ):
                session.execute(delete(model).where(model.run_id == run_id))
            session.execute(delete(Run).where(col(Run.id) == run_id))
            session.commit()

    def set_status(self, run_id: int, update: StatusUpdate) -> RunOut:
        """Worker-reported transitions. ``running`` starts a new attempt (from ``queued`` only);
        later posts name that attempt, so a redelivered or zombie worker cannot write into it."""
        now = utcnow()
        with Session(self.engine) as session:
            run = self._run(session, run_id, lock=True)
            if run.status in FINISHED:
                if run.status == update.status:  # a retried final post: already done
                    return self._run_out(session, run)
                raise Conflict(f"run {run_id} is {run.status}; it cannot become {update.status}")
            if update.status == "running":
                if run.status == "running":
                    if update.attempt == run.attempt:  # a retried start
                        return self._run_out(session, run)
                    raise Conflict(f"run {run_id} is already running (attempt {run.attempt})")
                run.attempt += 1
                run.started_at = now
                run.worker_host = update.worker_host
                run.device = update.device
                run.environment_json = (
                    json.dumps(update.environment) if update.environment else None
                )
                run.status = "running"
                self._event(
                    session,
                    run_id,
                    "status",
                    None,
                    {
                        "status": "running",
                        "attempt": run.attempt,
                        "worker_host": update.worker_host,
                        "device": update.device,
                    },
                )
            else:
                if update.status in ("heartbeat", "succeeded") and run.status != "running":
                    raise Conflict(f"run {run_id} is {run.status}, not running")
                self._check_attempt(run, update.attempt)
                if update.status in ("succeeded", "failed"):
                    run.status = update.status
                    run.finished_at = now
                    run.failure_reason = update.reason if update.status == "failed" else None
                    self._event(
                        session,
                        run_id,
                        "status",
                        None,
                        {"status": update.status, "reason": update.reason, "attempt": run.attempt},
                    )
            if update.epoch is not None:
                run.progress_epoch = update.epoch
            if update.epochs is not None:
                run.progress_total = update.epochs
            run.heartbeat_at = now
            run.revision += 1
            session.commit()
            return self._run_out(session, run)

    def reap_stale(self, timeout_s: float, max_attempts: int) -> list[int]:
        """Runs whose worker went silent (no heartbeat for ``timeout_s``) do not stay running:
        with attempts left they go back to ``queued`` with their data cleared, to be delivered
        again by the reconciler (``claim_delivery``); otherwise they fail with the reason.
        Returns the ids of the requeued runs. The caller decides whether the API has been
        listening long enough to judge silence at all (api.main)."""
        cutoff = utcnow() - timedelta(seconds=timeout_s)
        requeued = []
        with Session(self.engine) as session:
            stale = (
                session.execute(
                    select(Run.id).where(Run.status == "running", col(Run.heartbeat_at) < cutoff)
                )
                .scalars()
                .all()
            )
        for run_id in stale:
            with Session(self.engine) as session:
                run = self._run(session, run_id, lock=True)
                if (
                    run.status != "running"
                    or run.heartbeat_at is None
                    or run.heartbeat_at >= cutoff
                ):
                    continue  # it moved on while we looked
                silent = f"no heartbeat from {run.worker_host or 'its worker'} for {timeout_s:g}s"
                if run.attempt < max_attempts:
                    reason = f"worker lost ({silent}) in attempt {run.attempt}; requeued"
                    self._back_to_queue(session, run, reason)
                    requeued.append(run_id)
                else:
                    run.status = "failed"
                    run.finished_at = utcnow()
                    run.failure_reason = (
                        f"worker lost ({silent}) in attempt {run.attempt} of "
                        f"{max_attempts}; not retried"
                    )
                    self._event(
                        session,
                        run_id,
                        "status",
                        None,
                        {"status": "failed", "reason": run.failure_reason, "attempt": run.attempt},
                    )
                run.revision += 1
                session.commit()
        return requeued

    def retry_run(self, run_id: int, who: str) -> RunOut:
        """A failed or cancelled run, or one stuck in the queue, goes back to the queue as a new
        attempt with its partial data cleared; the event says who asked."""
        with Session(self.engine) as session:
            run = self._run(session, run_id, lock=True)
            if run.status in ("running", "succeeded"):
                raise Conflict(
                    f"run {run_id} is {run.status}; only failed, cancelled or queued "
                    "runs can be retried"
                )
            self._back_to_queue(session, run, f"retry asked by {who}", {"asked_by": who})
            run.finished_at = None
            run.failure_reason = None
            run.revision += 1
            session.commit()
            return self._run_out(session, run)

    def _back_to_queue(
        self, session: Session, run: Run, reason: str, extra: dict[str, Any] | None = None
    ) -> None:
        """Queued again, to start from scratch: its data cleared, its workers' tokens revoked
        (a lost worker that wakes up cannot write), and not handed over yet."""
        assert run.id is not None
        self._clear_data(session, run.id)
        run.status = "queued"
        run.started_at = run.heartbeat_at = None
        run.worker_host = run.device = None
        run.progress_epoch = 0
        run.enqueued_at = None
        run.diverged_epoch = None
        self._event(
            session,
            run.id,
            "status",
            None,
            {"status": "queued", "reason": reason, "attempt": run.attempt, **(extra or {})},
        )
        session.execute(
            update(ApiToken)
            .where(col(ApiToken.run_id) == run.id, col(ApiToken.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )

    # ---- delivery: the database is the source of truth, the queue is reconciled with it ----

    def due_deliveries(self, redeliver_after_s: float, limit: int = 100) -> list[int]:
        """Queued runs never handed to the queue (or whose hand-over failed), and those handed
        over so long ago that the message must have been lost (no worker claimed them)."""
        due = _due_for_delivery(utcnow() - timedelta(seconds=redeliver_after_s))
        with self.engine.connect() as conn:
            rows = conn.execute(select(Run.id).where(due).order_by(Run.id).limit(limit))
            return [int(r) for r in rows.scalars()]

    def claim_delivery(self, run_id: int, redeliver_after_s: float) -> tuple[str, str] | None:
        """Mark a due run as handed over, now, and mint the token its worker will get; (spec
        JSON, token), or None if another API process claimed it first or it is no longer due.
        One conditional UPDATE decides, so several API processes never send it twice at once
        (a duplicate would be harmless anyway: the attempt rule lets one worker start it)."""
        now = utcnow()
        due = _due_for_delivery(now - timedelta(seconds=redeliver_after_s))
        with Session(self.engine) as session:
            claimed = session.execute(
                update(Run).where(col(Run.id) == run_id, due).values(enqueued_at=now)
            )
            if not claimed.rowcount:
                return None
            spec_json = session.execute(select(Run.spec_json).where(Run.id == run_id)).scalar_one()
            token = self._mint_worker(session, run_id)
            session.commit()
        return spec_json, token

    def undo_delivery(self, run_id: int) -> None:
        """The hand-over failed (the broker was away): due again at the next reconciliation."""
        with Session(self.engine) as session:
            session.execute(
                update(Run)
                .where(col(Run.id) == run_id, Run.status == "queued")
                .values(enqueued_at=None)
            )
            session.commit()

    def _clear_data(self, session: Session, run_id: int) -> None:
        for model in (MetricPoint, MetricSeries, MetricRollup, Histogram, Evaluation):
            session.execute(delete(model).where(model.run_id == run_id))
        session.execute(
            delete(RunEvent).where(RunEvent.run_id == run_id, RunEvent.kind != "status")
        )

    @staticmethod
    def _check_attempt(run: Run, attempt: int | None) -> None:
        if attempt is not None and attempt != run.attempt:
            raise Conflict(f"run {run.id} is on attempt {run.attempt}; attempt {attempt} is stale")

    # ---- metrics ----

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
            # The run's row lock serialises ingestion per run, so "which points are new" below
            # stays true until commit (SQLite: the write lock, taken by BEGIN IMMEDIATE).
            self._writable_run(session, run_id, lock=True, attempt=attempt)
            conn = session.connection()
            new = self._new_points(conn, run_id, unique)
            if new:
                self._insert_points(conn, [(run_id, k, s, v, w) for k, s, v, w in new])
                self._update_summaries(conn, run_id, [(k, s, v) for k, s, v, _ in new])
            # Nothing new (a retried post) leaves the revision, and so every ETag, unchanged.
            revision = self._bump(session, run_id) if new else self._revision(session, run_id)
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
        existing: set[tuple[str, int]] = set()
        for key, (lo, hi) in spans.items():
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
        # Level 1 from the points; every coarser level (and the series) by merging the finer
        # one: ~1.07 aggregations per point instead of one per level.
        width = _ROLLUP_BASE
        rollups: dict[tuple[str, int, int], _Agg] = {}
        level_aggs: dict[tuple[str, int], _Agg] = {}
        for key, step, value in points:
            bk = (key, step // width)
            agg = level_aggs.get(bk)
            if agg is None:
                agg = level_aggs[bk] = _Agg(step)
            agg.add(step, value)
        for level in ROLLUP_LEVELS:
            for (key, bucket), agg in level_aggs.items():
                rollups[(key, level, bucket)] = agg
            if level == ROLLUP_LEVELS[-1]:
                break
            coarser: dict[tuple[str, int], _Agg] = {}
            for (key, bucket), agg in level_aggs.items():
                ck = (key, bucket // _ROLLUP_BASE)
                target = coarser.get(ck)
                if target is None:
                    coarser[ck] = agg.copy()
                else:
                    target.merge(agg)
            level_aggs = coarser
        series: dict[str, _Agg] = {}
        for (key, _), agg in level_aggs.items():
            target = series.get(key)
            if target is None:
                series[key] = agg.copy()
            else:
                target.merge(agg)

        least, greatest = self._least_greatest()
        s_ins = self._insert(MetricSeries.__table__)
        s_ex = s_ins.excluded
        t = MetricSeries.__table__.c
        conn.execute(
            s_ins.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={
                    "count": t["count"] + s_ex["count"],
                    "first_step": least(t.first_step, s_ex.first_step),
                    "last_step": greatest(t.last_step, s_ex.last_step),
                    "last_value": case(
                        (s_ex.last_step > t.last_step, s_ex.last_value), else_=t.last_value
                    ),
                    **_minmax_set(t, s_ex),
                },
            ),
            [{"run_id": run_id, "key": k, **a.series_row()} for k, a in series.items()],
        )
        r_ins = self._insert(MetricRollup.__table__)
        r_ex = r_ins.excluded
        rt = MetricRollup.__table__.c
        conn.execute(
            r_ins.on_conflict_do_update(
                index_elements=["run_id", "key", "level", "bucket"],
                set_={
                    "count": rt["count"] + r_ex["count"],
                    "first_step": least(rt.first_step, r_ex.first_step),
                    **_minmax_set(rt, r_ex),
                },
            ),
            [
                {"run_id": run_id, "key": k, "level": lvl, "bucket": b, **a.rollup_row()}
                for (k, lvl, b), a in rollups.items()
            ],
        )

    def get_curves(
        self,
        run_id: int,
        keys: Sequence[str] | None,
        max_points: int,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Series]:
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
                    out.append(
                        Series(key=key, steps=[], values=[], total_points=0, downsampled=False)
                    )
                    continue
                out.append(self._series(session, run_id, s, max_points, start, end))
            return out

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
            return Series(key=s.key, steps=[], values=[], total_points=s.count, downsampled=False)
        if s.count <= max_points or hi - lo + 1 <= max_points:
            rows = session.execute(
                select(MetricPoint.step, MetricPoint.value)
                .where(
                    MetricPoint.run_id == run_id,
                    MetricPoint.key == s.key,
                    col(MetricPoint.step).between(lo, hi),
                )
                .order_by(MetricPoint.step)
            ).all()
            return Series(
                key=s.key,
                steps=[r[0] for r in rows],
                values=[_null_to_nan(r[1]) for r in rows],
                total_points=s.count,
                downsampled=False,
            )
        n_buckets = max(1, max_points // 2)
        width = -(-(hi - lo + 1) // n_buckets)  # ceil
        level = max((lv for lv in ROLLUP_LEVELS if _ROLLUP_BASE**lv <= width), default=0)
        if level == 0:
            # Fewer than 16 steps per output bucket: at most 8 * max_points raw rows.
            raw = session.execute(
                select(MetricPoint.step, MetricPoint.value).where(
                    MetricPoint.run_id == run_id,
                    MetricPoint.key == s.key,
                    col(MetricPoint.step).between(lo, hi),
                )
            ).all()
            parts: Iterable[tuple[int, int | None, float | None, int | None, float | None]] = (
                (r[0], r[0], r[1], r[0], r[1]) for r in raw
            )
        else:
            bw = _ROLLUP_BASE**level
            # Thousands of rows on a hot read path: fetched through the driver directly, which
            # is several times cheaper per row than SQLAlchemy's result processing.
            mark = "?" if self._dialect == "sqlite" else "%s"
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
        steps, values = _merge_buckets(parts, lo, hi, width, n_buckets)
        return Series(key=s.key, steps=steps, values=values, total_points=s.count, downsampled=True)

    def iter_metric_batches(self, run_id: int, size: int = 10_000) -> Iterator[list[Any]]:
        """Every point of a run, ordered by key then step, in batches of ``size`` rows (NaN as
        None), for exports of any length. Straight from the driver's cursor (SQLAlchemy's row
        processing doubled the time); on PostgreSQL a server-side cursor, so memory stays flat.
        """
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = (
            "SELECT key, step, value, wall_time FROM metric_point "
            f"WHERE run_id = {mark} ORDER BY key, step"
        )
        with self.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            named = {"name": "fitlens_export"} if self._dialect == "postgresql" else {}
            cursor = dbapi.cursor(**named)
            try:
                cursor.execute(sql, (run_id,))
                while batch := cursor.fetchmany(size):
                    yield list(batch)
            finally:
                cursor.close()

    # ---- histograms ----

    def add_histograms(
        self, run_id: int, histograms: Sequence[HistogramIn], attempt: int | None = None
    ) -> tuple[int, int]:
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        for h in histograms:
            rows.setdefault(
                (h.param, h.step),
                {
                    "run_id": run_id,
                    "param": h.param,
                    "step": h.step,
                    "edges_json": json.dumps(h.edges),
                    "counts_json": json.dumps(h.counts),
                    "numel": h.numel if h.numel is not None else round(sum(h.counts)),
                    "nan_count": h.nan_count,
                    "posinf_count": h.posinf_count,
                    "neginf_count": h.neginf_count,
                    **{
                        k: _finite_or_none(getattr(h, k))
                        for k in ("mean", "std", "min", "max", "l1", "l2", "near_zero")
                    },
                },
            )
        with Session(self.engine) as session:
            self._writable_run(session, run_id, attempt=attempt)
            inserted = 0
            if rows:
                stmt = (
                    self._insert(Histogram)
                    .on_conflict_do_nothing(index_elements=["run_id", "param", "step"])
                    .returning(Histogram.id)
                )
                inserted = len(session.execute(stmt, list(rows.values())).all())
            if inserted:
                self._bump(session, run_id)
            session.commit()
        return inserted, len(histograms) - inserted

    def histogram_index(self, run_id: int) -> HistogramIndex:
        with Session(self.engine) as session:
            self._run(session, run_id)
            rows = session.execute(
                select(Histogram.param, Histogram.step)
                .where(Histogram.run_id == run_id)
                .order_by(Histogram.param, Histogram.step)
            ).all()
        params: dict[str, list[int]] = {}
        for param, step in rows:
            params.setdefault(param, []).append(step)
        return HistogramIndex(run_id=run_id, params=params)

    def get_histograms(
        self, run_id: int, param: str, steps: Sequence[int] | None, shared_bins: int | None
    ) -> HistogramSeries:
        with Session(self.engine) as session:
            self._run(session, run_id)
            query = select(Histogram).where(Histogram.run_id == run_id, Histogram.param == param)
            if steps:
                query = query.where(col(Histogram.step).in_(steps))
            rows = list(session.execute(query.order_by(Histogram.step)).scalars())
        items = [_histogram_step(h) for h in rows]
        if shared_bins and items:
            edges = _shared_edges([i.edges for i in items], shared_bins)
            items = [
                i.model_copy(update={"edges": edges, "counts": rebin(i.edges, i.counts, edges)})
                for i in items
            ]
        return HistogramSeries(
            run_id=run_id, param=param, shared_edges=bool(shared_bins), steps=items
        )

    def overlay_histograms(
        self, run_ids: Sequence[int], param: str, step: int | None, bins: int
    ) -> HistogramOverlay:
        picked: list[tuple[Run, Histogram]] = []
        with Session(self.engine) as session:
            for run_id in run_ids:
                run = self._run(session, run_id)
                query = select(Histogram).where(
                    Histogram.run_id == run_id, Histogram.param == param
                )
                if step is not None:
                    query = query.where(Histogram.step == step)
                h = (
                    session.execute(query.order_by(col(Histogram.step).desc()).limit(1))
                    .scalars()
                    .first()
                )
                if h is None:
                    at = f" at step {step}" if step is not None else ""
                    raise NotFound(f"run {run_id} has no histogram of {param}{at}")
                picked.append((run, h))
        steps = [_histogram_step(h) for _, h in picked]
        edges = _shared_edges([s.edges for s in steps], bins)
        return HistogramOverlay(
            param=param,
            edges=edges,
            runs=[
                OverlayRun(
                    run_id=run.id or 0,
                    name=run.name,
                    step=s.step,
                    numel=s.numel,
                    counts=rebin(s.edges, s.counts, edges),
                )
                for (run, _), s in zip(picked, steps, strict=True)
            ],
        )

    # ---- evaluation and events ----

    def set_evaluation(
        self, run_id: int, evaluation: EvaluationBody, attempt: int | None = None
    ) -> None:
        payload = evaluation.model_dump_json()
        with Session(self.engine) as session:
            self._writable_run(session, run_id, attempt=attempt)
            existing = session.get(Evaluation, run_id)
            if existing is None:
                session.add(Evaluation(run_id=run_id, payload_json=payload))
            else:
                existing.payload_json = payload
            self._bump(session, run_id)
            session.commit()

    def get_evaluation(self, run_id: int) -> EvaluationBody:
        with Session(self.engine) as session:
            self._run(session, run_id)
            row = session.get(Evaluation, run_id)
            if row is None:
                raise NotFound(f"run {run_id} has no evaluation yet")
            return EvaluationBody.model_validate_json(row.payload_json)

    def add_events(self, run_id: int, events: Sequence[EventIn], attempt: int | None = None) -> int:
        with Session(self.engine) as session:
            run = self._writable_run(session, run_id, attempt=attempt)
            existing = {
                (k, s)
                for k, s in session.execute(
                    select(RunEvent.kind, RunEvent.step).where(RunEvent.run_id == run_id)
                ).all()
            }
            added = 0
            for e in events:
                if (e.kind, e.step) in existing:
                    continue  # idempotent: one event per (kind, step)
                existing.add((e.kind, e.step))
                self._event(session, run_id, e.kind, e.step, e.payload)
                first = run.diverged_epoch is None or e.step < run.diverged_epoch
                if e.kind == "diverged" and first:
                    run.diverged_epoch = e.step
                added += 1
            if added:
                self._bump(session, run_id)
            session.commit()
        return added

    def get_events(self, run_id: int, kind: str | None) -> list[EventOut]:
        with Session(self.engine) as session:
            self._run(session, run_id)
            query = select(RunEvent).where(RunEvent.run_id == run_id)
            if kind:
                query = query.where(RunEvent.kind == kind)
            rows = session.execute(query.order_by(RunEvent.id)).scalars()
            return [
                EventOut(
                    kind=r.kind,
                    step=r.step,
                    payload=json.loads(r.payload_json),
                    created_at=r.created_at,
                )
                for r in rows
            ]

    # ---- comparison ----

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
                    ),
                    series=self.get_curves(out.id, keys, max_points),
                )
            )
        return result

    # ---- authorization ----

    def authorize_run(self, principal: Principal, run_id: int, need: str) -> int:
        """Check that ``principal`` may ``need`` ("read", "write", "owner" or "worker") run
        ``run_id``;
        returns the run's revision (so an ETag check costs no second query). A run the caller
        cannot see is NotFound, never Forbidden: its existence does not leak."""
        with self.engine.connect() as conn:
            row = conn.execute(_RUN_ACCESS, {"run_id": run_id}).first()
        missing = NotFound(f"run {run_id} not found")
        if row is None:
            raise missing
        revision, team_id = int(row[0]), row[1]
        if principal.is_worker:
            if principal.run_id != run_id:
                raise missing
            if need == "write":
                raise Forbidden("a worker token can only report on its run")
            return revision
        role = principal.roles.get(team_id)
        if role is None:
            raise missing
        if need == "owner" and role != "owner":
            raise Forbidden(f"you are a {role} of this run's team: only its owners may do this")
        if need != "read" and role not in WRITE_ROLES:
            raise Forbidden(f"you are a {role} of this run's team: read only")
        return revision

    # ---- helpers ----

    def _run(self, session: Session, run_id: int, lock: bool = False) -> Run:
        if lock:
            # A no-op write takes the lock before anything is read: the run's row lock in
            # PostgreSQL, the database write lock in SQLite. Writers to one run then go one at a
            # time, so what they read stays true until they commit.
            session.execute(update(Run).where(col(Run.id) == run_id).values(revision=Run.revision))
        query = select(Run).where(Run.id == run_id)
        run = session.execute(query).scalars().first()
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    def _writable_run(
        self, session: Session, run_id: int, lock: bool = False, attempt: int | None = None
    ) -> Run:
        run = self._run(session, run_id, lock=lock)
        if run.status in FINISHED:
            raise Conflict(f"run {run_id} is {run.status}; it takes no more data")
        self._check_attempt(run, attempt)
        return run

    def _bump(self, session: Session, run_id: int) -> int:
        session.execute(update(Run).where(col(Run.id) == run_id).values(revision=Run.revision + 1))
        return self._revision(session, run_id)

    def _revision(self, session: Session, run_id: int) -> int:
        return int(session.execute(select(Run.revision).where(Run.id == run_id)).scalar_one())

    def _event(
        self, session: Session, run_id: int, kind: str, step: int | None, payload: dict[str, Any]
    ) -> None:
        session.add(
            RunEvent(
                run_id=run_id, kind=kind, step=step, payload_json=json.dumps(payload, default=str)
            )
        )

    def _insert(self, model: Any) -> Any:
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(model)

    def _least_greatest(self) -> tuple[Any, Any]:
        # Two-argument MIN/MAX are scalar functions in SQLite; PostgreSQL calls them LEAST/GREATEST.
        if self._dialect == "postgresql":
            return func.least, func.greatest
        return func.min, func.max

    def _run_out(self, session: Session, run: Run) -> RunOut:
        return self._run_outs(session, [run])[0]

    def _run_outs(self, session: Session, runs: Sequence[Run]) -> list[RunOut]:
        ids = [r.id for r in runs]
        tags: dict[int, list[str]] = {}
        projects: dict[int, str] = {}
        users: dict[int | None, str] = {}
        if ids:
            for run_id, tag in session.execute(
                select(RunTag.run_id, RunTag.tag)
                .where(col(RunTag.run_id).in_(ids))
                .order_by(RunTag.tag)
            ):
                tags.setdefault(run_id, []).append(tag)
            creators = {r.created_by_id for r in runs if r.created_by_id is not None}
            users = dict(
                session.execute(select(User.id, User.name).where(col(User.id).in_(creators))).all()
            )
            pids = {r.project_id for r in runs}
            for pid, name in session.execute(
                select(Project.id, Project.name).where(col(Project.id).in_(pids))
            ):
                projects[pid] = name
        return [
            RunOut(
                id=r.id or 0,
                project=projects.get(r.project_id, ""),
                name=r.name,
                created_by=users.get(r.created_by_id),
                status=r.status,
                spec=json.loads(r.spec_json),
                spec_hash=r.spec_hash,
                tags=tags.get(r.id or 0, []),
                notes=r.notes,
                created_at=r.created_at,
                started_at=r.started_at,
                finished_at=r.finished_at,
                heartbeat_at=r.heartbeat_at,
                worker_host=r.worker_host,
                device=r.device,
                progress=Progress(epoch=r.progress_epoch, epochs=r.progress_total),
                failure_reason=r.failure_reason,
                attempt=r.attempt,
                revision=r.revision,
                enqueued_at=r.enqueued_at,
                environment=json.loads(r.environment_json) if r.environment_json else None,
                diverged_epoch=r.diverged_epoch,
            )
            for r in runs
        ]


class _Agg:
    """Running count / first / last / min / max of (step, value) pairs; NaN (None) uncounted
    in min and max."""

    __slots__ = ("count", "first", "last", "last_value", "max_s", "max_v", "min_s", "min_v")

    def __init__(self, step: int) -> None:
        self.count = 0
        self.first = self.last = step
        self.last_value: float | None = None
        self.min_s: int | None = None
        self.min_v: float | None = None
        self.max_s: int | None = None
        self.max_v: float | None = None

    def add(self, step: int, value: float | None) -> None:
        self.count += 1
        if step < self.first:
            self.first = step
        if step >= self.last:
            self.last, self.last_value = step, value
        if value is not None:
            if self.min_v is None or value < self.min_v:
                self.min_v, self.min_s = value, step
            if self.max_v is None or value > self.max_v:
                self.max_v, self.max_s = value, step

    def copy(self) -> _Agg:
        other = _Agg(self.first)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def merge(self, other: _Agg) -> None:
        self.count += other.count
        self.first = min(self.first, other.first)
        if other.last >= self.last:
            self.last, self.last_value = other.last, other.last_value
        if other.min_v is not None and (self.min_v is None or other.min_v < self.min_v):
            self.min_v, self.min_s = other.min_v, other.min_s
        if other.max_v is not None and (self.max_v is None or other.max_v > self.max_v):
            self.max_v, self.max_s = other.max_v, other.max_s

    def series_row(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_step": self.first,
            "last_step": self.last,
            "last_value": self.last_value,
            "min_value": self.min_v,
            "min_step": self.min_s,
            "max_value": self.max_v,
            "max_step": self.max_s,
        }

    def rollup_row(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first_step": self.first,
            "min_value": self.min_v,
            "min_step": self.min_s,
            "max_value": self.max_v,
            "max_step": self.max_s,
        }


def _minmax_set(t: Any, ex: Any) -> dict[str, Any]:
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


def _merge_buckets(
    parts: Iterable[tuple[int, int | None, float | None, int | None, float | None]],
    lo: int,
    hi: int,
    width: int,
    n_buckets: int,
) -> tuple[list[int], list[float]]:
    """Merge (first_step, min_step, min, max_step, max) parts into output buckets of ``width``
    steps; each bucket yields its min and max point, in step order."""
    mins: dict[int, tuple[float, int]] = {}
    maxs: dict[int, tuple[float, int]] = {}
    empty: dict[int, int] = {}  # buckets holding only NaN points: shown as one NaN
    for first, min_s, min_v, max_s, max_v in parts:
        b = min(max((first - lo) // width, 0), n_buckets - 1)
        if min_v is None or min_s is None or max_s is None or max_v is None:
            if lo <= first <= hi:
                empty.setdefault(b, first)
            continue
        if lo <= min_s <= hi and (b not in mins or min_v < mins[b][0]):
            mins[b] = (min_v, min_s)
        if lo <= max_s <= hi and (b not in maxs or max_v > maxs[b][0]):
            maxs[b] = (max_v, max_s)
    points: dict[int, float] = {}
    for b, step in empty.items():
        if b not in mins and b not in maxs:
            points[step] = math.nan
    for table in (mins, maxs):
        for value, step in table.values():
            points[step] = value
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def _histogram_step(h: Histogram) -> HistogramStep:
    return HistogramStep(
        step=h.step,
        edges=json.loads(h.edges_json),
        counts=json.loads(h.counts_json),
        numel=h.numel,
        mean=h.mean,
        std=h.std,
        min=h.min,
        max=h.max,
        l1=h.l1,
        l2=h.l2,
        near_zero=h.near_zero,
        nan_count=h.nan_count,
        posinf_count=h.posinf_count,
        neginf_count=h.neginf_count,
    )


def _shared_edges(all_edges: Sequence[Sequence[float]], bins: int) -> list[float]:
    lo = min(e[0] for e in all_edges)
    hi = max(e[-1] for e in all_edges)
    # Interpolated, not lo + (hi - lo) * t: hi - lo overflows to inf for edges near +-1e308.
    return [lo * (1 - i / bins) + hi * (i / bins) for i in range(bins + 1)]


def rebin(
    edges: Sequence[float], counts: Sequence[float], new_edges: Sequence[float]
) -> list[float]:
    """Move counts onto new bin edges, spreading each source bin's count over the new bins in
    proportion to their overlap (a uniform density within each source bin). The total is kept."""
    out = [0.0] * (len(new_edges) - 1)
    j = 0
    for i, count in enumerate(counts):
        a, b = edges[i], edges[i + 1]
        if count == 0 or b <= a:
            continue
        while j > 0 and new_edges[j] > a:
            j -= 1
        while j < len(out) and new_edges[j + 1] <= a:
            j += 1
        k = j
        # Halved before subtracting: a width like 1e308 - (-1e308) would overflow to inf.
        width = b / 2 - a / 2
        if width <= 0:  # a bin narrower than the smallest float: it is a point
            out[min(j, len(out) - 1)] += count
            continue
        while k < len(out) and new_edges[k] < b:
            overlap = min(b, new_edges[k + 1]) / 2 - max(a, new_edges[k]) / 2
            if overlap > 0:
                out[k] += count * (overlap / width)
            k += 1
    # Float rounding can leave a sliver of the total outside [lo, hi]; put it back.
    total, placed = float(sum(counts)), sum(out)
    if placed > 0 and total > 0:
        out = [c * total / placed for c in out]
    return out


# Built once: constructing the statement costs more than running it (it runs on every request).
_RUN_REVISION = select(Run.revision).where(col(Run.id) == bindparam("run_id"))
_RUN_ACCESS = (
    select(Run.revision, Project.team_id)
    .join(Project, col(Project.id) == Run.project_id)
    .where(col(Run.id) == bindparam("run_id"))
)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _parse_where(where: str | None) -> list[Any]:
    if not where:
        return []
    clauses = []
    for part in where.split(","):
        if not part.strip():
            continue
        m = _WHERE.match(part)
        if not m:
            raise Invalid("where", f"cannot read {part!r}; use e.g. dropout>0,dataset=digits")
        field, op, raw = m.groups()
        if field not in FILTERABLE:
            raise Invalid("where", f"unknown field {field!r}; one of {sorted(FILTERABLE)}")
        column = getattr(Run, field)
        value: Any = raw
        if FILTERABLE[field]:
            if field == "early_stopping":
                value = raw.lower() in ("1", "true", "yes")
            else:
                try:
                    value = float(raw)
                except ValueError:
                    raise Invalid("where", f"{field} needs a number, not {raw!r}") from None
        elif op not in ("=", "!="):
            raise Invalid("where", f"{field} takes = or != only")
        clauses.append(
            {
                "=": column == value,
                "!=": column != value,
                ">": column > value,
                ">=": column >= value,
                "<": column < value,
                "<=": column <= value,
            }[op]
        )
    return clauses


def _encode_cursor(value: Any, run_id: int | None) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, run_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, field: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, run_id = json.loads(base64.urlsafe_b64decode(padded))
        if field == "created_at":
            value = datetime.fromisoformat(value)
        elif field == "id":
            value = int(value)
        elif not isinstance(value, str):
            raise TypeError
        return value, int(run_id)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise Invalid("cursor", "not a cursor this endpoint returned") from None
