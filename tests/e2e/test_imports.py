"""`fitlens import`: logs written by TensorBoard's own writer (torch.utils.tensorboard) and runs
kept by MLflow's own server (`mlflow server`, SQLite, a free port) become fitlens runs, every
point and histogram step of them, and importing them again stores nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from bench.server import mlflow_server as bench_mlflow_server
from stack import launch


@pytest.fixture(scope="module")
def fitlens_env() -> Iterator[dict[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="fitlens-imports-"))
    port = launch.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{tmp / 'imports.db'}",
        "FITLENS_QUEUE": "none",
    }
    base = f"http://127.0.0.1:{port}"
    with open(tmp / "api.log", "w") as log:
        proc = launch.start_api(port, env, log)
        launch.wait_healthy(base, proc)
        token = launch.user_token(env, "ivy", "importers")
        yield {**env, "FITLENS_URL": base, "FITLENS_TOKEN": token, "FITLENS_TMP": str(tmp)}
        launch.stop(proc, grace=10)


def fitlens(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    """The `fitlens` command, as a user runs it; its --json answer."""
    done = subprocess.run(
        [sys.executable, "-m", "fitlens.cli", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def api(env: dict[str, str], path: str, **params: Any) -> Any:
    response = httpx.get(
        f"{env['FITLENS_URL']}/api/v1{path}",
        params=params,
        headers={"Authorization": f"Bearer {env['FITLENS_TOKEN']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _write_tensorboard(logdir: Path) -> dict[str, dict[str, list[float]]]:
    """Two runs as a PyTorch user logs them; what each logged, by tag."""
    logged: dict[str, dict[str, list[float]]] = {}
    for name, seed in (("adam", 0), ("sgd", 1)):
        torch.manual_seed(seed)
        layer = torch.nn.Linear(16, 8)
        writer = SummaryWriter(str(logdir / name))
        tags: dict[str, list[float]] = {}
        for epoch in range(1, 13):
            values = {
                "Loss/train": 1.0 / epoch,
                "Loss/val": 0.6 + abs(epoch - 6) * 0.04,
                "Accuracy/val": epoch / 13,
                "lr": 0.1 * 0.9**epoch,
            }
            for tag, value in values.items():
                writer.add_scalar(tag, value, epoch)
                tags.setdefault(tag, []).append(value)
            writer.add_scalar("loss_per_batch", 1.0 / epoch, epoch * 50)
            if epoch % 4 == 0:
                with torch.no_grad():
                    layer.weight.mul_(1.5)
                writer.add_histogram("fc.weight", layer.weight, epoch)
        writer.close()
        logged[name] = tags
    return logged


def test_tensorboard_logs_import_with_every_point_and_histogram_once(
    fitlens_env: dict[str, str], tmp_path: Path
) -> None:
    logged = _write_tensorboard(tmp_path / "runs")
    args = ("import", "tensorboard", str(tmp_path / "runs"), "--project", "tb")
    first = fitlens(fitlens_env, *args, "--map", "loss_per_batch=train_loss_batch")
    assert sorted(r["name"] for r in first) == ["adam", "sgd"]
    assert {r["outcome"] for r in first} == {"new"}
    for imported in first:
        run_id = imported["run_id"]
        run = api(fitlens_env, f"/runs/{run_id}")
        assert run["status"] == "succeeded" and run["project"] == "tb"
        curves = api(fitlens_env, f"/runs/{run_id}/curves")
        series = {s["key"]: s for s in curves["series"]}
        assert sorted(series) == [
            "lr",
            "train_loss",
            "train_loss_batch",
            "val_accuracy",
            "val_loss",
        ]
        want = logged[imported["name"]]
        for tag, key in (("Loss/train", "train_loss"), ("Loss/val", "val_loss"), ("lr", "lr")):
            assert series[key]["steps"] == list(range(1, 13))
            assert series[key]["values"] == pytest.approx(want[tag], rel=1e-6)  # float32
        assert series["train_loss_batch"]["steps"] == [50 * e for e in range(1, 13)]
        histograms = api(fitlens_env, f"/runs/{run_id}/histograms")
        assert histograms["params"] == {"fc.weight": [4, 8, 12]}
        last = api(fitlens_env, f"/runs/{run_id}/histograms", param="fc.weight")["steps"][-1]
        assert last["numel"] == 16 * 8
        assert run["diagnosis"]["verdict"] == "overfitting"  # val loss turns up after epoch 6
    again = fitlens(fitlens_env, *args, "--map", "loss_per_batch=train_loss_batch")
    assert {r["outcome"] for r in again} == {"unchanged"}
    assert sorted(r["run_id"] for r in again) == sorted(r["run_id"] for r in first)
    assert len(api(fitlens_env, "/runs", project="tb")["items"]) == 2


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    with bench_mlflow_server(tmp_path) as url:
        yield url


def test_an_mlflow_server_s_runs_import_once(
    fitlens_env: dict[str, str], mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment("legacy")
    ids = {}
    for name, lr in (("slow", 0.001), ("fast", 0.1)):
        with mlflow.start_run(run_name=name) as run:
            mlflow.log_params({"lr": lr, "optimizer": "sgd"})
            mlflow.set_tag("owner", "ivy")
            for epoch in range(1, 21):
                mlflow.log_metrics(
                    {"train_loss": 1 / epoch, "val loss": 0.5 + lr * epoch}, step=epoch
                )
        ids[name] = run.info.run_id
    args = ("import", "mlflow", "--tracking-uri", mlflow_server, "--experiment", "legacy")
    first = fitlens(fitlens_env, *args)
    assert [(r["name"], r["outcome"], r["added"]) for r in first] == [
        ("slow", "new", 40),
        ("fast", "new", 40),
    ]
    for imported in first:
        run = api(fitlens_env, f"/runs/{imported['run_id']}")
        assert run["project"] == "legacy" and run["status"] == "succeeded"
        assert run["params"]["optimizer"] == "sgd" and "owner=ivy" in run["tags"]
        assert f"imported:mlflow:{ids[run['name']]}" in run["tags"]
        curves = api(fitlens_env, f"/runs/{imported['run_id']}/curves")
        series = {s["key"]: s for s in curves["series"]}
        assert sorted(series) == ["train_loss", "val_loss"]  # "val loss" has no space here
        assert series["train_loss"]["values"] == pytest.approx([1 / e for e in range(1, 21)])
    again = fitlens(fitlens_env, *args)
    assert [(r["outcome"], r["added"]) for r in again] == [("unchanged", 0)] * 2
    assert len(api(fitlens_env, "/runs", project="legacy")["items"]) == 2
