"""MLflow's tracking protocol under /mlflow, spoken as its client speaks it (snake_case JSON,
64-bit integers as strings, NaN as "NaN"): the run it logs is a fitlens run, and errors come
in MLflow's shape. The unmodified `mlflow` client against a real server: tests/e2e/test_mlflow.py.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import API, bearer

ML = "/mlflow/api/2.0/mlflow"
NOW_MS = 1_790_000_000_000


def call(client: TestClient, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    if body is None:
        response = client.get(f"{ML}{path}", **kw)
    else:
        response = client.post(f"{ML}{path}", json=body, **kw)
    return response


def ok(client: TestClient, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    response = call(client, path, body, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def new_run(
    client: TestClient, experiment: str = "digits", started: int = NOW_MS, **tags: str
) -> str:
    found = call(client, "/experiments/get-by-name", params={"experiment_name": experiment})
    if found.status_code == 404:
        exp_id = ok(client, "/experiments/create", {"name": experiment})["experiment_id"]
    else:
        exp_id = found.json()["experiment"]["experiment_id"]
    body = {
        "experiment_id": exp_id,
        "start_time": str(started),
        "tags": [{"key": k.replace("__", "."), "value": v} for k, v in tags.items()],
    }
    return str(ok(client, "/runs/create", body)["run"]["info"]["run_id"])


def metric(key: str, step: int, value: float | str) -> dict[str, Any]:
    return {"key": key, "value": value, "timestamp": str(NOW_MS + step), "step": str(step)}


def overfitting(epochs: int = 30) -> list[dict[str, Any]]:
    points = []
    for e in range(1, epochs + 1):
        points.append(metric("train_loss", e, 1.0 / e))
        points.append(metric("val_loss", e, 0.5 + abs(e - 10) * 0.05))
    return points


def test_a_run_logged_through_mlflow_is_a_fitlens_run_with_curves_and_a_diagnosis(
    client: TestClient,
) -> None:
    run_id = new_run(client, mlflow__runName="first", mlflow__note__content="a note", source="x")
    ok(
        client,
        "/runs/log-batch",
        {
            "run_id": run_id,
            "metrics": overfitting(),
            "params": [{"key": "lr", "value": "0.01"}, {"key": "optimizer", "value": "adam"}],
            "tags": [{"key": "team", "value": "vision"}],
        },
    )
    ok(client, "/runs/log-metric", {"run_id": run_id, **metric("val_accuracy", 30, 0.9)})
    ok(client, "/runs/log-parameter", {"run_uuid": run_id, "key": "epochs", "value": "30"})
    ok(client, "/runs/set-tag", {"run_id": run_id, "key": "stage", "value": "dev"})

    run = ok(client, "/runs/get", params={"run_id": run_id})["run"]
    assert run["info"]["status"] == "RUNNING" and run["info"]["run_name"] == "first"
    assert run["info"]["start_time"] == NOW_MS
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == {"lr": "0.01", "optimizer": "adam", "epochs": "30"}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags == {
        "source": "x",
        "team": "vision",
        "stage": "dev",
        "mlflow.runName": "first",
        "mlflow.note.content": "a note",
    }
    latest = {m["key"]: (m["step"], m["value"]) for m in run["data"]["metrics"]}
    assert latest == {
        "train_loss": (30, 1 / 30),
        "val_loss": (30, 0.5 + 20 * 0.05),
        "val_accuracy": (30, 0.9),
    }

    info = ok(client, "/runs/update", {"run_id": run_id, "status": "FINISHED"})["run_info"]
    assert info["status"] == "FINISHED" and "end_time" in info

    ours = client.get(f"{API}/runs/{run_id}").json()
    assert ours["status"] == "succeeded" and ours["source"] == "client"
    assert ours["name"] == "first" and ours["notes"] == "a note" and ours["project"] == "digits"
    assert ours["params"] == {"lr": "0.01", "optimizer": "adam", "epochs": "30"}
    assert ours["diagnosis"]["verdict"] == "overfitting"
    assert ours["diagnosis"]["onset_epoch"] == 10
    curves = client.get(f"{API}/runs/{run_id}/curves", params={"keys": "train_loss,val_loss"})
    assert [s["total_points"] for s in curves.json()["series"]] == [30, 30]
    # A number among the params fills the column that `where` filters.
    found = client.get(f"{API}/runs", params={"where": "lr>0.005"}).json()["items"]
    assert [r["id"] for r in found] == [int(run_id)]


def test_a_metric_s_history_comes_back_in_pages_and_nan_as_mlflow_writes_it(
    client: TestClient,
) -> None:
    run_id = new_run(client)
    points = [metric("loss", s, "NaN" if s == 7 else s / 10) for s in range(250)]
    for start in range(0, 250, 100):
        ok(client, "/runs/log-batch", {"run_id": run_id, "metrics": points[start : start + 100]})
    got, token = [], ""
    while True:
        page = ok(
            client,
            "/metrics/get-history",
            params={
                "run_id": run_id,
                "metric_key": "loss",
                "max_results": 100,
                "page_token": token,
            },
        )
        got += page["metrics"]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert [m["step"] for m in got] == list(range(250))
    assert got[7]["value"] == "NaN" and got[8]["value"] == 0.8
    assert got[3]["timestamp"] == NOW_MS + 3


def test_a_param_is_logged_once_and_a_repeat_post_stores_nothing_twice(
    client: TestClient,
) -> None:
    run_id = new_run(client)
    batch = {
        "run_id": run_id,
        "metrics": [metric("loss", 1, 0.5)],
        "params": [{"key": "lr", "value": "0.1"}],
    }
    ok(client, "/runs/log-batch", batch)
    ok(client, "/runs/log-batch", batch)  # a retried post
    changed = call(client, "/runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "1"})
    assert changed.status_code == 400
    assert changed.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in changed.json()["message"]
    history = ok(client, "/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
    assert len(history["metrics"]) == 1


def test_runs_search_filters_orders_and_pages_as_mlflow_does(client: TestClient) -> None:
    ids = []
    for i, lr in enumerate(("0.1", "0.01", "0.001")):
        run_id = new_run(client, started=NOW_MS + i, stage="dev" if i < 2 else "prod")
        ok(
            client,
            "/runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [metric("val_loss", 1, 0.3 * (i + 1))],
                "params": [{"key": "lr", "value": lr}],
            },
        )
        ids.append(run_id)
    exp = ok(client, "/experiments/get-by-name", params={"experiment_name": "digits"})
    exp_id = exp["experiment"]["experiment_id"]

    def search(filter: str = "", order_by: list[str] | None = None, **kw: Any) -> Any:
        body = {"experiment_ids": [exp_id], "filter": filter, "order_by": order_by or [], **kw}
        return ok(client, "/runs/search", body)

    def found(answer: Any) -> list[str]:
        return [r["info"]["run_id"] for r in answer.get("runs", [])]

    assert found(search()) == ids[::-1]  # the latest started first
    assert found(search("metrics.val_loss < 0.5")) == [ids[0]]
    assert found(search("metrics.val_loss >= 0.5 and tags.stage = 'dev'")) == [ids[1]]
    assert found(search("params.lr IN ('0.1', '0.001')", ["metrics.val_loss DESC"])) == [
        ids[2],
        ids[0],
    ]
    assert found(search("attributes.status = 'RUNNING' and tags.`stage` LIKE 'pr%'")) == [ids[2]]
    first = search(order_by=["metrics.val_loss ASC"], max_results=2)
    rest = search(
        order_by=["metrics.val_loss ASC"], max_results=2, page_token=first["next_page_token"]
    )
    assert found(first) + found(rest) == ids and "next_page_token" not in rest
    bad = call(client, "/runs/search", {"experiment_ids": [exp_id], "filter": "metrics.x ~ 1"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "filter" in bad.json()["message"]


def test_experiments_are_the_team_s_projects_and_zero_is_the_default_one(
    client: TestClient,
) -> None:
    assert ok(client, "/experiments/get", params={"experiment_id": "0"})["experiment"]["name"] == (
        "default"
    )
    run = ok(client, "/runs/create", {"experiment_id": "0", "run_name": "in default"})["run"]
    ours = client.get(f"{API}/runs/{run['info']['run_id']}").json()
    assert ours["project"] == "default" and ours["name"] == "in default"
    made = ok(client, "/experiments/create", {"name": "vision"})["experiment_id"]
    again = call(client, "/experiments/create", {"name": "vision"})
    assert again.status_code == 400 and again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    listed = ok(client, "/experiments/search", {"filter": "name LIKE 'vis%'"})["experiments"]
    assert [e["experiment_id"] for e in listed] == [made]
    names = [e["name"] for e in ok(client, "/experiments/search", {})["experiments"]]
    assert sorted(names) == ["default", "vision"]


def test_errors_come_in_mlflow_s_shape_and_name_what_is_wrong(client: TestClient) -> None:
    run_id = new_run(client)
    anonymous = TestClient(client.app)
    for response in (
        anonymous.get(f"{ML}/runs/get", params={"run_id": run_id}),
        anonymous.post(f"{ML}/runs/log-batch", json={"run_id": run_id}),
    ):
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    missing = call(client, "/runs/get", params={"run_id": "123456"})
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert call(client, "/runs/get", params={"run_id": "a1b2"}).status_code == 404
    spaced = call(client, "/runs/log-metric", {"run_id": run_id, **metric("my loss", 1, 1.0)})
    assert spaced.status_code == 400 and spaced.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "key" in spaced.json()["message"]
    too_many = [metric("loss", s, 1.0) for s in range(1001)]
    over = call(client, "/runs/log-batch", {"run_id": run_id, "metrics": too_many})
    assert over.status_code == 400 and "metrics" in over.json()["message"]
    for path in (
        "/mlflow/api/2.0/mlflow-artifacts/artifacts/1/x.txt",
        f"{ML}/registered-models/create",
    ):
        answer = client.post(path, json={})
        assert answer.status_code == 501 and answer.json()["error_code"] == "NOT_IMPLEMENTED"
    big = client.post(
        f"{ML}/runs/log-batch",
        content=b"x" * (17 << 20),
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413 and big.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    # The API's own routes keep their own shape.
    assert "detail" in anonymous.get(f"{API}/runs").json()


def test_a_finished_run_takes_no_more_points_and_says_why(client: TestClient) -> None:
    run_id = new_run(client)
    ok(client, "/runs/update", {"run_id": run_id, "status": "KILLED", "end_time": str(NOW_MS)})
    late = call(client, "/runs/log-metric", {"run_id": run_id, **metric("loss", 1, 1.0)})
    assert late.status_code == 409 and late.json()["error_code"] == "INVALID_STATE"
    info = ok(client, "/runs/get", params={"run_id": run_id})["run"]["info"]
    assert info["status"] == "KILLED" and info["end_time"] == NOW_MS


def test_nan_and_infinity_are_stored_as_themselves(client: TestClient) -> None:
    run_id = new_run(client)
    values: list[float | str] = ["NaN", "Infinity", "-Infinity", 1.5]
    batch = [metric("odd", s, v) for s, v in enumerate(values)]
    ok(client, "/runs/log-batch", {"run_id": run_id, "metrics": batch})
    curve = client.get(f"{API}/runs/{run_id}/curves", params={"keys": "odd"}).json()
    stored = [float(v) for v in curve["series"][0]["values"]]
    assert math.isnan(stored[0]) and stored[1:] == [math.inf, -math.inf, 1.5]


def test_another_team_sees_none_of_it_and_a_viewer_writes_nothing(client: TestClient) -> None:
    run_id = new_run(client)
    ok(client, "/runs/log-batch", {"run_id": run_id, "metrics": [metric("loss", 1, 1.0)]})
    exp_id = ok(client, "/runs/get", params={"run_id": run_id})["run"]["info"]["experiment_id"]
    people = client.app.state.store.people  # type: ignore[attr-defined]
    other = bearer(people.create_user("olga", team="other", role="owner")[1])
    viewer = bearer(people.create_user("vera", team="lab", role="viewer")[1])
    member = bearer(people.create_user("bob", team="lab", role="member")[1])
    hidden = [
        call(client, "/runs/get", params={"run_id": run_id}, headers=other),
        call(
            client,
            "/metrics/get-history",
            params={"run_id": run_id, "metric_key": "loss"},
            headers=other,
        ),
        call(client, "/experiments/get", params={"experiment_id": exp_id}, headers=other),
        call(
            client, "/experiments/get-by-name", params={"experiment_name": "digits"}, headers=other
        ),
        call(
            client,
            "/runs/log-batch",
            {"run_id": run_id, "metrics": [metric("loss", 2, 1.0)]},
            headers=other,
        ),
        call(client, "/runs/update", {"run_id": run_id, "status": "FINISHED"}, headers=other),
        call(client, "/runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"}, headers=other),
        call(client, "/runs/delete", {"run_id": run_id}, headers=other),
        call(client, "/runs/delete-tag", {"run_id": run_id, "key": "k"}, headers=other),
        call(client, "/runs/create", {"experiment_id": exp_id}, headers=other),
    ]
    assert [(r.status_code, r.json()["error_code"]) for r in hidden] == [
        (404, "RESOURCE_DOES_NOT_EXIST")
    ] * len(hidden)
    searched = ok(client, "/runs/search", {"experiment_ids": [exp_id]}, headers=other)
    assert searched == {"runs": []}
    assert ok(client, "/experiments/search", {}, headers=other)["experiments"] == []
    refused = [
        call(
            client,
            "/runs/log-batch",
            {"run_id": run_id, "metrics": [metric("loss", 2, 1.0)]},
            headers=viewer,
        ),
        call(client, "/runs/create", {"experiment_id": exp_id}, headers=viewer),
        call(client, "/runs/delete", {"run_id": run_id}, headers=member),  # owners delete
    ]
    assert [r.json()["error_code"] for r in refused] == ["PERMISSION_DENIED"] * 3
    assert ok(client, "/runs/get", params={"run_id": run_id}, headers=viewer)["run"]["data"]
    ok(client, "/runs/delete", {"run_id": run_id})
    assert client.get(f"{API}/runs/{run_id}").status_code == 404
