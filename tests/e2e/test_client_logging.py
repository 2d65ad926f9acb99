"""Logging from your own training loop (issue 14): 1,000 epochs of 4 keys plus histograms,
with the API restarted in the middle; the loop never waits on the server, and every point
arrives exactly once."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from fitlens import Client
from stack import launch

KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def _value(key: int, epoch: int) -> float:
    return round(key + epoch / 1000, 6)


def test_a_thousand_epochs_arrive_exactly_once_across_an_api_restart() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fitlens-logging-"))
    port = launch.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{tmp / 'logging.db'}",
        "FITLENS_QUEUE": "none",
    }
    base = f"http://127.0.0.1:{port}"
    with open(tmp / "api.log", "w") as log:
        api = launch.start_api(port, env, log)
        launch.wait_healthy(base, api)
        token = launch.user_token(env, "looper", "loops")
        first = torch.nn.Linear(8, 16)
        model = torch.nn.Sequential(first, torch.nn.ReLU(), torch.nn.Linear(16, 2))
        try:
            with Client(base, token) as client:
                run = client.start_run(project="own", params={"lr": 0.01}, epochs=1000)
                with run:
                    for epoch in range(1, 501):
                        run.log({k: _value(i, epoch) for i, k in enumerate(KEYS)}, step=epoch)
                        if epoch % 100 == 0:
                            run.log_histograms(model, step=epoch)
                    run.flush(timeout=60)
                    launch.stop(api, grace=10)  # the server goes away mid-run...
                    started = time.perf_counter()
                    for epoch in range(501, 1001):
                        run.log({k: _value(i, epoch) for i, k in enumerate(KEYS)}, step=epoch)
                        if epoch % 100 == 0:
                            with torch.no_grad():
                                first.weight.mul_(0.5)
                            run.log_histograms(model, step=epoch)
                    logging_while_down = time.perf_counter() - started
                    api = launch.start_api(port, env, log)  # ...and comes back
                    launch.wait_healthy(base, api)
                # Leaving the block sent the rest and ended the run.
                assert logging_while_down < 2.0  # the loop never waited on the dead server
                done = client.run(run.id)
                assert done.status == "succeeded" and done.data["source"] == "client"
                curves = done.curves(list(KEYS))
                assert list(curves.index) == list(range(1, 1001))
                for i, key in enumerate(KEYS):
                    assert curves[key].tolist() == [_value(i, e) for e in range(1, 1001)]
                totals = client.get(f"/runs/{run.id}/curves", max_points=10)["series"]
                assert {s["key"]: s["total_points"] for s in totals} == dict.fromkeys(KEYS, 1000)
                params = done.histogram_params()
                assert set(params) == {"0.weight", "0.bias", "2.weight", "2.bias"}
                assert params["0.weight"] == list(range(100, 1001, 100))
                edges, counts, _ = done.histograms("0.weight")
                assert counts.sum(axis=1).tolist() == [128.0] * 10
                assert edges[-1][-1] < edges[0][-1]  # halved weights: a narrower histogram
                assert done.diagnosis and done.diagnosis["epochs"] == 1000
        finally:
            launch.stop(api, grace=10)
