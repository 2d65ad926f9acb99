"""A fix study in one call: the study a run's spec makes, its members, the fixes that do not
apply, a run without a spec, and bad bodies. (tests/e2e/test_study_answers.py trains one.)"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import API

SMALL = {"dataset": {"name": "digits", "train_subset": 200}, "epochs": 3}


def job(client: TestClient, spec: dict[str, Any]) -> int:
    response = client.post(f"{API}/jobs", json={"spec": spec, "project": "p"})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_a_fix_study_around_a_runs_spec(client: TestClient) -> None:
    run_id = job(client, SMALL)
    made = client.post(f"{API}/runs/{run_id}/fix_study", json={"folds": 3})
    assert made.status_code == 201, made.text
    study = made.json()
    names = [c["name"] for c in study["configs"]]
    assert names == [
        "baseline",
        "dropout",
        "l1",
        "l2",
        "weight_decay",
        "reduce_on_plateau",
        "early_stopping",
        "more_data",
        "augmentation",
        "random_labels",
    ]
    assert study["members"] == 30 and study["skipped"] == {} and study["project"] == "p"
    assert study["configs"][7]["overrides"] == {"dataset.train_subset": 400}
    runs = client.get(f"{API}/runs", params={"study": study["id"], "limit": 100}).json()["items"]
    for run in runs:
        spec = run["spec"]
        assert spec["dataset"]["folds"]["k"] == 3 and spec["epochs"] == 3
        config = study["configs"][run["study_config"]]["name"]
        assert (spec["dataset"]["label_noise"] == 1.0) == (config == "random_labels")
        assert (spec["dataset"]["augmentation"] is not None) == (config == "augmentation")
        assert spec["model"]["dropout"] == (0.5 if config == "dropout" else 0.0)


def test_the_caller_picks_fixes_values_and_epochs(client: TestClient) -> None:
    run_id = job(client, {"epochs": 3, "dataset": {"name": "synthetic"}})
    body = {
        "folds": 2,
        "fixes": ["dropout", "more_data", "augmentation"],
        "values": {"dropout": {"model.dropout": 0.3}},
        "epochs": 5,
    }
    study = client.post(f"{API}/runs/{run_id}/fix_study", json=body).json()
    assert [c["name"] for c in study["configs"]] == ["baseline", "dropout"]
    assert study["configs"][1]["overrides"] == {"model.dropout": 0.3}
    assert "whole training split" in study["skipped"]["more_data"]
    assert "images" in study["skipped"]["augmentation"]
    assert study["spec"]["epochs"] == 5 and study["members"] == 4


def test_a_run_from_your_own_loop_has_no_spec_to_vary(client: TestClient) -> None:
    run_id = client.post(f"{API}/runs", json={"project": "p"}).json()["id"]
    refused = client.post(f"{API}/runs/{run_id}/fix_study", json={})
    assert refused.status_code == 409 and "own training loop" in refused.text


def test_bad_fix_study_bodies_name_the_field_and_store_nothing(client: TestClient) -> None:
    run_id = job(client, SMALL)
    for body, field in (
        ({"folds": 1}, "folds"),
        ({"fixes": ["magic"]}, "fixes.0"),
        ({"fixes": []}, "fixes"),
        ({"values": {"dropout": {"seed": 3}}}, "values"),
        ({"values": {"dropout": {"model.dropout": 7}}}, "design.overrides.1.model.dropout"),
        ({"epochs": 0}, "epochs"),
    ):
        response = client.post(f"{API}/runs/{run_id}/fix_study", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, (body, response.text)
    assert len(client.get(f"{API}/runs").json()["items"]) == 1  # the run itself only
