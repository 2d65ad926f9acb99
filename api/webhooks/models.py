"""A team's webhooks and the log of what was delivered to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, utcnow

WEBHOOK_EVENTS = ("onset", "diverged", "succeeded", "failed")


class Webhook(SQLModel, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    team_id: int = Field(sa_type=BigId, foreign_key="team.id", index=True, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    events_json: str = Field(max_length=200)  # a JSON list of WEBHOOK_EVENTS
    # The HMAC key the bodies are signed with: the server must hold it to sign, so it is
    # stored as it is (shown to the owner once, when the webhook is made).
    secret: str = Field(max_length=64)
    created_by: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: its body (the same bytes at every try), its tries and how
    the last one went."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        # An event is delivered once per run attempt, however often its trigger is seen.
        UniqueConstraint("webhook_id", "run_id", "event", "attempt"),
        Index("ix_webhook_delivery_due", "status", "next_try_at"),
        NEVER_REUSED,
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    webhook_id: int = Field(sa_type=BigId, foreign_key="webhook.id", index=True, ondelete="CASCADE")
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", index=True, ondelete="CASCADE")
    attempt: int
    event: str = Field(max_length=20)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=10)  # pending, delivered, failed
    tries: int = 0
    next_try_at: datetime = Field(default_factory=utcnow)
    last_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    delivered_at: datetime | None = None
