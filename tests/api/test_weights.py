"""Weight snapshots through the API: what the trainer makes (seed 003's spec on digits) goes
in as its worker posts it and comes back whole, as JSON, raw bytes and .npy, as a difference
between epochs and as 8x8 unit images; bad and oversized snapshots are refused."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import API, start, submit
from tests.trainer.conftest import Recorder
from trainer.loop import train
from trainer.spec import JobSpec

EXAMPLE = Path(__file__).parents[2] / "examples" / "seed003_weight_heatmaps.json"
SEED003 = json.loads(EXAMPLE.read_text())
Trained = tuple[dict[str, Any], list[dict[str, Any]], Recorder]


@pytest.fixture(scope="module")
def trained() -> Trained:
    spec = dict(SEED003)  # 10 epochs: snapshots at 1, every 2, and the best
    recorder = Recorder()
    train(JobSpec.model_validate(spec), [recorder])
    snapshots = [s for e in recorder.epochs for s in e.snapshots]
    assert recorder.ended is not None
    snapshots += recorder.ended.snapshots
    return spec, [s.model_dump(exclude={"event"}) for s in snapshots], recorder


def posted(
    client: TestClient, trained: tuple[dict[str, Any], list[dict[str, Any]], Recorder]
) -> int:
    spec, snapshots, _ = trained
    run_id = submit(client, spec)["id"]
    start(client, run_id)
    for snapshot in snapshots:
        response = client.post(f"{API}/runs/{run_id}/weights", json=snapshot)
        assert response.status_code == 200, response.text
    return int(run_id)


def test_the_whole_fc1_matrix_over_epochs(client: TestClient, trained: Any) -> None:
    run_id = posted(client, trained)
    _, snapshots, recorder = trained
    listed = client.get(f"{API}/runs/{run_id}/weights").json()
    assert listed["input_shape"] == [1, 8, 8]  # digits: which snapshots have images
    index = listed["snapshots"]
    fc1 = {s["epoch"]: s for s in index if s["param"] == "fc1.weight"}
    best = recorder.ended.best_epoch
    assert sorted(fc1) == sorted({1, 2, 4, 6, 8, 10, best})  # every ceil(10 / 5) = 2
    assert {s["param"] for s in index} == {"fc1.weight", "fc2.weight", "fc3.weight"}
    assert fc1[1]["shape"] == [128, 64] and fc1[1]["method"] == "whole"
    assert "first" in fc1[1]["why"] and "last" in fc1[10]["why"]
    assert "best" in {s["epoch"]: s for s in index if s["param"] == "fc2.weight"}[best]["why"]
    sent = next(s for s in snapshots if s["param"] == "fc1.weight" and s["epoch"] == 10)
    expected = np.frombuffer(base64.b64decode(sent["data"]), dtype="<f4").reshape(128, 64)
    read = client.get(f"{API}/runs/{run_id}/weights", params={"param": "fc1.weight", "epoch": 10})
    assert np.array_equal(np.array(read.json()["values"], dtype="<f4"), expected)
    raw = client.get(
        f"{API}/runs/{run_id}/weights",
        params={"param": "fc1.weight", "epoch": 10},
        headers={"Accept": "application/octet-stream"},
    )
    assert raw.headers["x-shape"] == "128,64"
    assert np.array_equal(np.frombuffer(raw.content, dtype="<f4").reshape(128, 64), expected)
    npy = client.get(
        f"{API}/runs/{run_id}/weights",
        params={"param": "fc1.weight", "epoch": 10, "diff_from": 1},
        headers={"Accept": "application/x-npy"},
    )
    first = next(s for s in snapshots if s["param"] == "fc1.weight" and s["epoch"] == 1)
    start_values = np.frombuffer(base64.b64decode(first["data"]), dtype="<f4").reshape(128, 64)
    assert np.array_equal(np.load(io.BytesIO(npy.content)), expected - start_values)


def test_each_unit_of_fc1_as_an_8x8_image(client: TestClient, trained: Any) -> None:
    run_id = posted(client, trained)
    url = f"{API}/runs/{run_id}/weights/images"
    images = client.get(url, params={"param": "fc1.weight", "epoch": 10}).json()
    assert images["kind"] == "units" and images["tile_shape"] == [8, 8]
    assert len(images["tiles"]) == 128 and images["tiles"][5]["index"] == 5
    matrix = client.get(f"{API}/runs/{run_id}/weights", params={"param": "fc1.weight", "epoch": 10})
    assert np.ravel(images["tiles"][5]["values"]) == pytest.approx(matrix.json()["values"][5])
    hidden = client.get(url, params={"param": "fc2.weight", "epoch": 10})
    assert hidden.status_code == 422 and hidden.json()["errors"][0]["field"] == "param"
    kept = {s["epoch"] for s in client.get(f"{API}/runs/{run_id}/weights").json()["snapshots"]}
    absent = min(set(range(1, 11)) - kept)
    missing = client.get(url, params={"param": "fc1.weight", "epoch": absent})
    assert missing.status_code == 404


def test_bad_and_oversized_snapshots_are_refused_and_not_stored(
    client: TestClient, trained: Any
) -> None:
    _, snapshots, _ = trained
    run_id = submit(client, trained[0])["id"]
    start(client, run_id)
    good = snapshots[0]
    short = {**good, "data": base64.b64encode(b"\0" * 12).decode()}
    for body, field in (
        (short, "data"),
        ({**good, "data": "***"}, "data"),
        ({**good, "shape": [0, 64]}, "shape"),
        ({**good, "shape": [2048, 1024]}, "shape"),
    ):
        response = client.post(f"{API}/runs/{run_id}/weights", json=body)
        assert response.status_code == 422, response.text
        assert field in response.text
    app = client.app
    assert isinstance(app, FastAPI)
    store = app.state.store.weights
    store.max_run_bytes = 40_000  # one fc1 of 128 x 64 float32 is 32,768 bytes
    try:
        assert client.post(f"{API}/runs/{run_id}/weights", json=good).status_code == 200
        over = client.post(f"{API}/runs/{run_id}/weights", json={**good, "epoch": 99})
        assert over.status_code == 413 and "FITLENS_MAX_RUN_STORAGE_MB" in over.text
    finally:
        store.max_run_bytes = 1 << 30
    epochs = [s["epoch"] for s in client.get(f"{API}/runs/{run_id}/weights").json()["snapshots"]]
    assert epochs == [good["epoch"]]


def test_a_convolution_shows_its_filters(client: TestClient) -> None:
    spec = {"model": {"kind": "cnn", "channels": [4], "hidden": []}, "epochs": 1}
    recorder = Recorder()
    train(JobSpec.model_validate(spec), [recorder])
    conv = next(s for s in recorder.epochs[0].snapshots if s.param.startswith("conv"))
    run_id = submit(client, spec)["id"]
    start(client, run_id)
    body = conv.model_dump(exclude={"event"})
    assert client.post(f"{API}/runs/{run_id}/weights", json=body).status_code == 200
    images = client.get(
        f"{API}/runs/{run_id}/weights/images", params={"param": conv.param, "epoch": 1}
    ).json()
    assert images["kind"] == "filters" and images["tile_shape"] == [3, 3]
    assert len(images["tiles"]) == 4  # 4 filters x 1 input channel
    weights = torch.tensor([t["values"] for t in images["tiles"]])
    assert weights.shape == (4, 3, 3)
