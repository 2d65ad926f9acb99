"""Issue 21: a hostile user of another team, against the surface added since the first security
work (the answer cache, studies, client runs, invitations, sessions, the queue). Each test here
failed on the main before issue 21; each runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import tracemalloc
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from api.core.db import utcnow
from api.runs.delivery import reconcile_once
from api.runs.models import Run
from api.runs.queue import RecordingQueue
from api.store import TrackingStore
from tests.api.conftest import API, bearer, start, submit


def as_(client: TestClient, token: str) -> TestClient:
    return TestClient(client.app, headers=bearer(token))


def store_of(client: TestClient) -> TrackingStore:
    return client.app.state.store  # type: ignore[attr-defined]


def bob(client: TestClient) -> TestClient:
    """The attacker: the owner of another team."""
    return as_(client, store_of(client).people.create_user("bob", team="bobs", role="owner")[1])


CACHED_READS = (
    "/runs/{id}",
    "/runs/{id}/curves",
    "/runs/{id}/histograms",
    "/runs/{id}/histograms?param=w",
    "/runs/{id}/diagnosis",
    "/compare?runs={id}",
)


def _secret_run(client: TestClient) -> tuple[int, dict[str, bytes]]:
    """Alice's client run with a secret name, params, points and a histogram, read through
    every cached read (so the answer cache holds each body); its id and those bodies."""
    body = {"project": "p", "name": "A-SECRET", "params": {"k": "x"}}
    run_id = int(client.post(f"{API}/runs", json=body).json()["id"])
    points = [
        {"key": key, "step": s, "value": 1.0 / s}
        for s in range(1, 4)
        for key in ("train_loss", "val_loss")
    ]
    client.post(f"{API}/runs/{run_id}/metrics?attempt=1", json={"points": points})
    hist = {"param": "w", "step": 1, "edges": [0, 1], "counts": [5]}
    client.post(f"{API}/runs/{run_id}/histograms?attempt=1", json={"histograms": [hist]})
    bodies = {}
    for path in CACHED_READS:
        response = client.get(API + path.format(id=run_id))
        assert response.status_code == 200, path
        bodies[path] = response.content
    return run_id, bodies


def test_a_deleted_runs_id_is_never_handed_out_again(client: TestClient) -> None:
    """7 of 7 trials leaked on SQLite before: Bob's new run got Alice's deleted id, and the
    answer cache served him her run, curves, histograms, diagnosis and comparison."""
    attacker = bob(client)
    for _ in range(3):
        run_id, _ = _secret_run(client)
        assert client.delete(f"{API}/runs/{run_id}").status_code == 204
        mine = attacker.post(f"{API}/runs", json={"project": "q"}).json()["id"]
        assert mine > run_id
        for path in CACHED_READS:
            response = attacker.get(API + path.format(id=run_id))
            assert response.status_code == 404, (path, response.text)
            assert "A-SECRET" not in response.text


def test_a_cached_answer_is_never_served_for_another_run_of_the_same_id(
    client: TestClient,
) -> None:
    """Independent of the ids: even if a database did reuse an id (forced here, row by row),
    the answers kept for the deleted run are never served for the new one."""
    attacker = bob(client)
    store = store_of(client)
    run_id, alices = _secret_run(client)
    assert client.delete(f"{API}/runs/{run_id}").status_code == 204
    mine = int(attacker.post(f"{API}/runs", json={"project": "q", "name": "B"}).json()["id"])
    with store.engine.begin() as conn:  # a copy of Bob's run under Alice's old id
        columns = ", ".join(c.name for c in Run.__table__.columns if c.name != "id")  # type: ignore[attr-defined]
        conn.execute(
            text(f"INSERT INTO run (id, {columns}) SELECT :old, {columns} FROM run WHERE id = :id"),
            {"old": run_id, "id": mine},
        )
    for path in CACHED_READS:
        response = attacker.get(API + path.format(id=run_id))
        assert response.content != alices[path], path
        assert "A-SECRET" not in response.text, path
    assert attacker.get(f"{API}/runs/{run_id}").json()["name"] == "B"


def test_a_huge_sweep_is_refused_from_its_sizes_before_anything_is_built(
    client: TestClient,
) -> None:
    """8 paths x 100 values (10^16 members) took the API to 3 GiB and a 500 before."""
    sweep = {f"model.p{i}": list(range(100)) for i in range(8)}
    tracemalloc.start()
    started = time.perf_counter()
    response = client.post(f"{API}/studies", json={"design": {"sweep": sweep}})
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response.status_code == 422, response.text
    assert "10000000000000000 members" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "design"
    assert peak < 50 << 20, f"peak {peak >> 20} MiB"
    assert elapsed < 5


@pytest.mark.parametrize("path", ["dataset", "dataset.folds.k"])
def test_reserved_study_paths_cannot_be_set_through_their_parent(
    client: TestClient, path: str
) -> None:
    design = {"sweep": {path: [{"train_subset": 10}] if path == "dataset" else [3]}}
    response = client.post(f"{API}/studies", json={"design": design})
    assert response.status_code == 422
    assert "set by the study itself" in response.text


def test_an_owners_made_account_cannot_be_claimed_for_another_team(client: TestClient) -> None:
    """Bob made "carol" in his team and minted a fresh token from hers; when Alice invited
    "carol", Bob accepted with it and read Alice's runs (2 of 2 before)."""
    attacker = bob(client)
    secret = submit(client, project="alice-only", name="A-SECRET")["id"]
    team = attacker.get(f"{API}/me").json()["teams"][0]["id"]
    made = attacker.post(f"{API}/users", json={"name": "carol", "team_id": team}).json()
    carol = as_(client, made["token"])
    assert carol.post(f"{API}/tokens", json={"name": "fresh"}).status_code == 403
    lab = client.get(f"{API}/me").json()["teams"][0]["id"]
    invited = client.put(f"{API}/teams/{lab}/members", json={"user": "carol", "role": "member"})
    assert invited.status_code == 202
    assert carol.post(f"{API}/invitations/{lab}/accept").status_code == 403
    signed_in = carol.post(f"{API}/session")  # a session carries the mark too
    cookie = as_(client, "")
    cookie.headers.pop("authorization")
    cookie.cookies.set("fitlens_session", signed_in.cookies["fitlens_session"])
    accept = cookie.post(
        f"{API}/invitations/{lab}/accept", headers={"X-CSRF-Token": signed_in.json()["csrf_token"]}
    )
    assert accept.status_code == 403
    assert carol.get(f"{API}/runs/{secret}").status_code == 404


