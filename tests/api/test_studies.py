"""Studies through the API, with members fed as their workers would feed them: the members and
their overrides, aggregates against numpy, effects against scipy, failures, cancel and retry,
ETags, 422s. (tests/e2e/test_studies.py trains them with real workers.)"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from scipy import stats

from api.runs.queue import RecordingQueue
from tests.api.conftest import API, bearer

SWEEP = {"sweep": {"model.dropout": [0, 0.5], "optimizer.weight_decay": [0, 1e-4]}}


def create(client: TestClient, design: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/studies", json={"spec": {"epochs": 4}, "design": design, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def members(client: TestClient, study_id: int) -> list[dict[str, Any]]:
    runs = client.get(f"{API}/runs", params={"study": study_id, "limit": 500}).json()["items"]
    return sorted(runs, key=lambda r: r["id"])


def feed(
    client: TestClient,
    queue: RecordingQueue,
    run: dict[str, Any],
    curves: dict[str, list[float]],
    histograms: Sequence[dict[str, Any]] = (),
) -> None:
    """What a worker posts: running, every epoch's metrics (and histograms), succeeded."""
    worker = bearer(queue.tokens[run["id"]])
    url = f"{API}/runs/{run['id']}"
    assert client.post(f"{url}/status", json={"status": "running"}, headers=worker).is_success
    points = [
        {"key": key, "step": step, "value": value}
        for key, values in curves.items()
        for step, value in enumerate(values, 1)
    ]
    assert client.post(f"{url}/metrics", json={"points": points}, headers=worker).is_success
    if histograms:
        sent = {"histograms": list(histograms)}
        assert client.post(f"{url}/histograms?attempt=1", json=sent, headers=worker).is_success
    done = {"status": "succeeded", "attempt": 1}
    assert client.post(f"{url}/status", json=done, headers=worker).is_success


def test_configurations_and_members_are_named_by_what_varies(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {**SWEEP, "folds": {"k": 3}}, name="grid")
    names = [c["name"] for c in study["configs"]]
    assert names == [
        "dropout 0, weight_decay 0",
        "dropout 0, weight_decay 0.0001",
        "dropout 0.5, weight_decay 0",
        "dropout 0.5, weight_decay 0.0001",
    ]
    runs = members(client, study["id"])
    assert runs[-1]["name"] == "grid · dropout 0.5, weight_decay 0.0001, fold 2"
    # Learning-curve sizes say what share of the data; named overrides keep their names.
    curve = create(
        client,
        {
            "overrides": [{}, {"model.dropout": 0.5}],
            "names": ["plain", "dropout"],
            "learning_curve": [0.25, 1.0],
            "seeds": [1, 2],
        },
        name="lc",
    )
    assert [c["name"] for c in curve["configs"]] == [
        "plain, 25% of the training set",
        "plain, 100% of the training set",
        "dropout, 25% of the training set",
        "dropout, 100% of the training set",
    ]
    assert members(client, curve["id"])[1]["name"] == "lc · plain, 25% of the training set, seed 2"
    table = client.get(f"{API}/studies/{curve['id']}/table").json()
    assert [r["name"] for r in table["rows"]] == [c["name"] for c in curve["configs"]]


