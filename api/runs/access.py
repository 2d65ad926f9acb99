"""Reaching a run: who may touch it, its row under lock, its revision, its API shape.

The runs domain's door for every domain that keeps data of a run: metrics, histograms,
evaluations, diagnosis and the runs' own stores are built with this one object
(api.store.TrackingStore), so the rules of a run's data are written once: a run another team's
member cannot see is NotFound, data only goes to a run that is still open and to its current
attempt, each change bumps the run's revision (the ETags' basis), and each write tells the
listeners of the run's data (``on_run_data_changed``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, select, update
from sqlmodel import Session, col

from api.core.db import utcnow
from api.core.exceptions import Conflict, Forbidden, NotFound
from api.core.store import StoreBase
from api.diagnosis.models import RunDiagnosis
from api.people.auth import WRITE_ROLES, Principal
from api.people.models import Project, User
from api.runs.models import FINISHED, Run, RunEvent, RunTag
from api.runs.schemas import DiagnosisOut, Progress, RunOut

# (session, run_id, kind, keys): see RunAccess.on_run_data_changed.
DataListener = Callable[[Session, int, str, Collection[str]], None]


@dataclass(frozen=True)
class RunGrant:
    """What an access check learnt: the run's revision, its team, and its identity (id, team
    and creation time: the same id can never name two runs, even if a database reused ids)."""

    revision: int
    team_id: int
    identity: str


class RunAccess(StoreBase):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._data_listeners: list[DataListener] = []

    def get_run(self, run_id: int) -> RunOut:
        with Session(self.engine) as session:
            return self.run_out(session, self.run_row(session, run_id))

    def run_revision(self, run_id: int) -> int:
        """The cheapest possible read, for ETag checks."""
        with self.engine.connect() as conn:
            rev = conn.execute(_RUN_REVISION, {"run_id": run_id}).scalar()
        if rev is None:
            raise NotFound(f"run {run_id} not found")
        return int(rev)

    def authorize_run(self, principal: Principal, run_id: int, need: str) -> int:
        """Check that ``principal`` may ``need`` ("read", "write", "owner" or "worker") run
        ``run_id``; returns the run's revision (so an ETag check costs no second query). A run
        the caller cannot see is NotFound, never Forbidden: its existence does not leak."""
        return self.grant_run(principal, run_id, need).revision

    def grant_run(self, principal: Principal, run_id: int, need: str) -> RunGrant:
        """``authorize_run``, answering also which run this is (its team and creation): what
        a cached answer or a stream is keyed by, besides its id."""
        with self.reader.connect() as conn:
            row = conn.execute(_RUN_ACCESS, {"run_id": run_id}).first()
        missing = NotFound(f"run {run_id} not found")
        if row is None:
            raise missing
        revision, team_id = int(row[0]), row[1]
        if team_id is None:  # a project without a team (none is made so) is no one's
            raise missing
        grant = RunGrant(revision, team_id, f"run {run_id} of team {team_id} made {row[2]}")
        if principal.is_worker:
            if principal.run_id != run_id:
                raise missing
            if need == "write":
                raise Forbidden("a worker token can only report on its run")
            return grant
        role = principal.roles.get(team_id)
        if role is None:
            raise missing
        if need == "owner" and role != "owner":
            raise Forbidden(f"you are a {role} of this run's team: only its owners may do this")
        if need != "read" and role not in WRITE_ROLES:
            raise Forbidden(f"you are a {role} of this run's team: read only")
        return grant

    def on_run_data_changed(self, listener: DataListener) -> None:
        """Call ``listener`` in the writer's transaction, under the run's lock, after new
        ``kind`` data ("metrics" with their ``keys``, "events" with their kinds, "status" when
        the run finished) or a "heartbeat": what a domain derives from a run's data (its
        diagnosis) is kept up to date there. api.store registers the listeners."""
        self._data_listeners.append(listener)

    def data_changed(
        self, session: Session, run_id: int, kind: str, keys: Collection[str] = ()
    ) -> None:
        for listener in self._data_listeners:
            listener(session, run_id, kind, keys)

    def run_row(self, session: Session, run_id: int, lock: bool = False) -> Run:
        if lock:
            # A no-op write takes the lock before anything is read: the run's row lock in
            # PostgreSQL, the database write lock in SQLite. Writers to one run then go one at a
            # time, so what they read stays true until they commit.
            session.execute(update(Run).where(col(Run.id) == run_id).values(revision=Run.revision))
        query = select(Run).where(col(Run.id) == run_id)
        run = session.execute(query).scalars().first()
        if run is None:
            raise NotFound(f"run {run_id} not found")
        return run

    def writable_run(
        self, session: Session, run_id: int, lock: bool = False, attempt: int | None = None
    ) -> Run:
        run = self.run_row(session, run_id, lock=lock)
        if run.status == "failed" and self.revive_silent_client(session, run_id):
            session.refresh(run)
        if run.status in FINISHED:
            raise Conflict(f"run {run_id} is {run.status}; it takes no more data")
        self.check_attempt(run, attempt)
        return run

    def revive_silent_client(self, session: Session, run_id: int) -> bool:
        """A client run failed only for its silence (the reaper: SILENT_CLIENT) that reports
        again is running again: tracking never kills training. An event records the gap; its
        points are kept. False if the run is not such a run."""
        silent = session.execute(
            select(col(Run.heartbeat_at)).where(
                col(Run.id) == run_id,
                col(Run.status) == "failed",
                col(Run.source) == "client",
                col(Run.failure_reason).startswith(SILENT_CLIENT),
            )
        ).first()
        if silent is None:
            return False
        now = utcnow()
        gap = (now - silent[0]).total_seconds() if silent[0] is not None else None
        session.execute(
            update(Run)
            .where(col(Run.id) == run_id)
            .values(
                status="running",
                finished_at=None,
                failure_reason=None,
                heartbeat_at=now,
                revision=Run.revision + 1,
            )
        )
        self.record_event(
            session,
            run_id,
            "status",
            None,
            {"status": "running", "reason": "its client reported again", "silent_s": gap},
        )
        return True

    def bump_revision(self, session: Session, run_id: int) -> int:
        session.execute(update(Run).where(col(Run.id) == run_id).values(revision=Run.revision + 1))
        return self.revision_of(session, run_id)

    def revision_of(self, session: Session, run_id: int) -> int:
        return int(
            session.execute(select(col(Run.revision)).where(col(Run.id) == run_id)).scalar_one()
        )

    def record_event(
        self, session: Session, run_id: int, kind: str, step: int | None, payload: dict[str, Any]
    ) -> None:
        session.add(
            RunEvent(
                run_id=run_id, kind=kind, step=step, payload_json=json.dumps(payload, default=str)
            )
        )

    @staticmethod
    def check_attempt(run: Run, attempt: int | None) -> None:
        if attempt is not None and attempt != run.attempt:
            raise stale_attempt(run.id or 0, run.attempt, attempt)

    def run_out(self, session: Session, run: Run) -> RunOut:
        return self.run_outs(session, [run])[0]

    def run_outs(self, session: Session, runs: Sequence[Run]) -> list[RunOut]:
        """The API shape of ``runs``, with what other tables hold of them, in five queries."""
        found = _Related.of(session, runs)
        return [
            RunOut(
                id=r.id or 0,
                project=found.projects.get(r.project_id, ("", 0))[0],
                team_id=found.projects.get(r.project_id, ("", 0))[1],
                name=r.name,
                created_by=found.users.get(r.created_by_id),
                status=r.status,
                spec=json.loads(r.spec_json),
                spec_hash=r.spec_hash,
                tags=found.tags.get(r.id or 0, []),
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
                diagnosis=found.diagnoses.get(r.id or 0),
                study_id=r.study_id,
                study_config=r.study_config,
                study_replicate=r.study_replicate,
                overrides=json.loads(r.overrides_json) if r.overrides_json else None,
                source=r.source,
                params=json.loads(r.params_json) if r.params_json else None,
            )
            for r in runs
        ]


@dataclass
class _Related:
    """What other tables hold of some runs: their tags, creators, diagnoses and projects."""

    tags: dict[int, list[str]] = field(default_factory=dict)
    users: dict[int | None, str] = field(default_factory=dict)
    diagnoses: dict[int, DiagnosisOut] = field(default_factory=dict)
    projects: dict[int, tuple[str, int]] = field(default_factory=dict)  # name and team

    @classmethod
    def of(cls, session: Session, runs: Sequence[Run]) -> _Related:
        found = cls()
        ids = [r.id for r in runs]
        if not ids:
            return found
        for run_id, tag in session.execute(
            select(col(RunTag.run_id), col(RunTag.tag))
            .where(col(RunTag.run_id).in_(ids))
            .order_by(col(RunTag.tag))
        ):
            found.tags.setdefault(run_id, []).append(tag)
        creators = {r.created_by_id for r in runs if r.created_by_id is not None}
        found.users = dict(
            session.execute(
                select(col(User.id), col(User.name)).where(col(User.id).in_(creators))
            ).all()
        )
        found.diagnoses = {
            d.run_id: DiagnosisOut.model_validate_json(d.detail_json)
            for d in session.execute(
                select(RunDiagnosis).where(col(RunDiagnosis.run_id).in_(ids))
            ).scalars()
        }
        found.projects = {
            project_id: (name, team_id)
            for project_id, name, team_id in session.execute(
                select(col(Project.id), col(Project.name), col(Project.team_id)).where(
                    col(Project.id).in_({r.project_id for r in runs})
                )
            ).all()
        }
        return found


# Why the reaper fails a client run that went silent; such a run comes back if it reports again.
SILENT_CLIENT = "its client stopped reporting"


def stale_attempt(run_id: int, current: int, attempt: int) -> Conflict:
    return Conflict(f"run {run_id} is on attempt {current}; attempt {attempt} is stale")


# Built once: constructing the statement costs more than running it (it runs on every request).
_RUN_REVISION = select(col(Run.revision)).where(col(Run.id) == bindparam("run_id"))
_RUN_ACCESS = (
    select(col(Run.revision), col(Project.team_id), col(Run.created_at))
    .join(Project, col(Project.id) == col(Run.project_id))
    .where(col(Run.id) == bindparam("run_id"))
)
