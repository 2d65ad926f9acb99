"""Seed 003 through a real worker: the whole fc1 matrix at epochs 1 and 10, its change, and
its 128 units as 8x8 images come back from the API; and the run's movement metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from tests.e2e.conftest import Worker
from tests.waits import wait_for

SEED003 = Path(__file__).parents[2] / "examples" / "seed003_weight_heatmaps.json"


def test_seed003_weights_over_epochs_through_a_worker(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    start_worker("w-weights")
    spec = json.loads(SEED003.read_text())
    run = api.post("/jobs", json={"spec": spec}).json()
    wait_for(
        lambda: api.get(f"/runs/{run['id']}").json()["status"] == "succeeded",
        120,
        "the seed 003 run to succeed",
    )
    # The record names the threads the run trained with (the workers here take one each)
    # and the data it trained on.
    record = api.get(f"/runs/{run['id']}").json()
    assert record["environment"]["threads"] == "1" and "1 threads" in record["device"]
    data = api.get(f"/runs/{run['id']}/events", params={"kind": "data"}).json()
    assert len(data[0]["payload"]["train"]) == 64 and data[0]["payload"]["n_val"] == 360
    index = api.get(f"/runs/{run['id']}/weights").json()["snapshots"]
    epochs = {s["epoch"] for s in index if s["param"] == "fc1.weight"}
    assert {1, 10} <= epochs
    url = f"/runs/{run['id']}/weights"
    first = np.array(api.get(url, params={"param": "fc1.weight", "epoch": 1}).json()["values"])
    last = np.array(api.get(url, params={"param": "fc1.weight", "epoch": 10}).json()["values"])
    assert first.shape == (128, 64) and not np.array_equal(first, last)
    # N(0, 0.01) at the start (seed 003's init), one epoch of SGD in: still about 0.01.
    assert 0.005 < first.std() < 0.02
    diff = api.get(url, params={"param": "fc1.weight", "epoch": 10, "diff_from": 1}).json()
    assert np.allclose(np.array(diff["values"]), last - first, atol=1e-6)
    images = api.get(f"{url}/images", params={"param": "fc1.weight", "epoch": 10}).json()
    assert len(images["tiles"]) == 128 and images["tile_shape"] == [8, 8]
    curves = api.get(f"/runs/{run['id']}/curves", params={"keys": "drift/fc1.weight"}).json()
    drift = curves["series"][0]["values"]
    assert len(drift) == 10 and drift[-1] > drift[0] > 0


def test_a_workers_checkpoints_load_into_the_model(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    """The best and last state_dicts of a run that stopped early, uploaded by its worker,
    load strictly into the spec's model; the best one scores the best epoch's val_loss."""
    import io

    import torch

    from trainer.data import load_data
    from trainer.measure import Scorer
    from trainer.models import build_loss, build_model
    from trainer.spec import JobSpec

    start_worker("w-checkpoints")
    spec = {  # a small subset and a wide layer: overfits, and stops early, within seconds
        "dataset": {"train_subset": 100},
        "model": {"hidden": [512]},
        "optimizer": {"lr": 3e-3},
        "batch_size": 16,
        "epochs": 80,
        "early_stopping": {"patience": 3},
    }
    run = api.post("/jobs", json={"spec": spec}).json()
    wait_for(
        lambda: api.get(f"/runs/{run['id']}").json()["status"] == "succeeded",
        120,
        "the run to succeed",
    )
    listed = api.get(f"/runs/{run['id']}/checkpoints").json()["checkpoints"]
    names = [c["name"] for c in listed]  # and onset, when the diagnosis found it in time
    assert names[:2] == ["best", "last"] and set(names) <= {"best", "last", "onset"}
    best_epoch = api.get(f"/runs/{run['id']}").json()["diagnosis"]["best_epoch"]
    assert listed[0]["epoch"] == best_epoch and listed[1]["epoch"] > best_epoch
    job = JobSpec.model_validate(spec)
    data = load_data(job, torch.device("cpu"))
    model = build_model(job, data.input_shape, data.n_classes or 1)
    body = api.get(f"/runs/{run['id']}/checkpoints/best").content
    model.load_state_dict(torch.load(io.BytesIO(body), weights_only=True))  # strict
    scorer = Scorer(model, build_loss(job), True)
    model.eval()
    with torch.no_grad():
        loss = float(build_loss(job)(scorer.outputs(data.x_val), data.y_val))
    val = api.get(f"/runs/{run['id']}/curves", params={"keys": "val_loss"}).json()
    by_epoch = dict(zip(val["series"][0]["steps"], val["series"][0]["values"], strict=True))
    assert abs(loss - by_epoch[best_epoch]) < 1e-4
