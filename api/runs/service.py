"""Runs: jobs in as queued runs (filed in a project of the caller's team), listed, edited,
cancelled and deleted, and the events that tell a run's story (status changes, learning-rate
cuts, divergence).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlmodel import Session, col

from api.core.db import utcnow
from api.core.exceptions import Conflict, Invalid
from api.core.schemas import IngestResult
from api.core.store import StoreBase
from api.diagnosis.models import RunDiagnosis
from api.people.auth import Principal
from api.people.models import Project, Team, User
from api.people.projects import ProjectStore
from api.people.tokens import mint_worker_token
from api.runs.access import RunAccess
from api.runs.budget import check_team_budget, storage_estimate
from api.runs.filters import (
    SORTS,
    SUMMARY_SORTS,
    RunFilter,
    encode_cursor,
    order_and_after,
    parse_where,
    sort_column,
    where_needs_results,
)
from api.runs.lifecycle import run_tables
from api.runs.models import FINISHED, Run, RunEvent, RunTag
from api.runs.params import param_columns
from api.runs.schemas import EventIn, EventOut, RunOut, RunPatch, RunStart
from trainer.spec import JobSpec


class RunStore(StoreBase):
    """Runs in and out; built with the runs' access (their rows, revisions and events) and the
    projects' store (where a new run is filed)."""

    def __init__(self, access: RunAccess, projects: ProjectStore) -> None:
        super().__init__(access.engine)
        self.access = access
        self.projects = projects
        self._deleted: list[Callable[[int], None]] = []

    def on_run_deleted(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(run_id)`` once a run's deletion is committed (files kept outside
        the database: checkpoints)."""
        self._deleted.append(listener)

    def create_run(
        self,
        spec: JobSpec,
        project: str,
        name: str | None,
        tags: Sequence[str],
        notes: str,
        principal: Principal,
        team: str | None = None,
        team_budget_mb: int | None = None,
    ) -> tuple[RunOut, str]:
        """Store a queued run; returns it and the run's worker token (shown once, never stored
        in clear): the only credential its worker gets. A 422 if the team's runs would then
        store more than ``team_budget_mb``."""
        with Session(self.engine) as session:
            project_id = self.projects.project_to_file_in(session, project, principal, team)
            run, token = self.add_queued_run(
                session, project_id, spec, name, tags, notes, principal
            )
            check_team_budget(self.team_storage(session, project_id), team_budget_mb)
            session.commit()
            return self.access.run_out(session, run), token

    def start_client_run(
        self,
        body: RunStart,
        principal: Principal,
        project_id: int | None = None,
        started_at: datetime | None = None,
    ) -> RunOut:
        """A run the user trains in their own loop: running at once (attempt 1), no spec, no
        queue, no worker token; the client posts its data with the user's token. Filed in
        ``project_id`` when given (the caller must write there), else by ``body.project``."""
        now = utcnow()
        with Session(self.engine) as session:
            if project_id is None:
                project_id = self.projects.project_to_file_in(
                    session, body.project, principal, body.team
                )
            else:
                self.projects.check_writable(session, project_id, principal)
            run = Run(
                project_id=project_id,
                created_by_id=principal.user_id,
                name=body.name or "",
                status="running",
                source="client",
                spec_json="{}",
                notes=body.notes,
                attempt=1,
                started_at=started_at or now,
                heartbeat_at=now,
                environment_json=json.dumps(body.environment) if body.environment else None,
                **param_columns(body.params, body.epochs),
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            if not body.name:
                run.name = f"run-{run.id}"
            for tag in dict.fromkeys(body.tags):
                session.add(RunTag(run_id=run.id, tag=tag))
            self.access.record_event(
                session,
                run.id,
                "status",
                None,
                {"status": "running", "attempt": 1, "source": "client"},
            )
            session.commit()
            return self.access.run_out(session, run)

    def add_queued_run(
        self,
        session: Session,
        project_id: int,
        spec: JobSpec,
        name: str | None,
        tags: Sequence[str],
        notes: str,
        principal: Principal,
        **member: Any,
    ) -> tuple[Run, str]:
        """A queued run added to ``session`` (the caller commits) and its worker token;
        ``member``: a study member's columns (study_id, study_config, ...)."""
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
            storage_bytes=storage_estimate(spec),
            enqueued_at=utcnow(),  # the caller hands it over next (else: undo_delivery)
            **member,
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        if not name:
            run.name = f"run-{run.id}"
        for tag in dict.fromkeys(tags):
            session.add(RunTag(run_id=run.id, tag=tag))
        self.access.record_event(session, run.id, "status", None, {"status": "queued"})
        return run, mint_worker_token(session, run.id)

    def team_storage(self, session: Session, project_id: int) -> int:
        """What the runs of the project's team may store, together (their spec estimates),
        read under the team's lock so that two submissions cannot both take the last room."""
        team_id = session.execute(
            select(col(Project.team_id)).where(col(Project.id) == project_id)
        ).scalar_one()
        session.execute(update(Team).where(col(Team.id) == team_id).values(name=Team.name))
        used = session.execute(
            select(func.coalesce(func.sum(Run.storage_bytes), 0))
            .join(Project, col(Project.id) == Run.project_id)
            .where(Project.team_id == team_id)
        ).scalar_one()
        return int(used)

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
        query = select(Run, sort_column(field)).join(Project, col(Project.id) == Run.project_id)
        if filters.verdicts or field in SUMMARY_SORTS or where_needs_results(filters.where):
            query = query.outerjoin(RunDiagnosis, col(RunDiagnosis.run_id) == Run.id)
        if filters.verdicts:
            query = query.where(col(RunDiagnosis.verdict).in_(filters.verdicts))
        if filters.teams is not None:
            query = query.where(col(Project.team_id).in_(filters.teams))
        if filters.project:
            query = query.where(col(Project.name) == filters.project)
        if filters.created_by:
            query = query.join(User, col(User.id) == col(Run.created_by_id)).where(
                col(User.name) == filters.created_by
            )
        if filters.status:
            query = query.where(col(Run.status).in_(filters.status))
        if filters.study is not None:
            query = query.where(col(Run.study_id) == filters.study)
        for tag in filters.tags:
            query = query.where(
                select(col(RunTag.run_id))
                .where(col(RunTag.run_id) == col(Run.id), col(RunTag.tag) == tag)
                .exists()
            )
        if filters.name:
            query = query.where(func.lower(Run.name).contains(filters.name.lower()))
        if filters.created_after:
            query = query.where(col(Run.created_at) >= filters.created_after)
        if filters.created_before:
            query = query.where(col(Run.created_at) < filters.created_before)
        if filters.spec_hash:
            query = query.where(col(Run.spec_hash) == filters.spec_hash)
        if filters.text:
            query = query.where(_text_matches(filters.text))
        for clause in parse_where(filters.where, self.engine.dialect.name):
            query = query.where(clause)
        order, after = order_and_after(field, sort.startswith("-"), cursor)
        query = query.where(*after).order_by(*order).limit(limit + 1)
        with Session(self.engine) as session:
            rows = session.execute(query).all()
            page = rows[:limit]
            outs = self.access.run_outs(session, [run for run, _ in page])
        next_cursor = None
        if len(rows) > limit:
            last, value = page[-1]
            next_cursor = encode_cursor(value, last.id)
        return outs, next_cursor

    def update_run(self, run_id: int, patch: RunPatch) -> RunOut:
        with Session(self.engine) as session:
            run = self.access.run_row(session, run_id)
            if patch.name is not None:
                run.name = patch.name
            if patch.notes is not None:
                run.notes = patch.notes
            if patch.params is not None:
                if run.source != "client":
                    raise Conflict(f"run {run_id} has a spec: only a client run's params change")
                merged = {**json.loads(run.params_json or "{}"), **patch.params}
                if len(merged) > 200:
                    raise Invalid("params", "at most 200 params")
                keep = run.progress_total
                for column, value in param_columns(merged, keep or None).items():
                    setattr(run, column, value)
            if patch.tags is not None:
                session.execute(delete(RunTag).where(col(RunTag.run_id) == run_id))
                for tag in dict.fromkeys(patch.tags):
                    session.add(RunTag(run_id=run_id, tag=tag))
            run.revision += 1
            session.commit()
            return self.access.run_out(session, run)

    def cancel_run(self, run_id: int) -> RunOut:
        with Session(self.engine) as session:
            run = self.access.run_row(session, run_id, lock=True)
            if run.status == "cancelled":
                return self.access.run_out(session, run)
            if run.status in FINISHED:
                raise Conflict(f"run {run_id} already {run.status}; nothing to cancel")
            run.status = "cancelled"
            run.finished_at = utcnow()
            run.failure_reason = "cancelled by user"
            run.revision += 1
            self.access.record_event(session, run_id, "status", None, {"status": "cancelled"})
            session.commit()
            return self.access.run_out(session, run)

    def delete_run(self, run_id: int) -> None:
        """The run and everything it holds, its worker token included (a worker still training
        it gets 401 at its next post, and stops). Explicit deletes, not only ON DELETE CASCADE,
        so a database with foreign keys off loses nothing to orphans either."""
        with Session(self.engine) as session:
            self.access.run_row(session, run_id, lock=True)
            for table in run_tables():
                session.execute(delete(table).where(table.c.run_id == run_id))
            session.execute(delete(Run).where(col(Run.id) == run_id))
            session.commit()
        for listener in self._deleted:
            listener(run_id)

    def add_events(
        self, run_id: int, events: Sequence[EventIn], attempt: int | None = None
    ) -> IngestResult:
        with Session(self.engine) as session:
            run = self.access.writable_run(session, run_id, attempt=attempt)
            existing = {
                (k, s)
                for k, s in session.execute(
                    select(col(RunEvent.kind), col(RunEvent.step)).where(
                        col(RunEvent.run_id) == run_id
                    )
                ).all()
            }
            added = 0
            for e in events:
                if (e.kind, e.step) in existing:
                    continue  # idempotent: one event per (kind, step)
                existing.add((e.kind, e.step))
                self.access.record_event(session, run_id, e.kind, e.step, e.payload)
                first = run.diverged_epoch is None or e.step < run.diverged_epoch
                if e.kind == "diverged" and first:
                    run.diverged_epoch = e.step
                added += 1
            if added:
                self.access.data_changed(session, run_id, "events", {e.kind for e in events})
            bump = self.access.bump_revision if added else self.access.revision_of
            revision = bump(session, run_id)
            session.commit()
        return IngestResult(accepted=added, duplicates=len(events) - added, revision=revision)

    def get_events(self, run_id: int, kind: str | None) -> list[EventOut]:
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            query = select(RunEvent).where(col(RunEvent.run_id) == run_id)
            if kind:
                query = query.where(col(RunEvent.kind) == kind)
            rows = session.execute(query.order_by(col(RunEvent.id))).scalars()
            return [
                EventOut(
                    kind=r.kind,
                    step=r.step,
                    payload=json.loads(r.payload_json),
                    created_at=r.created_at,
                )
                for r in rows
            ]


def _text_matches(text: str) -> Any:
    """A run whose name, notes or one of its tags holds ``text`` (case-insensitive)."""
    needle = text.lower()
    tagged = (
        select(col(RunTag.run_id))
        .where(
            col(RunTag.run_id) == col(Run.id),
            func.lower(RunTag.tag).contains(needle, autoescape=True),
        )
        .exists()
    )
    return or_(
        func.lower(Run.name).contains(needle, autoescape=True),
        func.lower(Run.notes).contains(needle, autoescape=True),
        tagged,
    )