def test_an_invitation_is_for_the_account_it_was_made_for(client: TestClient) -> None:
    """Made before any account had the name, an invitation waits for an account the operator
    makes; made for an account, it is that account's."""
    store = store_of(client)
    lab = client.get(f"{API}/me").json()["teams"][0]["id"]
    client.put(f"{API}/teams/{lab}/members", json={"user": "dora", "role": "viewer"})
    dora = as_(client, store.people.create_user("dora")[1])
    assert [i["team_id"] for i in dora.get(f"{API}/invitations").json()] == [lab]
    assert dora.post(f"{API}/invitations/{lab}/accept").status_code == 200
    with store.engine.begin() as conn:  # the invitation names the account, not only the name
        conn.execute(text("UPDATE invitation SET user_id = NULL"))
    client.put(f"{API}/teams/{lab}/members", json={"user": "ezra", "role": "viewer"})
    ezra = as_(client, store.people.create_user("ezra")[1])
    with store.engine.begin() as conn:  # as if the invitation had been made for another ezra
        conn.execute(
            text("UPDATE invitation SET user_id = :other WHERE user_name = 'ezra'"),
            {"other": dora.get(f"{API}/me").json()["id"]},
        )
    assert ezra.get(f"{API}/invitations").json() == []
    assert ezra.post(f"{API}/invitations/{lab}/accept").status_code == 404


def _timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_malformed_bodies_are_refused_before_they_are_validated(client: TestClient) -> None:
    """A million {} to /metrics took 22.8 s and a 166 MB answer, stalling /healthz; a million
    unknown keys to /jobs 7-15 s."""
    run_id = client.post(f"{API}/runs", json={"project": "p"}).json()["id"]
    empties = b'{"points": [' + b",".join([b"{}"] * 1_000_000) + b"]}"
    response, elapsed = _timed(
        lambda: client.post(
            f"{API}/runs/{run_id}/metrics?attempt=1",
            content=empties,
            headers={"content-type": "application/json"},
        )
    )
    assert response.status_code == 413 and response.json()["errors"][0]["field"] == "points"
    assert elapsed < 2 and len(response.content) < 1000
    keys = b"{" + b",".join(b'"k%d":1' % i for i in range(500_000)) + b"}"  # under 16 MB
    response, elapsed = _timed(
        lambda: client.post(
            f"{API}/jobs", content=keys, headers={"content-type": "application/json"}
        )
    )
    assert response.status_code == 413 and "JSON values" in response.json()["detail"]
    assert elapsed < 2
    # Under the bound, a body with an error per value answers at most 20 of them.
    many = {"spec": {}, **{f"k{i}": 1 for i in range(5_000)}}
    response = client.post(f"{API}/jobs", json=many)
    assert response.status_code == 422 and len(response.json()["errors"]) == 20
    assert "more errors" in response.json()["detail"] and len(response.content) < 10_000


