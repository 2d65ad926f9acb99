"""The worker side: status transitions, idempotent metrics, histograms, evaluation, events."""

from __future__ import annotations

import json
import math

from fastapi.testclient import TestClient

from tests.api.conftest import API, post_points, start, submit


def test_status_transitions_and_progress(client: TestClient) -> None:
    run = submit(client, {"epochs": 5})
    rid = run["id"]
    assert (
        client.post(
            f"{API}/runs/{rid}/status", json={"status": "heartbeat", "epoch": 1}
        ).status_code
        == 409
    )
    response = client.post(
        f"{API}/runs/{rid}/status",
        json={"status": "running", "worker_host": "gpu-box-1", "device": "NVIDIA H100"},
    )
    assert response.json() == {
        "id": rid,
        "status": "running",
        "attempt": 1,
        "revision": response.json()["revision"],
        "onset_epoch": None,  # the diagnosis has found no onset (it has no epochs yet)
    }
    client.post(f"{API}/runs/{rid}/status", json={"status": "heartbeat", "epoch": 3, "epochs": 5})
    body = client.get(f"{API}/runs/{rid}").json()
    assert (body["status"], body["worker_host"], body["device"], body["attempt"]) == (
        "running",
        "gpu-box-1",
        "NVIDIA H100",
        1,
    )
    assert body["progress"] == {"epoch": 3, "epochs": 5}
    assert body["started_at"] and body["heartbeat_at"] and not body["finished_at"]
    assert client.post(f"{API}/runs/{rid}/status", json={"status": "succeeded"}).status_code == 200
    # A retried final post is harmless; anything else after the end is a conflict.
    assert client.post(f"{API}/runs/{rid}/status", json={"status": "succeeded"}).status_code == 200
    assert (
        client.post(
            f"{API}/runs/{rid}/status", json={"status": "failed", "reason": "late"}
        ).status_code
        == 409
    )
    statuses = [
        e["payload"]["status"]
        for e in client.get(f"{API}/runs/{rid}/events", params={"kind": "status"}).json()
    ]
    assert statuses == ["queued", "running", "succeeded"]


