"""A team's webhooks: owners register them; a run's onset, divergence and end queue a signed
delivery for each that asked for the event, in the transaction that made the news (an insert,
nothing sent there: ingest never waits on a receiver); api.webhooks.sender sends them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from api.core.db import utcnow
from api.core.exceptions import Conflict, Invalid, NotFound
from api.core.store import StoreBase
from api.diagnosis.models import RunDiagnosis
from api.people.auth import Principal
from api.people.models import Project
from api.people.service import PeopleStore
from api.runs.access import RunAccess
from api.runs.models import Run
from api.webhooks.addresses import Refused, resolve
from api.webhooks.models import Webhook, WebhookDelivery
from api.webhooks.schemas import DeliveryOut, WebhookCreated, WebhookIn, WebhookOut

DELIVERY_LOG = 100  # deliveries a read of the log answers, newest first


@dataclass(frozen=True)
class Due:
    """A delivery to try now."""

    id: int
    event: str
    payload_json: str
    tries: int
    url: str
    secret: str


class WebhookStore(StoreBase):
    def __init__(self, people: PeopleStore, access: RunAccess) -> None:
        super().__init__(access.engine)
        self.people, self.access = people, access

    # ---- owners ----

    def create(
        self,
        principal: Principal,
        team_id: int,
        body: WebhookIn,
        allow_private: bool = False,
        most: int = 20,
    ) -> WebhookCreated:
        """A webhook for ``body.url`` (checked by the address rule now, and again at every
        try); a team has at most ``most``."""
        try:  # before the team's lock: resolving a name can take a while
            resolve(body.url, allow_private)
        except Refused as exc:
            raise Invalid("url", str(exc)) from None
        with Session(self.engine) as session:
            self.people.require_owner(session, principal, team_id, "manage its webhooks")
            count = session.execute(
                select(func.count()).select_from(Webhook).where(col(Webhook.team_id) == team_id)
            ).scalar_one()
            if count >= most:
                raise Conflict(
                    f"team {team_id} has {count} webhooks, the most a team may have "
                    "(FITLENS_MAX_WEBHOOKS_PER_TEAM)"
                )
            hook = Webhook(
                team_id=team_id,
                url=body.url,
                events_json=json.dumps(sorted(set(body.events))),
                secret=secrets.token_hex(32),
                created_by=principal.user_name,
            )
            session.add(hook)
            session.commit()
            return WebhookCreated(**_out(hook).model_dump(), secret=hook.secret)

    def webhooks(self, principal: Principal, team_id: int) -> list[WebhookOut]:
        with Session(self.engine) as session:
            self.people.require_owner(session, principal, team_id, "see its webhooks")
            hooks = session.execute(
                select(Webhook).where(col(Webhook.team_id) == team_id).order_by(col(Webhook.id))
            ).scalars()
            return [_out(h) for h in hooks]

    def delete(self, principal: Principal, team_id: int, webhook_id: int) -> None:
        with Session(self.engine) as session:
            self.people.require_owner(session, principal, team_id, "manage its webhooks")
            session.delete(self._hook(session, team_id, webhook_id))
            session.commit()

    def deliveries(self, principal: Principal, team_id: int, webhook_id: int) -> list[DeliveryOut]:
        with Session(self.engine) as session:
            self.people.require_owner(session, principal, team_id, "see its webhooks")
            self._hook(session, team_id, webhook_id)
            rows = session.execute(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.webhook_id) == webhook_id)
                .order_by(col(WebhookDelivery.id).desc())
                .limit(DELIVERY_LOG)
            ).scalars()
            return [_delivery_out(d) for d in rows]

    def _hook(self, session: Session, team_id: int, webhook_id: int) -> Webhook:
        hook = session.get(Webhook, webhook_id)
        if hook is None or hook.team_id != team_id:
            raise NotFound(f"webhook {webhook_id} not found")
        return hook

    # ---- the news (listeners, in the writer's transaction) ----

    def run_changed(
        self, session: Session, run_id: int, kind: str, keys: Collection[str] = ()
    ) -> None:
        """A listener of RunAccess.on_run_data_changed: a run that finished, or diverged."""
        if kind == "status":
            status = session.execute(select(col(Run.status)).where(col(Run.id) == run_id)).scalar()
            if status in ("succeeded", "failed"):
                self.queue(session, run_id, status)
        elif kind == "events" and "diverged" in keys:
            self.queue(session, run_id, "diverged")

    def onset_found(self, session: Session, run_id: int) -> None:
        """A listener of the diagnosis: its onset went from none to an epoch."""
        self.queue(session, run_id, "onset")

    def queue(self, session: Session, run_id: int, event: str) -> None:
        """A pending delivery of ``event`` to each of the run's team's webhooks that asked for
        it (once per run attempt: a repeated trigger adds nothing)."""
        row = session.execute(
            select(Run, col(Project.name), col(Project.team_id))
            .join(Project, col(Project.id) == col(Run.project_id))
            .where(col(Run.id) == run_id)
        ).first()
        if row is None or row[2] is None:
            return
        run, project, team_id = row
        hooks = [
            h
            for h in session.execute(
                select(Webhook).where(col(Webhook.team_id) == team_id)
            ).scalars()
            if event in json.loads(h.events_json)
        ]
        if not hooks:
            return
        diagnosis = session.get(RunDiagnosis, run_id)
        for hook in hooks:
            done = session.execute(
                select(col(WebhookDelivery.id)).where(
                    col(WebhookDelivery.webhook_id) == hook.id,
                    col(WebhookDelivery.run_id) == run_id,
                    col(WebhookDelivery.event) == event,
                    col(WebhookDelivery.attempt) == run.attempt,
                )
            ).first()
            if done is None:
                assert hook.id is not None
                body = _payload(event, run, project, team_id, diagnosis)
                session.add(
                    WebhookDelivery(
                        webhook_id=hook.id,
                        run_id=run_id,
                        attempt=run.attempt,
                        event=event,
                        payload_json=json.dumps(body, separators=(",", ":")),
                    )
                )

    # ---- the sender's side ----

    def due(self, now: datetime, limit: int, hold: float) -> list[Due]:
        """Pending deliveries whose time has come, each put off by ``hold`` seconds (the try's
        own limit and then some) so that a sender that dies mid-try leaves it due again."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(
                    col(WebhookDelivery.id),
                    col(WebhookDelivery.event),
                    col(WebhookDelivery.payload_json),
                    col(WebhookDelivery.tries),
                    col(Webhook.url),
                    col(Webhook.secret),
                )
                .join(Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id))
                .where(
                    col(WebhookDelivery.status) == "pending",
                    col(WebhookDelivery.next_try_at) <= now,
                )
                .order_by(col(WebhookDelivery.next_try_at))
                .limit(limit)
            ).all()
            due = [Due(*row) for row in rows]
            if due:
                session.execute(
                    update(WebhookDelivery)
                    .where(col(WebhookDelivery.id).in_([d.id for d in due]))
                    .values(next_try_at=now + timedelta(seconds=hold))
                )
                session.commit()
            return due

    def record(
        self, delivery_id: int, code: int | None, error: str | None, retry_in: float | None
    ) -> None:
        """How a try went: delivered (a 2xx), or failed with ``error``, tried again in
        ``retry_in`` seconds (None: no tries left, the delivery failed)."""
        now = utcnow()
        values: dict[str, Any] = {"tries": WebhookDelivery.tries + 1, "last_code": code}
        values["last_error"] = error[:500] if error else None
        if error is None:
            values |= {"status": "delivered", "delivered_at": now}
        elif retry_in is None:
            values["status"] = "failed"
        else:
            values["next_try_at"] = now + timedelta(seconds=retry_in)
        with Session(self.engine) as session:
            done = update(WebhookDelivery).where(col(WebhookDelivery.id) == delivery_id)
            session.execute(done.values(**values))
            session.commit()