def test_a_viewers_body_is_refused_before_it_is_read(client: TestClient) -> None:
    store = store_of(client)
    run_id = submit(client)["id"]
    start(client, run_id)
    viewer = as_(client, store.people.create_user("vic", team="lab", role="viewer")[1])
    junk = b'{"events": [' + b",".join([b"{}"] * 50_000) + b"]}"  # 50,000 invalid events
    for path in ("events", "histograms", "evaluation", "status"):
        response = viewer.post(
            f"{API}/runs/{run_id}/{path}",
            content=junk,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 403, (path, response.text)
    outsider = bob(client)
    response = outsider.post(
        f"{API}/runs/{run_id}/events", content=junk, headers={"content-type": "application/json"}
    )
    assert response.status_code == 404


def test_a_body_over_the_size_limit_answers_in_the_error_schema(client: TestClient) -> None:
    limit = client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    response = client.post(
        f"{API}/jobs",
        content=b"x" * 10,
        headers={"content-type": "application/json", "content-length": str(limit + 1)},
    )
    assert response.status_code == 413
    assert "FITLENS_MAX_BODY_BYTES" in response.json()["detail"]
    # And every answer says it is not a page to run.
    assert "default-src 'none'" in client.get(f"{API}/me").headers["content-security-policy"]


MAXIMAL = {
    "model": {"kind": "mlp", "hidden": [1] * 16},
    "histograms": {"bins": 1024},
    "epochs": 10_000,
}


def test_a_spec_that_would_fill_the_disk_is_refused_at_submit(client: TestClient) -> None:
    """16 width-1 layers, 1,024 bins, 10,000 epochs: 631 MB in 90 s, ~9.3 GB for the job."""
    response = client.post(f"{API}/jobs", json={"spec": MAXIMAL})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "spec.histograms" and "FITLENS_MAX_RUN_STORAGE_MB" in error["message"]
    study = client.post(f"{API}/studies", json={"spec": MAXIMAL, "design": {"seeds": [1, 2]}})
    assert study.status_code == 422 and "FITLENS_MAX_RUN_STORAGE_MB" in study.text
    # Every bin every 100 epochs fits one run's budget, but 500 of them not the team's.
    sparse = {**MAXIMAL, "histograms": {"bins": 1024, "every": 100}}
    assert client.post(f"{API}/jobs", json={"spec": sparse}).status_code == 201
    curve = {"sizes": [0.5, 1.0], "budget": "epochs"}
    design = {"seeds": list(range(100)), "learning_curve": curve}  # 200 members
    refused = client.post(f"{API}/studies", json={"spec": sparse, "design": design})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "design"
    assert "FITLENS_MAX_TEAM_STORAGE_MB" in refused.text
    assert client.get(f"{API}/runs").json()["items"].__len__() == 1  # nothing of it stored


def test_a_run_has_at_most_a_thousand_metric_keys(client: TestClient) -> None:
    run_id = client.post(f"{API}/runs", json={"project": "p"}).json()["id"]
    url = f"{API}/runs/{run_id}/metrics?attempt=1"
    first = [{"key": f"k{i}", "step": 1, "value": 1.0} for i in range(1_000)]
    assert client.post(url, json={"points": first}).status_code == 200
    more = client.post(url, json={"points": [{"key": "one_more", "step": 1, "value": 1.0}]})
    assert more.status_code == 422 and more.json()["errors"][0]["field"] == "points.key"
    assert "FITLENS_MAX_METRIC_KEYS" in more.text
    again = client.post(url, json={"points": [{"key": "k7", "step": 2, "value": 1.0}]})
    assert again.status_code == 200  # known keys go on


def test_redelivery_replaces_the_message_and_its_token(
    client: TestClient, queue: RecordingQueue
) -> None:
    """50 queued runs became 600 messages and 600 live worker tokens in 60 s before."""
    store = store_of(client)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    listening = client.app.state.listening  # type: ignore[attr-defined]
    run_id = submit(client)["id"]
    tokens = [queue.tokens[run_id]]
    for _ in range(3):
        with store.engine.begin() as conn:  # the message is old enough to be thought lost
            conn.execute(update(Run).values(enqueued_at=utcnow() - timedelta(seconds=10 * 60 * 60)))
        reconcile_once(store.lifecycle, queue, settings, listening)
        tokens.append(queue.tokens[run_id])
    assert len(set(tokens)) == 4
    with store.engine.connect() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM api_token WHERE run_id = :r AND revoked_at IS NULL"),
            {"r": run_id},
        ).scalar()
    assert live == 1
    status = f"{API}/runs/{run_id}/status"
    for old in tokens[:-1]:  # a late message's worker is refused and drops it
        refused = client.post(status, json={"status": "running"}, headers=bearer(old))
        assert refused.status_code == 401
    ok = client.post(status, json={"status": "running"}, headers=bearer(tokens[-1]))
    assert ok.status_code == 200