def test_the_studies_list_shows_progress_and_the_best_configuration(
    client: TestClient, queue: RecordingQueue
) -> None:
    first = create(client, {"seeds": [1]}, name="one seed")
    grid = create(client, SWEEP, name="grid")
    for run in members(client, grid["id"])[:3]:  # the fourth configuration stays queued
        feed(client, queue, run, fake_curves(run["study_config"], 0))
    page = client.get(f"{API}/studies").json()
    assert [s["id"] for s in page["items"]] == [grid["id"], first["id"]]
    listed = page["items"][0]
    assert listed["status"] == {"succeeded": 3, "queued": 1} and not listed["done"]
    assert (listed["members"], listed["configs"]) == (4, 4)
    assert listed["best"]["config"] == 0  # fake_curves adds 0.1 per configuration
    assert listed["best"]["name"] == "dropout 0, weight_decay 0"
    assert page["items"][1]["best"] is None  # nothing diagnosed yet
    one = client.get(f"{API}/studies", params={"limit": 1}).json()
    rest = client.get(f"{API}/studies", params={"before": one["next_before"]}).json()
    assert [s["id"] for s in one["items"] + rest["items"]] == [grid["id"], first["id"]]
    assert rest["next_before"] is None
    assert [
        s["id"] for s in client.get(f"{API}/studies", params={"name": "GRID"}).json()["items"]
    ] == [grid["id"]]
    people = cast(FastAPI, client.app).state.store.people
    _, token = people.create_user("outsider-l", team="elsewhere-l")
    assert client.get(f"{API}/studies", headers=bearer(token)).json()["items"] == []


def test_the_study_report_is_one_file_with_the_apis_numbers(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {**SWEEP, "seeds": [1, 2]}, name="</script><b>grid")
    for run in members(client, study["id"]):
        feed(client, queue, run, fake_curves(run["study_config"], run["study_replicate"]))
    response = client.get(f"{API}/studies/{study['id']}/report.html")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "connect-src" not in response.headers["content-security-policy"]  # default 'none'
    page = response.text
    assert "<script src" not in page and "http://" not in page.split("<script>")[0]
    assert "&lt;/script&gt;&lt;b&gt;grid" in page  # the name is text, not markup
    embedded = page.split('id="fitlens-data">', 1)[1].split("</script>", 1)[0]
    data = json.loads(embedded)
    assert data["table"] == client.get(f"{API}/studies/{study['id']}/table").json()
    assert data["effects"] == client.get(f"{API}/studies/{study['id']}/effects").json()
    effect = data["effects"]["configs"][-1]["effects"]["min_val_loss"]
    assert f"+{effect['mean']:.4f}" in page  # the effects table writes the API's number
    outsider = cast(FastAPI, client.app).state.store.people.create_user("rep-o", team="rep-o")[1]
    assert (
        client.get(f"{API}/studies/{study['id']}/report.html", headers=bearer(outsider)).status_code
        == 404
    )


def fake_curves(config: int, replicate: int, epochs: int = 4) -> dict[str, list[float]]:
    """Per-member curves that differ by configuration and (a little) by replicate."""
    rng = np.random.default_rng(100 * config + replicate)
    train = [1.0 / (e + 1) + 0.01 * rng.random() for e in range(epochs)]
    val = [t + 0.1 * config + 0.02 * rng.random() for t in train]
    acc = [0.5 + 0.1 * e - 0.02 * config + 0.01 * rng.random() for e in range(epochs)]
    return {"train_loss": train, "val_loss": val, "val_accuracy": acc}


