"""Registering webhooks and what queues deliveries (issue 24), with the sender off: the rules
on URLs (http(s) only, no private or local address unless allowed), owners only, one delivery
per event and run attempt, the body each carries. Sending them: tests/e2e/test_webhooks.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.main import create_app
from api.webhooks.models import WebhookDelivery
from tests.api.conftest import API, RecordingQueue, bearer, empty_tables, post_points, start, submit

PUBLIC = "http://93.184.216.34/hooks/fitlens"  # an address literal: no name to resolve


@pytest.fixture
def owner(database_url: str, queue: RecordingQueue) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database_url, webhook_interval=0), enqueuer=queue)
    empty_tables(app.state.store.engine)
    _, token = app.state.store.people.create_user("olga", team="lab", role="owner")
    with TestClient(app, headers=bearer(token)) as client:
        yield client
    app.state.store.engine.dispose()


def team_id(client: TestClient) -> int:
    return int(client.get(f"{API}/teams").json()[0]["id"])


def register(client: TestClient, url: str = PUBLIC, **body: Any) -> Any:
    return client.post(f"{API}/teams/{team_id(client)}/webhooks", json={"url": url, **body})


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://93.184.216.34/x", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("http://" + "a" * 2000 + ".com/", "at most 2000 characters"),
        ("http://127.0.0.1:8000/hook", "private or local address"),
        ("http://[::1]/hook", "private or local address"),
        ("http://10.1.2.3/hook", "private or local address"),
        ("http://169.254.169.254/latest/meta-data", "private or local address"),
        ("http://[::ffff:127.0.0.1]/hook", "private or local address"),
        ("http://user:pw@93.184.216.34/", "no credentials"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_a_url_the_rules_refuse_is_a_422_naming_it(owner: TestClient, url: str, words: str) -> None:
    response = register(owner, url)
    assert response.status_code == 422, response.text
    assert "url" in response.text and words in response.text


def test_owners_only_and_the_secret_is_shown_once(owner: TestClient) -> None:
    made = register(owner, events=["onset", "failed"])
    assert made.status_code == 201, made.text
    hook = made.json()
    assert len(hook["secret"]) == 64 and hook["events"] == ["failed", "onset"]
    listed = owner.get(f"{API}/teams/{team_id(owner)}/webhooks").json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    store = owner.app.state.store  # type: ignore[attr-defined]
    _, member = store.people.create_user("mia", team="lab", role="member")
    _, outsider = store.people.create_user("otto", team="elsewhere", role="owner")
    tid = team_id(owner)
    as_member = owner.get(f"{API}/teams/{tid}/webhooks", headers=bearer(member))
    assert as_member.status_code == 403 and "owners" in as_member.text
    as_outsider = owner.get(f"{API}/teams/{tid}/webhooks", headers=bearer(outsider))
    assert as_outsider.status_code == 404
    log = f"{API}/teams/{tid}/webhooks/{hook['id']}/deliveries"
    assert owner.get(log, headers=bearer(outsider)).status_code == 404
    assert (
        owner.delete(f"{API}/teams/{tid}/webhooks/{hook['id']}", headers=bearer(member)).status_code
        == 403
    )
    assert owner.delete(f"{API}/teams/{tid}/webhooks/{hook['id']}").status_code == 204
    assert owner.get(f"{API}/teams/{tid}/webhooks").json() == []


def deliveries(client: TestClient) -> list[WebhookDelivery]:
    from sqlmodel import Session, col, select

    with Session(client.app.state.store.engine) as session:  # type: ignore[attr-defined]
        return list(session.exec(select(WebhookDelivery).order_by(col(WebhookDelivery.id))).all())


def test_a_run_s_onset_and_end_queue_one_delivery_each(owner: TestClient) -> None:
    assert register(owner).status_code == 201
    assert register(owner, events=["diverged"]).status_code == 201  # hears nothing here
    run_id = submit(owner, name="noisy")["id"]
    start(owner, run_id)
    train = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    val = [1.1, 0.9, 0.7, 0.75, 0.8, 0.9, 1.0, 1.1]
    for epoch in range(1, 9):  # the onset is found once epoch 6 is in, and stays found
        points = [
            {"key": "train_loss", "step": epoch, "value": train[epoch - 1]},
            {"key": "val_loss", "step": epoch, "value": val[epoch - 1]},
        ]
        post_points(owner, run_id, points)
    done = {"status": "succeeded", "attempt": 1}
    assert owner.post(f"{API}/runs/{run_id}/status", json=done).status_code == 200
    assert owner.post(f"{API}/runs/{run_id}/status", json=done).status_code == 200  # repeated
    queued = deliveries(owner)
    assert [(d.event, d.status, d.tries) for d in queued] == [
        ("onset", "pending", 0),
        ("succeeded", "pending", 0),
    ]
    onset, ended = (json.loads(d.payload_json) for d in queued)
    assert onset["run"]["id"] == run_id and onset["run"]["name"] == "noisy"
    assert onset["diagnosis"]["onset_epoch"] == 3 and onset["diagnosis"]["verdict"] == "overfitting"
    assert ended["run"]["status"] == "succeeded" and ended["event"] == "succeeded"
