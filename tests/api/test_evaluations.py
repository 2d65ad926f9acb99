"""A run's evaluations per split and epoch, the per-class table and onsets, and the optimism of
a validation split that selected the weights, against cases worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, post_points, start, submit

LABELS = ["0", "1"]


def _classes(losses: list[float], recalls: list[float] | None = None) -> list[dict[str, Any]]:
    recalls = recalls or [1.0] * len(losses)
    return [
        {"label": label, "precision": 1.0, "recall": r, "f1": 1.0, "support": 10, "loss": loss}
        for label, loss, r in zip(LABELS, losses, recalls, strict=True)
    ]


def _evaluation(split: str, epoch: int, losses: list[float], final: bool = False) -> dict:
    return {
        "epoch": epoch,
        "split": split,
        "final": final,
        "labels": LABELS,
        "per_class": _classes(losses),
        "accuracy": 0.5 + epoch / 100,
    }


# Class 0 overfits: its validation loss is lowest at epoch 4 and climbs after, while its
# training loss keeps falling. Class 1 keeps improving on both splits.
TRAIN = {2: [0.9, 0.9], 4: [0.6, 0.6], 6: [0.4, 0.4], 8: [0.2, 0.3], 10: [0.1, 0.2]}
VAL = {2: [1.0, 1.0], 4: [0.7, 0.8], 6: [0.9, 0.7], 8: [1.1, 0.6], 10: [1.3, 0.5]}


def _run_with_classes(client: TestClient) -> int:
    run_id = submit(client)["id"]
    start(client, run_id)
    url = f"{API}/runs/{run_id}/evaluation"
    for epoch in TRAIN:
        for split, losses in (("train", TRAIN[epoch]), ("val", VAL[epoch])):
            assert client.post(url, json=_evaluation(split, epoch, losses)).status_code == 204
    return run_id


def test_the_per_class_table_and_onsets_match_a_case_worked_by_hand(client: TestClient) -> None:
    run_id = _run_with_classes(client)
    table = client.get(f"{API}/runs/{run_id}/per_class").json()
    assert table["labels"] == LABELS and table["epochs"] == [2, 4, 6, 8, 10]
    assert table["gap"][0] == pytest.approx([VAL[e][0] - TRAIN[e][0] for e in TRAIN])
    assert table["val_loss"][1] == [VAL[e][1] for e in VAL]
    onsets = {o["label"]: o for o in table["onsets"]}
    # Evaluations every 2 epochs: patience 3 epochs is two evaluations. Class 0 stays above
    # its minimum (epoch 4) at epochs 6 and 8 while its training loss falls: onset epoch 4.
    assert onsets["0"]["onset_epoch"] == 4 and onsets["0"]["best_epoch"] == 4
    assert abs(onsets["0"]["gap"] - 1.2) < 1e-9
    assert onsets["1"]["onset_epoch"] is None and onsets["1"]["best_epoch"] == 10
    assert table["summary"] == "class 0: onset epoch 4, gap +1.20; class 1: no onset, gap +0.30"
    assert "patience of 3 epochs counted in evaluations" in table["method"]
    # The run's diagnosis carries the same onsets once it has losses to judge.
    post_points(
        client,
        run_id,
        [
            {"key": k, "step": e, "value": v}
            for e in range(1, 5)
            for k, v in (("train_loss", 1 / e), ("val_loss", 1.1 / e))
        ],
    )
    diagnosis = client.get(f"{API}/runs/{run_id}/diagnosis").json()
    assert diagnosis["per_class"] == table["onsets"]


def test_evaluations_are_kept_per_split_and_epoch_and_the_final_one_wins(
    client: TestClient,
) -> None:
    run_id = _run_with_classes(client)
    url = f"{API}/runs/{run_id}/evaluation"
    # Without a final evaluation: the latest.
    assert client.get(url).json()["evaluation"]["epoch"] == 10
    got = client.get(url, params={"split": "train", "epoch": 4}).json()
    assert got["evaluation"]["per_class"][0]["loss"] == 0.6
    assert got["evaluated"] == {"train": [2, 4, 6, 8, 10], "val": [2, 4, 6, 8, 10]}
    # The final one (restored epoch 4) is the default answer and is not replaced by a
    # per-epoch one at its epoch.
    final = {**_evaluation("val", 4, [0.7, 0.8], final=True), "roc": []}
    assert client.post(url, json=final).status_code == 204
    assert client.post(url, json=_evaluation("val", 4, [9.0, 9.0])).status_code == 204
    answer = client.get(url).json()["evaluation"]
    assert (answer["epoch"], answer["final"], answer["per_class"][0]["loss"]) == (4, True, 0.7)
    # A later final one of the split takes over; the one before becomes a per-epoch one.
    assert client.post(url, json={**final, "epoch": 10}).status_code == 204
    assert client.get(url).json()["evaluation"]["epoch"] == 10
    assert client.get(url, params={"epoch": 4}).json()["evaluation"]["final"] is False
    assert client.get(url, params={"split": "test"}).status_code == 404
    bad = client.get(url, params={"split": "holdout"})
    assert bad.status_code == 422 and "split" in bad.text


def test_optimism_is_validation_against_test_at_the_evaluated_epoch(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    points = [
        {"key": k, "step": e, "value": v}
        for e in range(1, 4)
        for k, v in (("train_loss", 1 / e), ("val_loss", 1.2 / e), ("val_accuracy", 0.8))
    ]
    points += [{"key": "test_accuracy", "step": 3, "value": 0.74}]
    points += [{"key": "test_loss", "step": 3, "value": 0.5}]
    post_points(client, run_id, points)
    optimism = client.get(f"{API}/runs/{run_id}/diagnosis").json()["optimism"]
    assert abs(optimism["accuracy"] - 0.06) < 1e-12  # 0.80 - 0.74
    assert abs(optimism["loss"] - 0.1) < 1e-12  # 0.5 - 1.2 / 3
