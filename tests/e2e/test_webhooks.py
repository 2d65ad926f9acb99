"""Webhooks against a real receiver (issue 24): a real run through a real worker announces its
onset and its end to the team's webhooks, signed; a receiver that fails is retried, one that
redirects is not followed, one that hangs is given up on, and none of them slows ingest."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Worker
from tests.e2e.receiver import Receiver
from tests.e2e.test_diagnosis import example
from tests.e2e.test_pipeline import finished
from tests.waits import wait_for


@pytest.fixture(scope="module")
def pipeline_env(pipeline_env: dict[str, str]) -> dict[str, str]:
    # The receiver listens on loopback: allowed here, as an operator may allow it.
    return {
        **pipeline_env,
        "FITLENS_WEBHOOK_ALLOW_PRIVATE": "true",
        "FITLENS_WEBHOOK_INTERVAL": "0.2",
        "FITLENS_WEBHOOK_BACKOFF": "0.2",
        "FITLENS_WEBHOOK_TIMEOUT": "1",
        "FITLENS_WEBHOOK_MAX_TRIES": "3",
    }


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def log_of(api: httpx.Client, team: int, hook: int) -> list[dict[str, Any]]:
    return api.get(f"/teams/{team}/webhooks/{hook}/deliveries").json()


def settled(api: httpx.Client, team: int, hook: int, n: int) -> list[dict[str, Any]] | None:
    log = log_of(api, team, hook)
    done = [d for d in log if d["status"] != "pending"]
    return log if len(done) >= n else None


def test_a_real_run_announces_its_onset_and_end_signed_and_retried(
    api: httpx.Client, start_worker: Callable[[str], Worker], receiver: Receiver
) -> None:
    team = api.get("/teams").json()[0]["id"]

    def register(path: str) -> dict[str, Any]:
        made = api.post(f"/teams/{team}/webhooks", json={"url": receiver.url + path})
        assert made.status_code == 201, made.text
        return made.json()

    flaky, hanging, redirecting = register("/flaky"), register("/hang"), register("/redirect")
    start_worker("w-hooks")
    run_id = api.post("/jobs", json={"spec": example("overfit_tiny_subset")}).json()["id"]
    done = wait_for(lambda: finished(api, run_id), 300, "the run to finish")
    assert done["status"] == "succeeded" and done["diagnosis"]["onset_epoch"] is not None

    log = wait_for(lambda: settled(api, team, flaky["id"], 2), 60, "both deliveries")
    assert {d["event"]: (d["status"], d["run_id"]) for d in log} == {
        "onset": ("delivered", run_id),
        "succeeded": ("delivered", run_id),
    }
    # The receiver's first request met a 500 and that delivery was tried again: the
    # receiver saw its body twice, the same bytes; the other went through at once.
    bodies = [r for r in receiver.received if r.path == "/flaky"]
    by_delivery: dict[str, list[bytes]] = {}
    for got in bodies:
        by_delivery.setdefault(got.headers["X-Fitlens-Delivery"], []).append(got.body)
    retried = by_delivery[bodies[0].headers["X-Fitlens-Delivery"]]
    assert len(retried) == 2 and retried[0] == retried[1]
    tries = {str(d["id"]): d["tries"] for d in log}
    assert tries == {k: len(v) for k, v in by_delivery.items()}
    assert all(d["last_code"] == 200 and d["delivered_at"] for d in log)
    for got in bodies:
        timestamp, signed = got.headers["X-Fitlens-Timestamp"], got.headers["X-Fitlens-Signature"]
        mac = hmac.new(flaky["secret"].encode(), timestamp.encode() + b"." + got.body, "sha256")
        assert hmac.compare_digest(signed, "sha256=" + mac.hexdigest())
        assert abs(time.time() - int(timestamp)) < 300
    payload = json.loads(bodies[-1].body)
    assert payload["run"]["id"] == run_id and payload["event"] in ("onset", "succeeded")

    # A redirect is not followed: the delivery fails, /target is never asked for.
    moved = wait_for(lambda: settled(api, team, redirecting["id"], 2), 60, "the redirects")
    assert all(d["status"] == "failed" and d["last_code"] == 302 for d in moved)
    assert all("redirect (not followed)" in d["last_error"] for d in moved)
    assert receiver.count("/target") == 0
    # A receiver that never answers: every try times out, the delivery fails after 3.
    hung = wait_for(lambda: settled(api, team, hanging["id"], 2), 90, "the hanging receiver")
    assert all(d["status"] == "failed" and d["tries"] == 3 for d in hung)
    assert all("Timeout" in d["last_error"] for d in hung), hung
