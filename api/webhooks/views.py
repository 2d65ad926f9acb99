"""A team's webhooks: owners register, list and delete them and read their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.core.deps import MAX_ID, SettingsDep, part
from api.core.http import GuardedRoute
from api.people.deps import UserDep
from api.webhooks.schemas import DeliveryOut, WebhookCreated, WebhookIn, WebhookOut
from api.webhooks.service import WebhookStore

router = APIRouter(tags=["webhooks"], route_class=GuardedRoute)
TeamId = Annotated[int, Path(ge=1, le=MAX_ID)]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
StoreDep = Annotated[WebhookStore, part("webhooks")]


@router.post("/teams/{team_id}/webhooks", status_code=201, response_model=WebhookCreated)
def create_webhook(
    team_id: TeamId, body: WebhookIn, store: StoreDep, principal: UserDep, settings: SettingsDep
) -> WebhookCreated:
    """POST a signed JSON body to ``url`` when a run of the team finds its onset of
    overfitting, diverges, succeeds or fails (``events``). Owners only. The answer holds the
    signing secret, once. http(s) only; a host that resolves to a private or local address is
    refused (422 naming url) unless the operator allows it."""
    return store.create(
        principal,
        team_id,
        body,
        allow_private=settings.webhook_allow_private,
        most=settings.max_webhooks_per_team,
    )


@router.get("/teams/{team_id}/webhooks", response_model=list[WebhookOut])
def list_webhooks(team_id: TeamId, store: StoreDep, principal: UserDep) -> list[WebhookOut]:
    """The team's webhooks (never their secrets). Owners only."""
    return store.webhooks(principal, team_id)


@router.delete("/teams/{team_id}/webhooks/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(
    team_id: TeamId, webhook_id: WebhookId, store: StoreDep, principal: UserDep
) -> None:
    store.delete(principal, team_id, webhook_id)


@router.get("/teams/{team_id}/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def deliveries(
    team_id: TeamId, webhook_id: WebhookId, store: StoreDep, principal: UserDep
) -> list[DeliveryOut]:
    """The webhook's last 100 deliveries, newest first: event, run, status, tries, the last
    answer's code or error."""
    return store.deliveries(principal, team_id, webhook_id)