def test_a_2x2_sweep_x_3_folds_makes_12_members_with_their_overrides(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {**SWEEP, "folds": {"k": 3}}, name="grid", tags=["g"])
    assert study["members"] == 12 and study["status"] == {"queued": 12}
    assert study["varied"] == ["model.dropout", "optimizer.weight_decay"]
    runs = members(client, study["id"])
    assert len(runs) == 12 and len(queue.items) == 12
    for run in runs:
        config = study["configs"][run["study_config"]]["overrides"]
        assert run["spec"]["model"]["dropout"] == config["model.dropout"]
        assert run["spec"]["optimizer"]["weight_decay"] == config["optimizer.weight_decay"]
        fold = run["spec"]["dataset"]["folds"]
        assert (fold["k"], fold["index"]) == (3, run["study_replicate"])
        assert run["overrides"]["dataset.folds"]["index"] == run["study_replicate"]
        assert run["tags"] == ["g"] and run["study_id"] == study["id"]
    assert sorted((r["study_config"], r["study_replicate"]) for r in runs) == [
        (c, f) for c in range(4) for f in range(3)
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"design": {"sweep": {"model.dropout": [0, 2]}}}, "design.sweep.model.dropout"),
        ({"design": {"sweep": {"optimizer.lr": ["fast"]}}}, "design.sweep.optimizer.lr"),
        ({"design": {"overrides": [{"model.hidden": "x"}]}}, "design.overrides.0.model.hidden"),
        ({"spec": {"epochs": 0}}, "spec.epochs"),
        ({"design": {"sweep": {"seed": [1]}}}, "design.sweep"),
        ({"design": {"seeds": list(range(100)), "folds": {"k": 10}}}, "design"),
        ({"design": {"baseline": 5}}, "design.baseline"),
        # Issue 25's: paths of 2 or 51 values, a log grid through 0, a budget without sizes,
        # label noise outside [0, 1].
        (
            {"design": {"path": {"field": "model.dropout", "values": [0.1, 0.2]}}},
            "design.path.values",
        ),
        (
            {"design": {"path": {"field": "model.dropout", "values": [0.1] * 51}}},
            "design.path.values",
        ),
        (
            {"design": {"path": {"field": "regularization.l2", "values": [0, 1e-3, 1e-2]}}},
            "design.path.values",
        ),
        (
            {"design": {"path": {"field": "regularization.l2", "start": 0, "stop": 1, "count": 4}}},
            "design.path.start",
        ),
        ({"design": {"learning_curve": {"budget": "steps"}}}, "design.learning_curve.sizes"),
        (
            {"design": {"learning_curve": {"sizes": [0.5], "budget": "days"}}},
            "design.learning_curve.budget",
        ),
        ({"spec": {"dataset": {"label_noise": 1.5}}}, "spec.dataset.label_noise"),
        ({"spec": {"dataset": {"label_noise": -0.1}}}, "spec.dataset.label_noise"),
    ],
)
def test_bad_studies_are_422s_naming_the_path(
    client: TestClient, queue: RecordingQueue, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"{API}/studies", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert queue.items == []  # nothing was stored or enqueued
    assert client.get(f"{API}/runs").json()["items"] == []


def test_aggregates_table_and_effects_match_numpy_and_scipy(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {"sweep": {"model.dropout": [0, 0.5]}, "seeds": [1, 2, 3]})
    runs = members(client, study["id"])
    for run in runs:
        feed(client, queue, run, fake_curves(run["study_config"], run["study_replicate"]))
    # Read back what is stored, as any client would, and compute the expectations from it.
    stored = {
        r["id"]: {
            s["key"]: s["values"]
            for s in client.get(f"{API}/runs/{r['id']}/curves").json()["series"]
        }
        for r in runs
    }
    bands = client.get(
        f"{API}/studies/{study['id']}/curves", params={"keys": "val_loss,train_loss"}
    ).json()
    for config in bands["configs"]:
        mine = [r["id"] for r in runs if r["study_config"] == config["config"]]
        for band in config["curves"]:
            values = np.array([stored[i][band["key"]] for i in mine])
            assert band["steps"] == [1, 2, 3, 4] and band["n"] == [3] * 4
            assert band["mean"] == pytest.approx(values.mean(axis=0).tolist())
            assert band["std"] == pytest.approx(values.std(axis=0, ddof=1).tolist())
            assert band["min"] == pytest.approx(values.min(axis=0).tolist())

    diagnosis = {r["id"]: client.get(f"{API}/runs/{r['id']}").json()["diagnosis"] for r in runs}
    table = client.get(f"{API}/studies/{study['id']}/table").json()
    assert table["varied"] == ["model.dropout"] and len(table["rows"]) == 2
    for row in table["rows"]:
        mine = [diagnosis[r["id"]] for r in runs if r["study_config"] == row["config"]]
        got = [d["min_val_loss"] for d in mine]
        assert row["values"]["min_val_loss"]["mean"] == pytest.approx(np.mean(got))
        assert row["values"]["min_val_loss"]["std"] == pytest.approx(np.std(got, ddof=1))
        assert row["values"]["min_val_loss"]["n"] == 3
        assert sum(row["verdicts"].values()) == 3 and row["status"] == {"succeeded": 3}
    ordered = client.get(f"{API}/studies/{study['id']}/table", params={"sort": "-min_val_loss"})
    assert [r["config"] for r in ordered.json()["rows"]] == [1, 0]  # config 1: val + 0.1

    effects = client.get(f"{API}/studies/{study['id']}/effects").json()
    assert effects["baseline"] == 0 and [c["config"] for c in effects["configs"]] == [1]
    effect = effects["configs"][0]["effects"]["min_val_loss"]
    by = {(r["study_config"], r["study_replicate"]): diagnosis[r["id"]] for r in runs}
    base = [by[(0, i)]["min_val_loss"] for i in range(3)]
    other = [by[(1, i)]["min_val_loss"] for i in range(3)]
    test = stats.ttest_rel(other, base)
    low, high = test.confidence_interval(0.95)
    assert effect["n"] == 3 and effect["mean"] == pytest.approx(np.mean(np.subtract(other, base)))
    assert (effect["ci_low"], effect["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert effect["p_value"] == pytest.approx(test.pvalue)
    # Seed repeats on one split: the plain paired t-test; detectable after Holm's adjustment.
    assert effects["ci_method"].startswith("paired t-test") and "holm" in effects["adjustment"]
    assert effect["p_holm"] >= effect["p_value"]
    assert effect["detectable"] == (effect["p_holm"] < 0.05)

    text = client.get(f"{API}/studies/{study['id']}/table.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["config"] for r in rows] == ["0", "1"] and rows[1]["model.dropout"] == "0.5"
    assert float(rows[0]["min_val_loss_mean"]) == pytest.approx(
        table["rows"][0]["values"]["min_val_loss"]["mean"]
    )


def test_aggregate_curves_cover_every_metric_by_default(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {"seeds": [1, 2]})
    for run in members(client, study["id"]):
        feed(client, queue, run, fake_curves(0, run["study_replicate"]))
    bands = client.get(f"{API}/studies/{study['id']}/curves").json()["configs"][0]["curves"]
    assert [b["key"] for b in bands] == ["train_loss", "val_accuracy", "val_loss"]
    assert all(b["n"] == [2, 2, 2, 2] for b in bands)


def test_early_stopped_members_make_n_fall_and_say_so(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {"seeds": [1, 2]})
    short, full = members(client, study["id"])
    feed(client, queue, short, fake_curves(0, 0, epochs=2))
    feed(client, queue, full, fake_curves(0, 1, epochs=4))
    band = client.get(f"{API}/studies/{study['id']}/curves", params={"keys": "val_loss"}).json()
    curve = band["configs"][0]["curves"][0]
    assert curve["steps"] == [1, 2, 3, 4] and curve["n"] == [2, 2, 1, 1]
    assert curve["std"][2] is None  # one member: no spread to speak of


def test_a_failed_member_sinks_nothing_and_cancel_and_retry_reach_the_members(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {"seeds": [1, 2, 3]})
    one, two, three = members(client, study["id"])
    feed(client, queue, one, fake_curves(0, 0))
    worker = bearer(queue.tokens[two["id"]])
    client.post(f"{API}/runs/{two['id']}/status", json={"status": "running"}, headers=worker)
    failed = {"status": "failed", "reason": "CUDA out of memory", "attempt": 1}
    client.post(f"{API}/runs/{two['id']}/status", json=failed, headers=worker)
    got = client.get(f"{API}/studies/{study['id']}").json()
    assert got["status"] == {"succeeded": 1, "failed": 1, "queued": 1} and not got["done"]
    table = client.get(f"{API}/studies/{study['id']}/table").json()["rows"][0]
    assert table["status"] == {"succeeded": 1, "failed": 1, "queued": 1}
    assert table["values"]["min_val_loss"]["n"] == 1  # the succeeded member's

    cancelled = client.post(f"{API}/studies/{study['id']}/cancel").json()
    assert cancelled["status"] == {"succeeded": 1, "failed": 1, "cancelled": 1}
    assert cancelled["done"]
    before = len(queue.items)
    retried = client.post(f"{API}/studies/{study['id']}/retry").json()
    assert retried["status"] == {"succeeded": 1, "queued": 2}
    assert {run_id for run_id, _ in queue.items[before:]} == {two["id"], three["id"]}
    statuses = client.get(f"{API}/runs/{one['id']}").json()["status"]
    assert statuses == "succeeded"  # the finished member was left alone


def test_study_reads_are_cached_until_a_member_changes(
    client: TestClient, queue: RecordingQueue
) -> None:
    study = create(client, {"seeds": [1, 2]})
    for path in ("", "/curves", "/table", "/effects"):
        first = client.get(f"{API}/studies/{study['id']}{path}")
        tag = first.headers["etag"]
        again = client.get(f"{API}/studies/{study['id']}{path}", headers={"If-None-Match": tag})
        assert again.status_code == 304, path
    tag = client.get(f"{API}/studies/{study['id']}/table").headers["etag"]
    feed(client, queue, members(client, study["id"])[0], fake_curves(0, 0))
    fresh = client.get(f"{API}/studies/{study['id']}/table", headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != tag


def test_effects_rank_the_configurations(client: TestClient, queue: RecordingQueue) -> None:
    """fake_curves adds 0.1 a configuration to the validation loss: against configuration 0,
    1 rises least; against 2, 0 falls most."""
    study = create(client, {"sweep": {"model.dropout": [0, 0.2, 0.5]}, "seeds": [1, 2]})
    for run in members(client, study["id"]):
        feed(client, queue, run, fake_curves(run["study_config"], run["study_replicate"]))
    url = f"{API}/studies/{study['id']}/effects"
    assert client.get(url).json()["ranking"]["min_val_loss"] == [1, 2]
    against_2 = client.get(url, params={"baseline": 2}).json()
    assert against_2["ranking"]["min_val_loss"] == [0, 1]
    assert set(against_2["ranking"]) == {"min_val_loss", "final_gap"}


def test_a_learning_curve_per_size(client: TestClient, queue: RecordingQueue) -> None:
    """The step budget (the default): 1437 examples in batches of 64 are 23 steps an epoch,
    92 in 4 epochs; a quarter (359, 6 steps an epoch) trains ceil(92 / 6) = 16 epochs."""
    study = create(client, {"learning_curve": [0.25, 1.0], "seeds": [1, 2]})
    runs = members(client, study["id"])
    assert sorted(r["spec"]["dataset"]["train_fraction"] for r in runs) == [0.25, 0.25, 1, 1]
    assert [(r["spec"]["dataset"]["train_fraction"], r["spec"]["epochs"]) for r in runs] == [
        (0.25, 16),
        (0.25, 16),
        (1, 4),
        (1, 4),
    ]
    for run in runs:
        steps = {"steps": 96 if run["study_config"] == 0 else 92, "epochs": 4}
        trained = {"events": [{"kind": "trained", "step": 4, "payload": steps}]}
        worker = bearer(queue.tokens[run["id"]])
        sent = client.post(f"{API}/runs/{run['id']}/events", json=trained, headers=worker)
        assert sent.is_success, sent.text
    for run in runs:
        feed(client, queue, run, fake_curves(run["study_config"], run["study_replicate"]))
    curve = client.get(f"{API}/studies/{study['id']}/learning_curve").json()
    assert [p["size"] for p in curve["points"]] == [0.25, 1.0]
    for point in curve["points"]:
        mine = [r for r in runs if r["study_config"] == point["config"]]
        finals = [
            client.get(f"{API}/runs/{r['id']}").json()["diagnosis"]["final"]["val_loss"]
            for r in mine
        ]
        assert point["values"]["final_val_loss"]["mean"] == pytest.approx(np.mean(finals))
        assert point["values"]["final_val_loss"]["n"] == 2
    assert [p["n_train"] for p in curve["points"]] == [359, 1437]
    assert [p["values"]["steps_trained"]["mean"] for p in curve["points"]] == [96, 92]
    assert curve["budget"] == "steps" and "steps" in curve["method"]
    loss = curve["fits"]["min_val_loss"]  # three parameters, two sizes
    assert not loss["fitted"] and "2 training-set sizes" in loss["why"]
    asked = client.get(f"{API}/studies/{study['id']}/learning_curve", params={"x": 0.01}).json()
    assert asked["examples_needed"]["target"] == 0.01 and curve["examples_needed"] is None
    bad = client.get(f"{API}/studies/{study['id']}/learning_curve", params={"x": -1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "x"
    plain = create(client, {"seeds": [1]})
    missing = client.get(f"{API}/studies/{plain['id']}/learning_curve")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "study"
    no_path = client.get(f"{API}/studies/{plain['id']}/path")
    assert no_path.status_code == 422 and "design.path" in no_path.json()["errors"][0]["message"]


def test_a_regularization_path_by_hand(client: TestClient, queue: RecordingQueue) -> None:
    """Three L2 values x 2 seeds; min val losses 0.30/0.34, 0.29/0.37 and 0.40/0.42: the
    lowest mean is 0.32 (1e-4; std 0.0283 over 2 seeds, standard error 0.02, bar 0.34);
    1e-3's 0.33 is within it, 1e-2's 0.41 is not: lambda_1se = 1e-3. The weights: two
    tensors of 3 and 1 values, ||w|| 3 and 4 at the last histogram (biases left out):
    weight_l2 5, near_zero (1 + 1) / 4."""
    grid = {"field": "regularization.l2", "values": [1e-2, 1e-4, 1e-3]}
    study = create(client, {"path": grid, "seeds": [0, 1]})
    assert [c["overrides"]["regularization.l2"] for c in study["configs"]] == [1e-4, 1e-3, 1e-2]
    lows = {(0, 0): 0.30, (0, 1): 0.34, (1, 0): 0.29, (1, 1): 0.37, (2, 0): 0.40, (2, 1): 0.42}
    for run in members(client, study["id"]):
        low = lows[(run["study_config"], run["study_replicate"])]
        hists = [
            {
                "param": p,
                "step": step,
                "edges": [-1, 0, 1],
                "counts": [1, n - 1],
                "numel": n,
                "mean": 0,
                "std": 1,
                "min": -1,
                "max": 1,
                "l1": 1,
                "l2": l2 * step,
                "near_zero": z,
            }
            for step in (1, 2)
            for p, n, l2, z in (("fc1.weight", 3, 1.5, 1 / 3), ("fc2.weight", 1, 2, 1.0))
        ]
        hists.append({**hists[0], "param": "fc1.bias", "l2": 100.0})
        curves = {"train_loss": [0.5, 0.2], "val_loss": [low + 0.1, low]}
        feed(client, queue, run, curves, hists)
    path = client.get(f"{API}/studies/{study['id']}/path").json()
    assert path["field"] == "regularization.l2" and path["scale"] == "log"
    assert [p["value"] for p in path["points"]] == [1e-4, 1e-3, 1e-2]
    first = path["points"][0]["values"]
    assert first["min_val_loss"]["mean"] == pytest.approx(0.32)
    assert first["weight_l2"]["mean"] == pytest.approx(5.0)
    assert first["near_zero"]["mean"] == pytest.approx(0.5)
    assert path["lambda_min"] == 1e-4 and path["lambda_1se"] == 1e-3
    assert path["threshold"] == pytest.approx(0.34)
    assert "glmnet" in path["method"]


def test_the_winner_and_its_optimism_by_hand(client: TestClient, queue: RecordingQueue) -> None:
    """Two configurations x 3 seeds; the second has the higher mean validation accuracy. Its
    test accuracies at the evaluated (last) epoch make optimisms of 0.02, 0.04 and 0.06: mean
    0.04, interval 0.04 +- t(0.975, 2) * 0.02 / sqrt(3)."""
    study = create(client, {"sweep": {"optimizer.lr": [0.001, 0.002]}, "seeds": [0, 1, 2]})
    for run in members(client, study["id"]):
        config, seed = run["study_config"], run["study_replicate"]
        val = 0.80 + 0.05 * config + 0.01 * seed
        worker = bearer(queue.tokens[run["id"]])
        url = f"{API}/runs/{run['id']}"
        assert client.post(f"{url}/status", json={"status": "running"}, headers=worker).is_success
        points = [
            {"key": k, "step": step, "value": v}
            for step, values in ((1, (1.0, 1.1, 0.5)), (2, (0.5, 0.6, val)))
            for k, v in zip(("train_loss", "val_loss", "val_accuracy"), values, strict=True)
        ]
        points.append({"key": "test_accuracy", "step": 2, "value": val - 0.02 * (seed + 1)})
        assert client.post(f"{url}/metrics", json={"points": points}, headers=worker).is_success
        done = {"status": "succeeded", "attempt": 1}
        assert client.post(f"{url}/status", json=done, headers=worker).is_success
    winner = client.get(f"{API}/studies/{study['id']}/winner").json()
    assert winner["config"] == 1 and winner["by"] == "val_accuracy"
    assert winner["val_accuracy"]["mean"] == pytest.approx(0.86)
    assert winner["test_accuracy"]["mean"] == pytest.approx(0.82)
    assert winner["optimism_mean"] == pytest.approx(0.04)
    half = stats.t.ppf(0.975, 2) * 0.02 / np.sqrt(3)
    assert winner["optimism_ci_low"] == pytest.approx(0.04 - half)
    assert winner["optimism_ci_high"] == pytest.approx(0.04 + half)
    bad = client.get(f"{API}/studies/{study['id']}/winner", params={"by": "optimism"})
    assert bad.status_code == 422 and "by" in bad.text


def test_the_corrected_interval_and_holm_against_hand_computations() -> None:
    """Differences 0.1, 0.2, 0.3 over 3 folds, n_test/n_train 0.5: mean 0.2, s^2 0.01, the
    mean's variance 0.01 * (1/3 + 0.5) = 0.008333, se 0.091287, t 2.19089 on 2 degrees of
    freedom: p 0.16, half-width 4.302653 * 0.091287 = 0.392777. Without the correction (seed
    repeats): se 0.057735, half-width 0.248414, p 0.0377."""
    from api.studies.stats import holm, paired_effect

    base = {0: 1.0, 1: 1.0, 2: 1.0}
    other = {0: 1.1, 1: 1.2, 2: 1.3}
    e = paired_effect(base, other, inflation=0.5)
    assert e["mean"] == pytest.approx(0.2)
    assert (e["ci_low"], e["ci_high"]) == (
        pytest.approx(0.2 - 0.392777, abs=1e-5),
        pytest.approx(0.2 + 0.392777, abs=1e-5),
    )
    assert e["p_value"] == pytest.approx(2 * stats.t.sf(0.2 / 0.091287, 2), rel=1e-5)
    assert e["p_value"] == pytest.approx(0.1598, abs=1e-4)
    plain = paired_effect(base, other)
    assert plain["ci_high"] - 0.2 == pytest.approx(0.248414, abs=1e-6)
    assert plain["p_value"] == pytest.approx(stats.ttest_rel([1.1, 1.2, 1.3], [1.0] * 3).pvalue)
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> made
    # non-decreasing: 0.02, 0.03, 0.06, 0.06; back in the given order, None untouched.
    assert holm([0.01, 0.04, None, 0.03, 0.005]) == pytest.approx([0.03, 0.06, None, 0.06, 0.02])
    assert holm([0.6, 0.9]) == [1.0, 1.0]
