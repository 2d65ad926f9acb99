"""Every run's diagnosis through the API: stored as epochs arrive, carried by the run, filtered
and sorted on, recomputed with the caller's rules, early stops and restored epochs reported."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.diagnosis.service import DiagnosisStore
from api.evaluation.service import EvaluationStore
from api.metrics.schemas import MetricPointDict
from api.metrics.service import MetricStore
from api.runs.access import RunAccess
from tests.api.conftest import API, post_points, start, submit

OVERFIT = {  # val_loss turns up after epoch 3 while train_loss keeps falling
    "train_loss": [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
    "val_loss": [1.1, 0.9, 0.7, 0.75, 0.8, 0.9, 1.0, 1.1],
    "val_accuracy": [0.5, 0.6, 0.8, 0.78, 0.75, 0.72, 0.7, 0.69],
}
IMPROVING = {"train_loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.8, 0.75]}
FLAT = {  # a good fit: validation flattens and stays
    "train_loss": [1.0, 0.5, 0.3, 0.25, 0.24, 0.23, 0.22, 0.21],
    "val_loss": [1.0, 0.55, 0.35, 0.30, 0.30, 0.301, 0.30, 0.302],
}


def epochs(curves: dict[str, list[float]], upto: int | None = None) -> list[dict[str, Any]]:
    return [
        {"key": key, "step": i, "value": value}
        for key, values in curves.items()
        for i, value in enumerate(values[:upto], 1)
    ]


def run_with(client: TestClient, curves: dict[str, list[float]], name: str = "") -> int:
    run_id = submit(client, name=name or None)["id"]
    start(client, run_id)
    post_points(client, run_id, epochs(curves))
    return run_id


def test_the_diagnosis_follows_the_epochs_and_is_carried_by_the_run(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    assert client.get(f"{API}/runs/{run_id}").json()["diagnosis"] is None
    assert client.get(f"{API}/runs/{run_id}/diagnosis").status_code == 404
    post_points(client, run_id, epochs(OVERFIT, upto=3))
    early = client.get(f"{API}/runs/{run_id}").json()["diagnosis"]
    assert early["epochs"] == 3 and early["verdict"] == "still improving"
    # The rest of the epochs, in a later post: the stored diagnosis follows.
    post_points(client, run_id, epochs(OVERFIT))
    d = client.get(f"{API}/runs/{run_id}").json()["diagnosis"]
    assert d["verdict"] == "overfitting" and d["onset_epoch"] == 3
    assert (d["best_epoch"], d["min_val_loss"], d["epochs"]) == (3, 0.7, 8)
    assert d["at_best"]["val_accuracy"] == 0.8 and d["final"]["val_accuracy"] == 0.69
    assert abs(d["final_gap"] - 1.0) < 1e-9 and abs(d["gap_at_best"] - 0.1) < 1e-9
    assert d["rules"]["patience"] == 3
    assert client.get(f"{API}/runs/{run_id}/diagnosis").json() == d


def test_rules_of_the_callers_own(client: TestClient) -> None:
    run_id = run_with(client, OVERFIT)
    strict = client.get(f"{API}/runs/{run_id}/diagnosis", params={"patience": 6})
    assert strict.status_code == 200
    assert strict.json()["verdict"] != "overfitting" and strict.json()["rules"]["patience"] == 6
    loose = client.get(f"{API}/runs/{run_id}/diagnosis", params={"tolerance": 0.5})
    assert loose.json()["onset_epoch"] is None  # val never climbs 50% above its minimum
    bad = client.get(f"{API}/runs/{run_id}/diagnosis", params={"patience": 0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "patience"
    # The stored diagnosis keeps the default rules.
    assert client.get(f"{API}/runs/{run_id}").json()["diagnosis"]["verdict"] == "overfitting"


def test_runs_filter_by_verdict_and_sort_by_summary_values(client: TestClient) -> None:
    overfit = run_with(client, OVERFIT, "overfit")
    improving = run_with(client, IMPROVING, "improving")
    flat = run_with(client, FLAT, "flat")
    bare = submit(client, name="bare")["id"]  # no epochs: no diagnosis

    def names(**params: Any) -> list[str]:
        response = client.get(f"{API}/runs", params=params)
        assert response.status_code == 200, response.text
        return [r["name"] for r in response.json()["items"]]

    assert names(verdict="overfitting") == ["overfit"]
    assert sorted(names(verdict=["overfitting", "still improving"])) == ["improving", "overfit"]
    # min val loss: flat 0.30, overfit 0.7, improving 0.75; the undiagnosed run last, both ways.
    assert names(sort="min_val_loss") == ["flat", "overfit", "improving", "bare"]
    assert names(sort="-min_val_loss") == ["improving", "overfit", "flat", "bare"]
    assert names(sort="onset_epoch")[0] == "overfit"
    # Pages of one follow the same order through the cursor, nulls included.
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"sort": "-min_val_loss", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"{API}/runs", params=params).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [improving, overfit, flat, bare]
    assert client.get(f"{API}/runs", params={"sort": "verdict"}).status_code == 422
    assert client.get(f"{API}/runs", params={"verdict": "bad"}).status_code == 422


def test_where_tests_results_dotted_spec_paths_and_free_text(client: TestClient) -> None:
    overfit = run_with(client, OVERFIT, "overfit")
    flat = run_with(client, FLAT, "flat")
    adam_cnn = submit(client, {"model": {"kind": "cnn"}}, name="conv", notes="Tried a CNN")["id"]
    sgd = submit(client, {"optimizer": {"name": "sgd", "momentum": 0.9}}, tags=["Momentum"])
    client.patch(f"{API}/runs/{flat}", json={"notes": "the 100% baseline"}).raise_for_status()

    def ids(where: str = "", **params: Any) -> list[int]:
        response = client.get(f"{API}/runs", params={"where": where, **params})
        assert response.status_code == 200, response.text
        return sorted(r["id"] for r in response.json()["items"])

    # The runs filter box's own example (a 422 before), and results (val_accuracy was 0.8
    # at overfit's best epoch, the flat run logged none).
    assert ids("optimizer.name=adam") == sorted([overfit, flat, adam_cnn])
    assert ids("optimizer.name=sgd,optimizer.momentum>=0.5") == [sgd["id"]]
    assert ids("model.kind=cnn") == [adam_cnn]
    assert ids("verdict=overfitting") == [overfit]
    assert ids("onset_epoch<10") == [overfit]
    assert ids("min_val_loss<0.5") == [flat]
    assert ids("val_accuracy>0.95") == [] and ids("val_accuracy>0.6") == [overfit]
    assert ids("early_stopped=false") == sorted([overfit, flat])
    assert ids(q="cnn") == [adam_cnn]  # notes, case-insensitive
    assert ids(q="momentum") == [sgd["id"]]  # a tag
    assert ids(q="100%") == [flat]  # LIKE's wildcards are plain text here
    for where, says in [
        ("optimizer.colour=red", "no field 'colour'"),
        ("model.hidden=1", "not a single value"),
        ("optimizer=1,optimizer.lr=fast", "needs a number"),
        ("verdict>overfitting", "= or != only"),
        ("optimizer.nesterov=maybe", "true or false"),
    ]:
        response = client.get(f"{API}/runs", params={"where": where})
        assert response.status_code == 422, where
        assert response.json()["errors"][0]["field"] == "where" and says in response.text


def test_an_unknown_query_parameter_is_a_422_naming_it(client: TestClient) -> None:
    run_id = run_with(client, FLAT)
    for path, params in [
        ("/runs", {"verdicts": "overfitting"}),  # a misspelt filter no longer lists everything
        (f"/runs/{run_id}/curves", {"key": "val_loss"}),
        ("/studies", {"sort": "name"}),
    ]:
        response = client.get(f"{API}{path}", params=params)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["errors"][0]["field"] == next(iter(params))
    assert client.get(f"{API}/runs/{run_id}/curves", params={"keys": "val_loss"}).is_success


def test_an_early_stop_reports_its_restored_epoch_and_compare_uses_it(
    client: TestClient,
) -> None:
    run_id = run_with(client, {k: v[:6] for k, v in OVERFIT.items()})
    stop = {
        "kind": "early_stopped",
        "step": 6,
        "payload": {"reason": "val_loss did not improve for 3 epochs", "restored_epoch": 3},
    }
    assert client.post(f"{API}/runs/{run_id}/events", json={"events": [stop]}).status_code == 200
    d = client.get(f"{API}/runs/{run_id}/diagnosis").json()
    assert d["early_stopped"] and d["restored_epoch"] == 3 and d["evaluated_epoch"] == 3
    assert d["stop_reason"] == "val_loss did not improve for 3 epochs"
    summary = client.get(f"{API}/compare", params={"runs": run_id}).json()["runs"][0]["summary"]
    assert summary["evaluated_epoch"] == 3 and summary["val_accuracy"] == 0.8
    assert summary["final_val_accuracy"] == 0.72  # the last epoch's, named as such
    assert summary["verdict"] == "overfitting" and summary["onset_epoch"] == 3


def test_a_diverged_run_and_a_retry_that_clears_its_diagnosis(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    points = epochs({"train_loss": [1.0, 2.0], "val_loss": [1.0, 3.0]})
    points += [{"key": "train_loss", "step": 3, "value": "NaN"}]
    points += [{"key": "val_loss", "step": 3, "value": "Infinity"}]
    post_points(client, run_id, points)
    assert client.get(f"{API}/runs/{run_id}").json()["diagnosis"]["verdict"] == "diverged"
    failed = {"status": "failed", "reason": "diverged"}
    assert client.post(f"{API}/runs/{run_id}/status", json=failed).status_code == 200
    assert client.post(f"{API}/runs/{run_id}/retry").status_code == 200
    assert client.get(f"{API}/runs/{run_id}").json()["diagnosis"] is None


def test_a_long_run_is_judged_at_most_once_an_interval_and_caught_up_by_its_heartbeat(
    client: TestClient, monkeypatch: Any
) -> None:
    from api.diagnosis import service

    monkeypatch.setattr(service, "LIVE_INTERVAL", 3600.0)  # no interval ends by itself here
    eager = service.EAGER_EPOCHS
    curves = {
        "train_loss": [1.0 / e for e in range(1, eager + 11)],
        "val_loss": [1.0 / e + 0.01 for e in range(1, eager + 11)],
    }
    run_id = submit(client)["id"]
    start(client, run_id)
    post_points(client, run_id, epochs(curves, upto=eager))  # short so far: judged at once
    url = f"{API}/runs/{run_id}/diagnosis"
    assert client.get(url).json()["epochs"] == eager
    for e in range(eager + 1, eager + 11):  # past EAGER_EPOCHS, within the interval: not yet
        post_points(client, run_id, [p for p in epochs(curves) if p["step"] == e])
    assert client.get(url).json()["epochs"] == eager
    beat = {"status": "heartbeat", "attempt": 1, "epoch": eager + 10}
    client.post(f"{API}/runs/{run_id}/status", json=beat)  # still within the interval
    assert client.get(url).json()["epochs"] == eager
    monkeypatch.setattr(service, "LIVE_INTERVAL", 0.0)  # the interval is over
    client.post(f"{API}/runs/{run_id}/status", json=beat)  # the heartbeat catches it up
    caught_up = client.get(url).json()
    assert (
        caught_up["epochs"] == eager + 10
        and caught_up["final"]["val_loss"] == curves["val_loss"][-1]
    )
    # Finishing always judges every epoch, whatever the interval.
    monkeypatch.setattr(service, "LIVE_INTERVAL", 3600.0)
    post_points(
        client,
        run_id,
        [
            {"key": "train_loss", "step": eager + 11, "value": 0.001},
            {"key": "val_loss", "step": eager + 11, "value": 0.5},
        ],
    )
    done = {"status": "succeeded", "attempt": 1}
    assert client.post(f"{API}/runs/{run_id}/status", json=done).status_code == 200
    assert client.get(url).json()["epochs"] == eager + 11


def test_a_store_diagnoses_only_through_the_listener_it_registers(client: TestClient) -> None:
    """The refresh is wired in one visible place (api.store): stores built bare keep no
    diagnosis until the diagnosis' refresh is registered as a listener of the runs' data."""
    engine = client.app.state.store.engine  # type: ignore[attr-defined]
    access = RunAccess(engine)
    metrics = MetricStore(access)
    diagnosis = DiagnosisStore(access, metrics, EvaluationStore(access))
    first, second = (submit(client)["id"] for _ in range(2))
    for run_id in (first, second):
        start(client, run_id)

    def points(run_id: int) -> list[MetricPointDict]:
        return [
            {"key": p["key"], "step": p["step"], "value": p["value"], "wall_time": 0.0}
            for p in epochs(OVERFIT)
        ]

    metrics.add_metrics(first, points(first))
    assert client.get(f"{API}/runs/{first}").json()["diagnosis"] is None
    access.on_run_data_changed(diagnosis.refresh_diagnosis)
    metrics.add_metrics(second, points(second))
    assert client.get(f"{API}/runs/{second}").json()["diagnosis"]["verdict"] == "overfitting"
