"""Jobs in; runs listed, filtered, paged, read, edited, cancelled; errors that name the field."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from api.runs.queue import RecordingQueue
from tests.api.conftest import API, start, submit


def test_submit_stores_a_queued_run_and_enqueues_it(
    client: TestClient, queue: RecordingQueue
) -> None:
    spec = {"model": {"hidden": [32], "dropout": 0.5}, "epochs": 3}
    response = client.post(
        f"{API}/jobs",
        json={"spec": spec, "project": "mnist", "name": "dropout", "tags": ["baseline"]},
    )
    assert response.status_code == 201
    run = response.json()
    assert response.headers["location"] == f"{API}/runs/{run['id']}"
    assert (run["status"], run["project"], run["name"], run["tags"]) == (
        "queued",
        "mnist",
        "dropout",
        ["baseline"],
    )
    assert run["spec"]["model"]["dropout"] == 0.5 and run["spec"]["optimizer"]["lr"] == 1e-3
    assert run["progress"] == {"epoch": 0, "epochs": 3}
    assert run["links"]["curves"] == f"{API}/runs/{run['id']}/curves"
    assert [(rid, s.epochs) for rid, s in queue.items] == [(run["id"], 3)]
    assert client.get(run["links"]["self"]).json()["spec_hash"] == run["spec_hash"]


def test_same_spec_twice_makes_two_runs_with_one_hash(client: TestClient) -> None:
    a = submit(client, {"epochs": 2, "seed": 1})
    b = submit(client, {"seed": 1, "epochs": 2})
    c = submit(client, {"epochs": 3, "seed": 1})
    assert a["id"] != b["id"] and a["spec_hash"] == b["spec_hash"] != c["spec_hash"]
    found = client.get(f"{API}/runs", params={"spec_hash": a["spec_hash"]}).json()["items"]
    assert sorted(r["id"] for r in found) == sorted([a["id"], b["id"]])
    assert a["name"] == f"run-{a['id']}"


def test_invalid_spec_is_422_naming_the_field(client: TestClient) -> None:
    cases = {
        "spec.optimizer.lr": {"spec": {"optimizer": {"lr": -1}}},
        "spec.dataset.name": {"spec": {"dataset": {"name": "imagenet"}}},
        "spec.model.mlp.dropout": {"spec": {"model": {"dropout": 1.5}}},
        "spec.epochs": {"spec": {"epochs": "many"}},
        "spec.dataset.label_noise": {"spec": {"dataset": {"label_noise": 1.5}}},
        "tags.0": {"tags": ["a,b"]},
        "name": {"name": "nul\x00byte"},
        "surprise": {"surprise": 1},
    }
    for field, body in cases.items():
        response = client.post(f"{API}/jobs", json=body)
        assert response.status_code == 422, field
        fields = [e["field"] for e in response.json()["errors"]]
        assert field in fields, (field, fields)
        assert field in response.json()["detail"]
    cross = client.post(f"{API}/jobs", json={"spec": {"task": "regression"}}).json()
    assert "task: regression needs a regression dataset" in cross["detail"]
    # A test split that leaves a split fewer examples than classes, or fractions over 1.
    for dataset in ({"test_fraction": 0.99}, {"test_fraction": 0.5, "train_fraction": 0.7}):
        response = client.post(f"{API}/jobs", json={"spec": {"dataset": dataset}})
        assert response.status_code == 422, dataset
        assert "spec.dataset" in [e["field"] for e in response.json()["errors"]]
        assert "test_fraction: " in response.json()["detail"]
    assert client.post(f"{API}/jobs", content=b"{not json").status_code == 422


def test_unknown_run_is_404_everywhere(client: TestClient) -> None:
    for method, path in [
        ("get", "/runs/999"),
        ("patch", "/runs/999"),
        ("post", "/runs/999/cancel"),
        ("get", "/runs/999/curves"),
        ("get", "/runs/999/histograms"),
        ("get", "/runs/999/evaluation"),
        ("get", "/runs/999/events"),
        ("get", "/runs/999/metrics.csv"),
        ("get", "/compare?runs=999"),
    ]:
        body = {"notes": "x"} if method == "patch" else None
        response = client.request(method, f"{API}{path}", json=body)
        assert response.status_code == 404, path
        assert "999" in response.json()["detail"]
    status = client.post(f"{API}/runs/999/status", json={"status": "running"})
    assert status.status_code == 404


def test_filters_sort_and_cursor_pagination(client: TestClient) -> None:
    plain = submit(client, {"epochs": 2}, project="p1", name="plain", tags=["sweep"])
    dropout = submit(
        client, {"model": {"dropout": 0.5}}, project="p1", name="dropout", tags=["sweep", "reg"]
    )
    wd = submit(
        client, {"optimizer": {"name": "sgd", "weight_decay": 5e-4}}, project="p2", name="decay"
    )
    cnn = submit(client, {"model": {"kind": "cnn"}}, project="p2", name="conv", tags=["reg"])
    start(client, wd["id"])

    def ids(**params: object) -> list[int]:
        response = client.get(f"{API}/runs", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert ids() == [cnn["id"], wd["id"], dropout["id"], plain["id"]]  # newest first
    assert ids(project="p1", sort="created_at") == [plain["id"], dropout["id"]]
    assert ids(status="running") == [wd["id"]]
    assert ids(status=["queued", "running"], project="p2") == [cnn["id"], wd["id"]]
    assert ids(tag="reg") == [cnn["id"], dropout["id"]]
    assert ids(tag=["reg", "sweep"]) == [dropout["id"]]
    assert ids(name="DROP") == [dropout["id"]]
    assert ids(where="dropout>0") == [dropout["id"]]
    assert ids(where="weight_decay>=1e-4,optimizer=sgd") == [wd["id"]]
    assert ids(where="model_kind=cnn") == [cnn["id"]]
    assert ids(where="dataset=digits", sort="name") == [
        cnn["id"],
        wd["id"],
        dropout["id"],
        plain["id"],
    ]
    future = "2999-01-01T00:00:00Z"
    assert ids(created_after=future) == [] and len(ids(created_before=future)) == 4
    # Without an offset a time is UTC; a plain date is its midnight.
    assert (
        ids(created_after="2999-01-01T00:00:00") == [] and len(ids(created_after="2000-01-01")) == 4
    )

    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "-created_at", **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/runs", params=params).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids()
    by_name = client.get(f"{API}/runs", params={"limit": 2, "sort": "name"}).json()
    rest = client.get(f"{API}/runs", params={"sort": "name", "cursor": by_name["next_cursor"]})
    names = [r["name"] for r in by_name["items"] + rest.json()["items"]]
    assert names == ["conv", "decay", "dropout", "plain"]


def test_text_postgresql_cannot_store_is_422_on_every_backend(client: TestClient) -> None:
    run = submit(client)
    assert client.get(f"{API}/runs", params={"project": "a\x00b"}).status_code in (200, 422)
    response = client.patch(f"{API}/runs/{run['id']}", json={"notes": "a\x00b"})
    assert response.status_code == 422 and "NUL" in response.json()["detail"]
    assert client.get(f"{API}/runs/{run['id']}").json()["notes"] == ""


def test_bad_list_parameters_are_422_naming_them(client: TestClient) -> None:
    for params, field in [
        ({"where": "dropout>>0"}, "where"),
        ({"where": "secret=1"}, "where"),
        ({"where": "dropout>abc"}, "where"),
        ({"sort": "size"}, "sort"),
        ({"cursor": "garbage"}, "cursor"),
        ({"status": "paused"}, "status.0"),
        ({"limit": 0}, "limit"),
        ({"created_after": "yesterday"}, "created_after"),
        # Year 1 at +00:01 is before year 1 in UTC (the fuzzer's find).
        ({"created_after": "0001-01-01T00:00:00+00:01"}, "created_after"),
        ({"created_before": "9999-12-31T23:59:59-01:00"}, "created_before"),
    ]:
        response = client.get(f"{API}/runs", params=params)
        assert response.status_code == 422, params
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


def test_patch_edits_name_tags_and_notes_only(client: TestClient) -> None:
    run = submit(client, tags=["old"])
    response = client.patch(
        f"{API}/runs/{run['id']}",
        json={"name": "renamed", "tags": ["new", "new", "x"], "notes": "hi"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["tags"], body["notes"]) == ("renamed", ["new", "x"], "hi")
    assert body["revision"] > run["revision"]
    assert client.patch(f"{API}/runs/{run['id']}", json={"status": "succeeded"}).status_code == 422
    assert client.patch(f"{API}/runs/{run['id']}", json={"name": ""}).status_code == 422


def test_cancel_queued_and_running_runs(client: TestClient) -> None:
    queued = submit(client)
    running = submit(client)
    start(client, running["id"])
    for run in (queued, running):
        response = client.post(f"{API}/runs/{run['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        assert response.json()["finished_at"] is not None
        # Cancelling twice is harmless.
        assert client.post(f"{API}/runs/{run['id']}/cancel").status_code == 200
    # The worker learns it on its next post and must stop.
    heartbeat = client.post(
        f"{API}/runs/{running['id']}/status", json={"status": "heartbeat", "epoch": 2}
    )
    assert heartbeat.status_code == 409
    done = submit(client)
    start(client, done["id"])
    client.post(f"{API}/runs/{done['id']}/status", json={"status": "succeeded"})
    assert client.post(f"{API}/runs/{done['id']}/cancel").status_code == 409


def test_created_at_is_recent_and_timezone_aware(client: TestClient) -> None:
    run = submit(client)
    stamp = run["created_at"]
    assert stamp.endswith(("Z", "+00:00"))
    from datetime import datetime

    assert abs(datetime.fromisoformat(stamp).timestamp() - time.time()) < 60


def test_a_guarded_post_checks_the_runs_access_once(client: TestClient) -> None:
    """The role checked before the body is read is the route's grant too (api.runs.deps): a
    heartbeat, posted every few seconds by every worker, pays for one access query, not two."""
    from sqlalchemy import event

    run_id = submit(client)["id"]
    start(client, run_id)
    engine = client.app.state.store.engine  # type: ignore[attr-defined]
    access_queries: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "project.team_id" in statement and "run.created_at" in statement:
            access_queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        beat = {"status": "heartbeat", "attempt": 1, "epoch": 1}
        assert client.post(f"{API}/runs/{run_id}/status", json=beat).status_code == 200
        guarded = len(access_queries)
        assert client.get(f"{API}/runs/{run_id}/events").status_code == 200  # unguarded: one
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert guarded == 1
    assert len(access_queries) == 2
