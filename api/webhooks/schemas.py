"""What the webhook endpoints take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.core.schemas import In
from api.webhooks.addresses import MAX_URL, Refused, check_url

WebhookEvent = Literal["onset", "diverged", "succeeded", "failed"]
ALL_EVENTS: list[WebhookEvent] = ["onset", "diverged", "succeeded", "failed"]


class WebhookIn(In):
    url: str = Field(max_length=MAX_URL)
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(ALL_EVENTS), min_length=1, max_length=4
    )

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        try:
            check_url(url)
        except Refused as exc:
            raise ValueError(str(exc)) from None
        return url


class WebhookOut(BaseModel):
    id: int
    team_id: int
    url: str
    events: list[str]
    created_by: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    # The HMAC-SHA256 key of the signatures: shown here once.
    secret: str


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    run_id: int
    attempt: int
    event: str
    status: str  # pending, delivered (a 2xx answer) or failed (no tries left)
    tries: int
    last_code: int | None
    last_error: str | None
    created_at: datetime
    next_try_at: datetime | None  # when a pending one is tried next
    delivered_at: datetime | None
