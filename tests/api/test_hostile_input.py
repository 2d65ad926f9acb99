"""Input that used to be stored and then break reads for good, or that asked a worker for more
than any machine has: each is now a 422 naming the field, before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.conftest import API, start, submit

JSON = {"content-type": "application/json"}
SURROGATE = b'"\\ud800"'  # a lone UTF-16 surrogate, as JSON escapes it


def count_runs(client: TestClient) -> int:
    with client.app.state.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT COUNT(*) FROM run")).scalar_one())


def raw(client: TestClient, method: str, path: str, body: bytes) -> Any:
    return client.request(method, f"{API}{path}", content=body, headers=JSON)


def field_of(response: Any) -> str:
    assert response.status_code == 422, response.text
    return str(response.json()["errors"][0]["field"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"spec": {"dataset": {"data_dir": ' + SURROGATE + b"}}}", "spec.dataset.data_dir"),
        (b'{"name": ' + SURROGATE + b"}", "name"),
        (b'{"notes": "ok ' + SURROGATE[1:] + b"}", "notes"),
        (b'{"tags": ["a", ' + SURROGATE + b"]}", "tags.1"),
        (b'{"spec": {' + SURROGATE + b": 1}}", "spec"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_before_the_run_is(
    client: TestClient, body: bytes, field: str
) -> None:
    before = count_runs(client)
    response = raw(client, "POST", "/jobs", body)
    assert field_of(response) == field
    assert "surrogate" in response.json()["detail"]
    assert count_runs(client) == before
    assert client.get(f"{API}/runs").status_code == 200


def test_every_body_is_checked_at_the_door(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    assert field_of(raw(client, "PATCH", f"/runs/{run_id}", b'{"name": ' + SURROGATE + b"}")) == (
        "name"
    )
    evaluation = b'{"epoch": 1, "labels": ["a", ' + SURROGATE + b"]}"
    assert field_of(raw(client, "POST", f"/runs/{run_id}/evaluation", evaluation)) == "labels.1"
    event = (
        b'{"events": [{"kind": "lr_change", "step": 1, "payload": {"why": ' + SURROGATE + b"}}]}"
    )
    assert field_of(raw(client, "POST", f"/runs/{run_id}/events", event)) == (
        "events.0.payload.why"
    )
    # A valid pair (an emoji) is text like any other.
    fine = raw(client, "PATCH", f"/runs/{run_id}", b'{"name": "\\ud83d\\ude00"}')
    assert fine.status_code == 200 and fine.json()["name"] == "\U0001f600"
    for path in ("", "/events", "/evaluation"):
        assert client.get(f"{API}/runs/{run_id}{path}").status_code in (200, 404)


def test_absurd_nesting_is_refused_and_free_form_payloads_stay_shallow(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)

    def event(depth: int) -> bytes:
        payload = b'{"a": ' * depth + b"1" + b"}" * depth
        return b'{"events": [{"kind": "lr_change", "step": 1, "payload": ' + payload + b"}]}"

    deep = raw(client, "POST", f"/runs/{run_id}/events", event(900))
    assert field_of(deep) == "body" and "200 levels" in deep.json()["detail"]
    assert field_of(raw(client, "POST", f"/runs/{run_id}/events", event(40))) == (
        "events.0.payload"
    )
    assert raw(client, "POST", f"/runs/{run_id}/events", event(10)).status_code == 200
    assert client.get(f"{API}/runs/{run_id}/events").status_code == 200
    # Deep JSON where pydantic-core parses the body itself (the metrics hot path).
    metrics = b'{"points": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert raw(client, "POST", f"/runs/{run_id}/metrics", metrics).status_code == 422


def test_a_nul_in_a_query_or_path_is_a_422_naming_it(client: TestClient) -> None:
    submit(client, name="x")
    response = client.get(f"{API}/runs?name=a%00b")
    assert field_of(response) == "name"
    assert field_of(client.get(f"{API}/runs?created_by=%00")) == "created_by"
    assert field_of(client.delete(f"{API}/teams/1/members/a%00b")) == "path"


@pytest.mark.parametrize(
    "field", ["optimizer.weight_decay", "regularization.l2", "model.init.std", "optimizer.lr"]
)
@pytest.mark.parametrize("value", [b"Infinity", b"-Infinity", b"NaN", b"1e400"])
def test_every_spec_number_is_finite(client: TestClient, field: str, value: bytes) -> None:
    *parents, leaf = field.split(".")
    body = b'"' + leaf.encode() + b'": ' + value
    for parent in reversed(parents):
        body = b'"' + parent.encode() + b'": {' + body + b"}"
    before = count_runs(client)
    response = raw(client, "POST", "/jobs", b'{"spec": {' + body + b"}}")
    # The model's field names its kind too: spec.model.mlp.init.std.
    assert field_of(response).startswith(f"spec.{parents[0]}")
    assert field_of(response).endswith(leaf)
    assert count_runs(client) == before


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"model": {"hidden": [10**12]}}, "spec.model", "parameters"),
        ({"model": {"hidden": [10**7] * 16}}, "spec.model", "parameters"),
        (
            {"dataset": {"name": "synthetic", "synthetic": {"n_samples": 10**12}}},
            "spec.dataset.synthetic.n_samples",
            "data elements",
        ),
        (
            {"model": {"kind": "cnn", "channels": [10**6]}},
            "spec.model",
            "parameters",
        ),
        (
            {"dataset": {"name": "mnist"}, "batch_size": 10**6, "model": {"hidden": [20_000]}},
            "spec.batch_size",
            "activation elements",
        ),
        (
            {"dataset": {"name": "cifar10"}, "model": {"kind": "cnn", "channels": [2048]}},
            "spec.batch_size",
            "activation elements",
        ),
        ({"dataset": {"train_subset": 10**18}}, "spec.dataset", "1797 examples"),
    ],
)
def test_a_job_bigger_than_the_budget_is_refused_with_the_budget(
    client: TestClient, spec: dict[str, Any], field: str, words: str
) -> None:
    before = count_runs(client)
    response = client.post(f"{API}/jobs", json={"spec": spec})
    assert field_of(response) == field
    assert words in response.json()["detail"]
    assert count_runs(client) == before


def test_the_budget_is_a_setting(database_url: str) -> None:
    from api.core.config import Settings
    from api.main import create_app
    from api.runs.queue import RecordingQueue

    app = create_app(
        Settings(database_url=database_url, max_model_parameters=1000), enqueuer=RecordingQueue()
    )
    _, token = app.state.store.people.create_user("budget-user", team="budget-team")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as small:
        refused = small.post(f"{API}/jobs", json={"spec": {"model": {"hidden": [128]}}})
        assert refused.status_code == 422
        assert "at most 1,000 (FITLENS_MAX_MODEL_PARAMETERS)" in refused.json()["detail"]
        assert (
            small.post(f"{API}/jobs", json={"spec": {"model": {"hidden": [4]}}}).status_code == 201
        )
    app.state.store.engine.dispose()


@pytest.mark.parametrize("data_dir", ["/etc", "../../", "/root/.ssh", "a/../../b", ".", "~/x"])
def test_a_spec_cannot_name_a_folder_outside_the_data_directory(
    client: TestClient, data_dir: str
) -> None:
    spec = {"dataset": {"name": "mnist", "data_dir": data_dir, "download": True}}
    response = client.post(f"{API}/jobs", json={"spec": spec})
    assert field_of(response) == "spec.dataset.data_dir"
    assert (
        client.post(
            f"{API}/jobs", json={"spec": {"dataset": {"name": "mnist", "data_dir": "mnist-2"}}}
        ).status_code
        == 201
    )


def test_owners_delete_a_run_with_all_its_data(client: TestClient, queue: Any) -> None:
    run_id = submit(client, tags=["t"])["id"]
    worker = {"Authorization": f"Bearer {queue.tokens[run_id]}"}
    assert client.post(f"{API}/runs/{run_id}/status", json={"status": "running"}, headers=worker)
    client.post(
        f"{API}/runs/{run_id}/metrics",
        json={"points": [{"key": "val_loss", "step": 1, "value": 0.5}]},
        headers=worker,
    )
    assert client.delete(f"{API}/runs/{run_id}").status_code == 204
    assert client.get(f"{API}/runs/{run_id}").status_code == 404
    assert client.delete(f"{API}/runs/{run_id}").status_code == 404
    # The worker learns it at its next post, as for a cancel.
    late = client.post(f"{API}/runs/{run_id}/status", json={"status": "heartbeat"}, headers=worker)
    assert late.status_code == 401
    with client.app.state.store.engine.connect() as conn:  # type: ignore[attr-defined]
        for table in ("metric_block", "metric_series", "run_event", "runtag", "api_token"):
            column = "run_id"
            left = conn.execute(
                text(f"SELECT COUNT(*) FROM {table} WHERE {column} = :r"), {"r": run_id}
            )
            assert left.scalar_one() == 0, table