def test_one_teams_backlog_does_not_starve_another(
    client: TestClient, queue: RecordingQueue
) -> None:
    """One team's job waited behind another team's 513 before (first in, first out)."""
    backlog = [submit(client, spec={"epochs": 1})["id"] for _ in range(40)]
    theirs = submit(bob(client), spec={"epochs": 1})["id"]
    assert queue.priorities[backlog[0]] == 0
    assert queue.priorities[theirs] == 0
    assert [queue.priorities[r] for r in backlog] == sorted(queue.priorities[r] for r in backlog)
    assert sum(queue.priorities[r] > queue.priorities[theirs] for r in backlog) >= 38


def test_a_session_lives_no_longer_than_its_token_and_renews_only_by_cookie(
    client: TestClient,
) -> None:
    store = store_of(client)
    token = store.people.admin_mint("alice", "laptop", None)
    browser = as_(client, token)
    signed_in = browser.post(f"{API}/session")
    assert signed_in.status_code == 200
    cookie, csrf = signed_in.cookies["fitlens_session"], signed_in.json()["csrf_token"]
    page = TestClient(client.app)
    page.cookies.set("fitlens_session", cookie)
    assert page.get(f"{API}/me").status_code == 200
    # Renewing with some other Authorization beside the cookie is refused.
    refused = page.post(
        f"{API}/session", headers={"Authorization": "Basic eDp5", "X-CSRF-Token": csrf}
    )
    assert refused.status_code == 401
    # The cookie and its CSRF token renew it; the old session ends.
    renewed = page.post(f"{API}/session", headers={"X-CSRF-Token": csrf})
    assert renewed.status_code == 200, renewed.text
    new_cookie = renewed.cookies["fitlens_session"]
    assert new_cookie != cookie
    old = TestClient(client.app)
    old.cookies.set("fitlens_session", cookie)
    assert old.get(f"{API}/me").status_code == 401
    fresh = TestClient(client.app)
    fresh.cookies.set("fitlens_session", new_cookie)
    assert fresh.get(f"{API}/me").status_code == 200
    # Revoking the token the session was signed in with ends the renewed session too.
    laptop = next(t for t in browser.get(f"{API}/tokens").json() if t["name"] == "laptop")
    assert browser.delete(f"{API}/tokens/{laptop['id']}").status_code == 200
    assert fresh.get(f"{API}/me").status_code == 401


def test_weight_snapshots_over_the_run_budget_are_refused_at_submit(client: TestClient) -> None:
    """A 3072-4096-4096-10 MLP (29.4 M parameters) snapshotted every epoch of 100 takes
    102 x 29.4 M x 4 bytes, 12 GB: refused, naming the field and the budget. Every 50 epochs
    in float16 (5 snapshots, 294 MB) fits the 512 MiB a run may store."""
    big = {"dataset": {"name": "cifar10"}, "model": {"hidden": [4096, 4096]}, "epochs": 100}
    refused = client.post(f"{API}/jobs", json={"spec": {**big, "snapshots": {"every": 1}}})
    assert refused.status_code == 422, refused.text
    error = refused.json()["errors"][0]
    assert error["field"] == "spec.snapshots" and "FITLENS_MAX_RUN_STORAGE_MB" in error["message"]
    assert client.get(f"{API}/runs").json()["items"] == []
    fits = {**big, "snapshots": {"every": 50, "dtype": "float16"}, "histograms": {"every": 10}}
    assert client.post(f"{API}/jobs", json={"spec": fits}).status_code == 201
