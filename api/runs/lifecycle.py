"""A run's life after submission: status reports (attempts), the reaper, retries, and delivery
to the queue (the database is the source of truth; api.runs.delivery reconciles the queue).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlmodel import Session, SQLModel, col

from api.core.db import rows_changed, utcnow
from api.core.exceptions import Conflict
from api.core.store import StoreBase
from api.people.models import Project
from api.people.tokens import mint_worker_token, revoke_worker_tokens
from api.runs.access import SILENT_CLIENT, RunAccess
from api.runs.models import FINISHED, Run, RunEvent
from api.runs.schemas import RunOut, StatusOut, StatusUpdate


def run_tables(attempt_data_only: bool = False) -> list[Table]:
    """The tables holding a run's data (a ``run_id`` column), however many domains keep them;
    with ``attempt_data_only``, those of one attempt (api.core.db.attempt_data)."""
    return [
        table
        for table in SQLModel.metadata.sorted_tables
        if "run_id" in table.c and (not attempt_data_only or table.info.get("attempt_data"))
    ]


def _repeated(run: Run, update: StatusUpdate) -> bool:
    """Whether ``update`` repeats what the run already did (a retried post: nothing to do);
    Conflict if it cannot happen to the run as it is."""
    if run.status in FINISHED:
        if run.status == update.status:  # a retried final post: already done
            return True
        raise Conflict(f"run {run.id} is {run.status}; it cannot become {update.status}")
    if update.status == "running" and run.status == "running":
        if update.attempt == run.attempt:  # a retried start
            return True
        raise Conflict(f"run {run.id} is already running (attempt {run.attempt})")
    return False


def _due_for_delivery(cutoff: datetime) -> Any:
    """Queued, and never handed over (or the hand-over failed), or handed over before cutoff."""
    return and_(
        col(Run.status) == "queued",
        or_(col(Run.enqueued_at).is_(None), col(Run.enqueued_at) < cutoff),
    )


StatusNews = Callable[[Session, int], dict[str, Any]]


class RunLifecycle(StoreBase):
    """A run's status after submission; built with the runs' access."""

    def __init__(self, access: RunAccess) -> None:
        super().__init__(access.engine)
        self.access = access
        self._news: list[StatusNews] = []

    def on_status_answer(self, news: StatusNews) -> None:
        """Add what ``news`` says (fields of StatusOut) to every answer to a status post, read
        in its transaction: what another domain tells a reporter (api.store wires the
        diagnosis's onset here)."""
        self._news.append(news)

    def set_status(self, run_id: int, update: StatusUpdate) -> StatusOut:
        """Worker-reported transitions. ``running`` starts a new attempt (from ``queued`` only);
        later posts name that attempt, so a redelivered or zombie worker cannot write into it.

        Answers the run's status, attempt and revision only: a heartbeat every few seconds from
        every worker should not pay for a whole run read."""
        now = utcnow()
        with Session(self.engine) as session:
            run = self.access.run_row(session, run_id, lock=True)
            if (
                run.status == "failed"
                and update.status != "running"
                and self.access.revive_silent_client(session, run_id)
            ):
                session.refresh(run)
            if _repeated(run, update):
                return _status_out(run)
            if update.status == "running":
                self._start_attempt(session, run, update, now)
            else:
                self._report(session, run, update, now)
            if update.status == "heartbeat":
                self.access.data_changed(session, run_id, "heartbeat")
            if update.epoch is not None:
                run.progress_epoch = update.epoch
            if update.epochs is not None:
                run.progress_total = update.epochs
            run.heartbeat_at = now
            run.revision += 1
            out = _status_out(run)
            for news in self._news:
                out = out.model_copy(update=news(session, run_id))
            session.commit()
            return out

    def _start_attempt(
        self, session: Session, run: Run, update: StatusUpdate, now: datetime
    ) -> None:
        assert run.id is not None
        run.attempt += 1
        run.started_at = now
        run.worker_host = update.worker_host
        run.device = update.device
        run.environment_json = json.dumps(update.environment) if update.environment else None
        run.status = "running"
        started = {"worker_host": update.worker_host, "device": update.device}
        self.access.record_event(
            session,
            run.id,
            "status",
            None,
            {"status": "running", "attempt": run.attempt, **started},
        )

    def _report(self, session: Session, run: Run, update: StatusUpdate, now: datetime) -> None:
        """A heartbeat of the running attempt, or its end (succeeded or failed)."""
        assert run.id is not None
        if update.status in ("heartbeat", "succeeded") and run.status != "running":
            raise Conflict(f"run {run.id} is {run.status}, not running")
        self.access.check_attempt(run, update.attempt)
        if update.status in ("succeeded", "failed"):
            run.status = update.status
            run.finished_at = now
            run.failure_reason = update.reason if update.status == "failed" else None
            self.access.data_changed(session, run.id, "status")
            ended = {"status": update.status, "reason": update.reason, "attempt": run.attempt}
            self.access.record_event(session, run.id, "status", None, ended)

    def reap_stale(self, timeout_s: float, max_attempts: int) -> list[int]:
        """Runs whose worker went silent (no heartbeat for ``timeout_s``) do not stay running:
        with attempts left they go back to ``queued`` with their data cleared, to be delivered
        again by the reconciler (``claim_delivery``); otherwise they fail with the reason.
        Returns the ids of the requeued runs. The caller decides whether the API has been
        listening long enough to judge silence at all (api.runs.delivery)."""
        cutoff = utcnow() - timedelta(seconds=timeout_s)
        requeued = []
        with Session(self.engine) as session:
            stale = (
                session.execute(
                    select(col(Run.id)).where(
                        col(Run.status) == "running", col(Run.heartbeat_at) < cutoff
                    )
                )
                .scalars()
                .all()
            )
        for run_id in stale:
            with Session(self.engine) as session:
                run = self.access.run_row(session, run_id, lock=True)
                if (
                    run.status != "running"
                    or run.heartbeat_at is None
                    or run.heartbeat_at >= cutoff
                ):
                    continue  # it moved on while we looked
                silent = f"no heartbeat from {run.worker_host or 'its worker'} for {timeout_s:g}s"
                if run.source == "client":  # nothing to requeue: the user's own loop went away
                    self._fail(
                        session,
                        run,
                        f"{SILENT_CLIENT} (no heartbeat for {timeout_s:g}s)",
                    )
                elif run.attempt < max_attempts:
                    reason = f"worker lost ({silent}) in attempt {run.attempt}; requeued"
                    self._back_to_queue(session, run, reason)
                    requeued.append(run_id)
                else:
                    self._fail(
                        session,
                        run,
                        f"worker lost ({silent}) in attempt {run.attempt} of "
                        f"{max_attempts}; not retried",
                    )
                run.revision += 1
                session.commit()
        return requeued

    def retry_run(self, run_id: int, who: str) -> RunOut:
        """A failed or cancelled run, or one stuck in the queue, goes back to the queue as a new
        attempt with its partial data cleared; the event says who asked."""
        with Session(self.engine) as session:
            run = self.access.run_row(session, run_id, lock=True)
            if run.source == "client":
                raise Conflict(
                    f"run {run_id} was logged by a client: run your code again to log a new run"
                )
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
            return self.access.run_out(session, run)

    def _fail(self, session: Session, run: Run, reason: str) -> None:
        assert run.id is not None
        run.status = "failed"
        run.finished_at = utcnow()
        run.failure_reason = reason
        self.access.record_event(
            session,
            run.id,
            "status",
            None,
            {"status": "failed", "reason": reason, "attempt": run.attempt},
        )

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
        self.access.record_event(
            session,
            run.id,
            "status",
            None,
            {"status": "queued", "reason": reason, "attempt": run.attempt, **(extra or {})},
        )
        revoke_worker_tokens(session, run.id)

    # ---- delivery: the database is the source of truth, the queue is reconciled with it ----

    def due_deliveries(self, redeliver_after_s: float, limit: int = 100) -> list[int]:
        """Queued runs never handed to the queue (or whose hand-over failed), and those handed
        over so long ago that the message must have been lost (no worker claimed them)."""
        due = _due_for_delivery(utcnow() - timedelta(seconds=redeliver_after_s))
        with self.engine.connect() as conn:
            rows = conn.execute(select(col(Run.id)).where(due).order_by(col(Run.id)).limit(limit))
            return [r for r in rows.scalars() if r is not None]  # ids: never None

    def claim_delivery(self, run_id: int, redeliver_after_s: float) -> tuple[str, str] | None:
        """Mark a due run as handed over, now, and mint the token its worker will get; (spec
        JSON, token), or None if another API process claimed it first or it is no longer due.
        One conditional UPDATE decides, so several API processes never send it twice at once
        (a duplicate would be harmless anyway: the attempt rule lets one worker start it).
        A redelivery replaces the message before it: the tokens sent with earlier messages
        are revoked, so a message that turns up late is dropped by its worker (401), and a run
        has at most one live message and one live worker token however often it is sent."""
        now = utcnow()
        due = _due_for_delivery(now - timedelta(seconds=redeliver_after_s))
        with Session(self.engine) as session:
            claimed = session.execute(
                update(Run).where(col(Run.id) == run_id, due).values(enqueued_at=now)
            )
            if not rows_changed(claimed):
                return None
            spec_json = session.execute(
                select(col(Run.spec_json)).where(col(Run.id) == run_id)
            ).scalar_one()
            revoke_worker_tokens(session, run_id)
            token = mint_worker_token(session, run_id)
            session.commit()
        return spec_json, token

    def queue_priority(self, run_id: int) -> int:
        """0 to 9: about log2 of how many of this run's team's runs wait in the queue ahead of
        it (queued and handed over, older ids), so a team with a short backlog goes before
        the tail of a long one: a team's 1st run gets 0, its 2nd 1, 3rd-4th 2, 5th-8th 3..."""
        with self.engine.connect() as conn:
            team_id = conn.execute(
                select(col(Project.team_id))
                .join(Run, col(Run.project_id) == col(Project.id))
                .where(col(Run.id) == run_id)
            ).scalar()
            ahead = conn.execute(
                select(func.count())
                .select_from(Run)
                .join(Project, col(Project.id) == Run.project_id)
                .where(
                    col(Project.team_id) == team_id,
                    col(Run.status) == "queued",
                    col(Run.enqueued_at).is_not(None),
                    col(Run.id) < run_id,
                )
            ).scalar_one()
        return min(9, int(ahead).bit_length())

    def undo_delivery(self, run_id: int) -> None:
        """The hand-over failed (the broker was away): due again at the next reconciliation."""
        with Session(self.engine) as session:
            session.execute(
                update(Run)
                .where(col(Run.id) == run_id, col(Run.status) == "queued")
                .values(enqueued_at=None)
            )
            session.commit()

    def _clear_data(self, session: Session, run_id: int) -> None:
        for table in run_tables(attempt_data_only=True):
            session.execute(delete(table).where(table.c.run_id == run_id))
        session.execute(
            delete(RunEvent).where(col(RunEvent.run_id) == run_id, col(RunEvent.kind) != "status")
        )


def _status_out(run: Run) -> StatusOut:
    return StatusOut(id=run.id or 0, status=run.status, attempt=run.attempt, revision=run.revision)