def _payload(
    event: str, run: Run, project: str, team_id: int, diagnosis: RunDiagnosis | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event": event,
        "team_id": team_id,
        "run": {
            "id": run.id,
            "name": run.name,
            "project": project,
            "status": run.status,
            "attempt": run.attempt,
            "failure_reason": run.failure_reason,
        },
    }
    if diagnosis is not None:
        detail = json.loads(diagnosis.detail_json) if diagnosis.detail_json else {}
        out["diagnosis"] = {
            "verdict": diagnosis.verdict,
            "why": detail.get("why"),
            "onset_epoch": diagnosis.onset_epoch,
            "best_epoch": diagnosis.best_epoch,
            "epochs": diagnosis.epochs,
        }
    return out


def _out(hook: Webhook) -> WebhookOut:
    assert hook.id is not None
    return WebhookOut(
        id=hook.id,
        team_id=hook.team_id,
        url=hook.url,
        events=json.loads(hook.events_json),
        created_by=hook.created_by,
        created_at=hook.created_at,
    )


def _delivery_out(d: WebhookDelivery) -> DeliveryOut:
    assert d.id is not None
    return DeliveryOut(
        id=d.id,
        webhook_id=d.webhook_id,
        run_id=d.run_id,
        attempt=d.attempt,
        event=d.event,
        status=d.status,
        tries=d.tries,
        last_code=d.last_code,
        last_error=d.last_error,
        created_at=d.created_at,
        next_try_at=d.next_try_at if d.status == "pending" else None,
        delivered_at=d.delivered_at,
    )