def test_failure_needs_and_keeps_a_reason(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    missing = client.post(f"{API}/runs/{run['id']}/status", json={"status": "failed"})
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    client.post(
        f"{API}/runs/{run['id']}/status", json={"status": "failed", "reason": "CUDA out of memory"}
    )
    body = client.get(f"{API}/runs/{run['id']}").json()
    assert (body["status"], body["failure_reason"]) == ("failed", "CUDA out of memory")


def test_metrics_are_idempotent_per_run_key_step(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    points = [
        {"key": k, "step": s, "value": s * 0.1, "wall_time": 1000.0 + s}
        for k in ("train_loss", "val_loss")
        for s in range(1, 6)
    ]
    first = post_points(client, run["id"], points)
    assert (first["accepted"], first["duplicates"]) == (10, 0)
    again = post_points(
        client, run["id"], [*points[:4], {"key": "train_loss", "step": 6, "value": 0.6}]
    )
    assert (again["accepted"], again["duplicates"]) == (1, 4)
    # The same (key, step) twice in one batch is stored once, too.
    twice = post_points(client, run["id"], [{"key": "lr", "step": 1, "value": 1e-3}] * 3)
    assert (twice["accepted"], twice["duplicates"]) == (1, 2)
    # A retry that adds nothing leaves the revision (and every ETag) as it was.
    retry = post_points(client, run["id"], points)
    assert retry["accepted"] == 0 and retry["revision"] == twice["revision"]
    curves = client.get(
        f"{API}/runs/{run['id']}/curves", params={"keys": "train_loss,val_loss"}
    ).json()["series"]
    assert [s["steps"] for s in curves] == [[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5]]
    assert curves[0]["values"][0] == 0.1 and curves[0]["total_points"] == 6


def test_nan_and_infinity_are_stored_and_returned_as_valid_json(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    raw = (
        '{"points": [{"key": "loss", "step": 1, "value": NaN},'
        '{"key": "loss", "step": 2, "value": Infinity},'
        '{"key": "loss", "step": 3, "value": "-Infinity"},'
        '{"key": "loss", "step": 4, "value": "NaN"},'
        '{"key": "loss", "step": 5, "value": 1.5}]}'
    )
    response = client.post(
        f"{API}/runs/{run['id']}/metrics", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 5
    curves = client.get(f"{API}/runs/{run['id']}/curves")
    assert curves.status_code == 200
    strict = json.loads(
        curves.text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"bare {c} in JSON"))
    )
    assert strict["series"][0]["values"] == ["NaN", "Infinity", "-Infinity", "NaN", 1.5]
    csv = client.get(f"{API}/runs/{run['id']}/metrics.csv").text.splitlines()
    assert [line.split(",")[2] for line in csv[1:]] == ["nan", "inf", "-inf", "nan", "1.5"]
    bad_time = client.post(
        f"{API}/runs/{run['id']}/metrics",
        json={"points": [{"key": "loss", "step": 9, "value": 1.0, "wall_time": "NaN"}]},
    )
    assert bad_time.status_code == 422
    assert "points.0.wall_time" in bad_time.json()["detail"]


def test_bad_metric_batches_are_rejected_with_the_field(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    url = f"{API}/runs/{run['id']}/metrics"
    for point, field in [
        ({"key": "", "step": 1, "value": 1}, "points.0.key"),
        ({"key": "a b", "step": 1, "value": 1}, "points.0.key"),
        ({"key": "loss", "step": -1, "value": 1}, "points.0.step"),
        ({"key": "loss", "step": 1, "value": "high"}, "points.0.value"),
        ({"key": "loss", "step": 1}, "points.0.value"),
        ({"key": "loss", "step": 1, "value": 1, "extra": 2}, "points.0.extra"),
    ]:
        response = client.post(url, json={"points": [point]})
        assert response.status_code == 422, point
        assert field in [e["field"] for e in response.json()["errors"]]
    assert client.post(url, json={"point": []}).status_code == 422


def test_oversized_batch_is_413_and_stores_nothing(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    points = [{"key": "loss", "step": i, "value": 1.0} for i in range(10_001)]
    response = client.post(f"{API}/runs/{run['id']}/metrics", json={"points": points})
    assert response.status_code == 413 and "10000" in response.json()["detail"]
    assert client.get(f"{API}/runs/{run['id']}/curves").json()["series"] == []
    assert post_points(client, run["id"], points[:10_000])["accepted"] == 10_000
    huge = client.post(
        f"{API}/runs/{run['id']}/metrics",
        content=b"x" * (17 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413


def test_finished_or_cancelled_runs_take_no_more_data(client: TestClient) -> None:
    point = [{"key": "loss", "step": 1, "value": 1.0}]
    done = submit(client)
    start(client, done["id"])
    client.post(f"{API}/runs/{done['id']}/status", json={"status": "succeeded"})
    cancelled = submit(client)
    client.post(f"{API}/runs/{cancelled['id']}/cancel")
    for run in (done, cancelled):
        for path, body in [
            ("metrics", {"points": point}),
            (
                "histograms",
                {"histograms": [{"param": "w", "step": 1, "edges": [0, 1], "counts": [3]}]},
            ),
            ("events", {"events": [{"kind": "lr_change", "step": 1}]}),
        ]:
            response = client.post(f"{API}/runs/{run['id']}/{path}", json=body)
            assert response.status_code == 409, (run["status"], path)
            assert "takes no more data" in response.json()["detail"]


def test_histograms_are_stored_once_per_param_and_step(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    hist = {
        "param": "fc1.weight",
        "step": 1,
        "edges": [-1.0, 0.0, 1.0],
        "counts": [3, 5],
        "mean": 0.1,
        "std": 0.3,
        "near_zero": 0.25,
    }
    url = f"{API}/runs/{run['id']}/histograms"
    # A NaN summary number (e.g. from a diverged run) is accepted, as a JSON NaN token.
    nan_std = {**hist, "step": 2, "std": float("nan")}
    first = client.post(
        url,
        content=json.dumps({"histograms": [hist, nan_std]}),
        headers={"content-type": "application/json"},
    )
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 2
    assert client.post(url, json={"histograms": [{**hist, "std": 0.5}]}).json()["duplicates"] == 1
    index = client.get(url).json()
    assert index == {"run_id": run["id"], "params": {"fc1.weight": [1, 2]}}
    for bad, words in [
        ({**hist, "counts": [1]}, "one more edge"),
        ({**hist, "edges": [1.0, 0.0, 2.0]}, "strictly increasing"),
        ({**hist, "counts": [-1, 2]}, "non-negative"),
    ]:
        response = client.post(url, json={"histograms": [bad]})
        assert response.status_code == 422 and words in response.json()["detail"]


def test_evaluation_round_trip_and_replacement(client: TestClient) -> None:
    run = submit(client)
    start(client, run["id"])
    url = f"{API}/runs/{run['id']}/evaluation"
    assert client.get(url).status_code == 404
    evaluation = {
        "epoch": 5,
        "best_epoch": 4,
        "best_val_loss": 0.2,
        "labels": ["a", "b"],
        "confusion_matrix": [[5, 1], [2, 7]],
        "accuracy": 0.8,
        "roc": [{"label": "a", "fpr": [0, 1], "tpr": [0, 1], "auc": 0.5}],
        "rmse": None,
    }
    assert client.post(url, json=evaluation).status_code == 204
    got = client.get(url).json()["evaluation"]
    assert got["confusion_matrix"] == [[5, 1], [2, 7]] and got["roc"][0]["auc"] == 0.5
    assert client.post(url, json={**evaluation, "accuracy": 0.9}).status_code == 204
    assert client.get(url).json()["evaluation"]["accuracy"] == 0.9
    bad = client.post(url, json={**evaluation, "confusion_matrix": "diagonal"})
    assert bad.status_code == 422 and "confusion_matrix" in bad.json()["detail"]


def test_lr_changes_are_events_on_the_run(client: TestClient) -> None:
    run = submit(client, {"lr_schedule": {"kind": "reduce_on_plateau"}})
    start(client, run["id"])
    url = f"{API}/runs/{run['id']}/events"
    change = {
        "kind": "lr_change",
        "step": 3,
        "payload": {"old_lr": 1e-3, "new_lr": 5e-4, "reason": "val_loss plateaued"},
    }
    assert client.post(url, json={"events": [change]}).json()["accepted"] == 1
    assert client.post(url, json={"events": [change]}).json()["duplicates"] == 1
    events = client.get(url, params={"kind": "lr_change"}).json()
    assert [(e["step"], e["payload"]["new_lr"]) for e in events] == [(3, 5e-4)]
    assert math.isclose(events[0]["payload"]["old_lr"], 1e-3)


def exported_points(client: TestClient, run_id: int) -> list[tuple[str, int, str, float]]:
    lines = client.get(f"{API}/runs/{run_id}/metrics.jsonl").text.splitlines()
    return [(p["key"], p["step"], str(p["value"]), p["wall_time"]) for p in map(json.loads, lines)]


def test_a_series_posted_as_columns_is_stored_as_its_points_would_be(client: TestClient) -> None:
    """The same points as columns and one by one (out of order, a repeated step, NaN and
    Infinity, wall times given and not) store the same points; the first of a repeat wins."""
    steps = [3, 1, 2, 2, 5]
    values = [0.3, "NaN", 0.2, 9.9, "Infinity"]
    walls = [1003.0, 1001.0, 1002.0, 1009.0, 1005.0]
    as_points = submit(client)["id"]
    as_columns = submit(client)["id"]
    for run_id in (as_points, as_columns):
        start(client, run_id)
    points = [
        {"key": "loss", "step": s, "value": v, "wall_time": w}
        for s, v, w in zip(steps, values, walls, strict=True)
    ] + [{"key": "acc", "step": s, "value": 0.5, "wall_time": 7.0} for s in (0, 1)]
    one_by_one = post_points(client, as_points, points)
    columns = {
        "series": [
            {"key": "loss", "steps": steps, "values": values, "wall_times": walls},
            {"key": "empty", "steps": [], "values": []},
        ],
        "points": [{"key": "acc", "step": 0, "value": 0.5, "wall_time": 7.0}],
    }
    response = client.post(f"{API}/runs/{as_columns}/metrics", json=columns)
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["duplicates"]) == (5, 1)
    more = {"series": [{"key": "acc", "steps": [1, 0], "values": [0.5, 0.1]}], "points": []}
    extra = client.post(f"{API}/runs/{as_columns}/metrics", json=more).json()
    assert (extra["accepted"], extra["duplicates"]) == (1, 1)  # a series gets no wall time: now
    assert one_by_one["accepted"] == 6
    by_points, by_columns = exported_points(client, as_points), exported_points(client, as_columns)
    assert [p[:3] for p in by_points] == [p[:3] for p in by_columns]
    assert ("loss", 2, "0.2", 1002.0) in by_columns and (
        "loss",
        5,
        "Infinity",
        1005.0,
    ) in by_columns
    assert [p[3] for p in by_columns if p[0] == "loss"] == [1001.0, 1002.0, 1003.0, 1005.0]


def test_bad_series_are_rejected_with_the_field_and_count_toward_the_limit(
    client: TestClient,
) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    url = f"{API}/runs/{run_id}/metrics"
    for one, field in [
        ({"key": "a b", "steps": [1], "values": [1.0]}, "series.0.key"),
        ({"key": "loss", "steps": [1, -1], "values": [1.0, 2.0]}, "series.0.steps.1"),
        ({"key": "loss", "steps": [1], "values": ["high"]}, "series.0.values.0"),
        ({"key": "loss", "steps": [1, 2], "values": [1.0]}, "series.0.values"),
        ({"key": "loss", "steps": [1], "values": [1.0], "wall_times": []}, "series.0.wall_times"),
        (
            {"key": "loss", "steps": [1], "values": [1.0], "wall_times": ["NaN"]},
            "series.0.wall_times.0",
        ),
        ({"key": "loss", "steps": [1]}, "series.0.values"),
    ]:
        response = client.post(url, json={"series": [one]})
        assert response.status_code == 422, one
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert client.post(url, json={}).status_code == 422
    over = {"key": "loss", "steps": list(range(6_000)), "values": [1.0] * 6_000}
    response = client.post(url, json={"series": [over, {**over, "key": "acc"}]})
    assert response.status_code == 413 and "10000" in response.json()["detail"]
    assert client.get(f"{API}/runs/{run_id}/curves").json()["series"] == []
