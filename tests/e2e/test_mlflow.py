"""MLflow's own client (the `mlflow` package, unmodified) logs into a real fitlens server with
nothing but MLFLOW_TRACKING_URI and MLFLOW_TRACKING_TOKEN: a PyTorch loop's params and every
point arrive, the run is diagnosed, and another team's token sees none of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
import torch
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_digits

from stack import launch

EPOCHS = 30


@dataclass
class Server:
    base: str
    token: str
    other_token: str

    def api(self, path: str, **params: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base}/api/v1{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    tmp = Path(tempfile.mkdtemp(prefix="fitlens-mlflow-"))
    port = launch.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(launch.ROOT),
        "DATABASE_URL": f"sqlite:///{tmp / 'mlflow.db'}",
        "FITLENS_QUEUE": "none",
    }
    base = f"http://127.0.0.1:{port}"
    with open(tmp / "api.log", "w") as log:
        proc = launch.start_api(port, env, log)
        launch.wait_healthy(base, proc)
        token = launch.user_token(env, "mel", "mlflow-team")
        other = launch.user_token(env, "otto", "other-team")
        yield Server(base, token, other)
        launch.stop(proc, grace=10)


@pytest.fixture
def logging_as(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """MLflow's client pointed at fitlens, as the README says; no retries, to fail fast."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(f"{server.base}/mlflow")
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _digits() -> tuple[torch.Tensor, ...]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    return x[:120], y[:120], x[1000:1400], y[1000:1400]  # few to learn from: it overfits


def _train_with_mlflow() -> str:
    torch.manual_seed(0)
    x, y, vx, vy = _digits()
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    mlflow.set_experiment("digits-mlflow")
    with mlflow.start_run(run_name="mlp") as run:
        mlflow.log_params({"lr": 0.01, "epochs": EPOCHS, "batch_size": 30, "optimizer": "adam"})
        step = 0
        for epoch in range(1, EPOCHS + 1):
            model.train()
            for i in range(0, len(x), 30):
                opt.zero_grad()
                loss = loss_fn(model(x[i : i + 30]), y[i : i + 30])
                loss.backward()
                opt.step()
                step += 1
                mlflow.log_metrics({"train_loss_batch": loss.item()}, step=step)
            model.eval()
            with torch.no_grad():
                train_loss = loss_fn(model(x), y).item()
                logits = model(vx)
                val_loss = loss_fn(logits, vy).item()
                val_accuracy = (logits.argmax(1) == vy).float().mean().item()
            mlflow.log_metric("train_loss", train_loss, step=epoch)
            mlflow.log_metric("val_loss", val_loss, step=epoch)
            mlflow.log_metric("val_accuracy", val_accuracy, step=epoch)
    return str(run.info.run_id)


@pytest.mark.usefixtures("logging_as")
def test_mlflow_s_client_logs_a_pytorch_loop_into_fitlens(server: Server) -> None:
    run_id = _train_with_mlflow()
    run = server.api(f"/runs/{run_id}")
    assert run["status"] == "succeeded" and run["project"] == "digits-mlflow"
    assert run["name"] == "mlp" and run["created_by"] == "mel"
    assert run["params"] == {"lr": "0.01", "epochs": "30", "batch_size": "30", "optimizer": "adam"}
    curves = server.api(f"/runs/{run_id}/curves", max_points="1000")
    totals = {s["key"]: s["total_points"] for s in curves["series"]}
    assert totals == {
        "train_loss": EPOCHS,
        "val_loss": EPOCHS,
        "val_accuracy": EPOCHS,
        "train_loss_batch": EPOCHS * 4,
    }
    # 120 digits learnt by a wide MLP: the validation loss turns up while training's falls.
    assert run["diagnosis"]["verdict"] == "overfitting"
    assert 1 <= run["diagnosis"]["onset_epoch"] < EPOCHS
    # What MLflow's client reads back is what it logged.
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run_id, "val_loss")
    assert [m.step for m in history] == list(range(1, EPOCHS + 1))
    assert [m.value for m in history] == curves_values(curves, "val_loss")
    found = mlflow.search_runs(
        experiment_names=["digits-mlflow"],
        filter_string="params.optimizer = 'adam' and metrics.val_accuracy > 0.5",
        output_format="list",
    )
    assert [r.info.run_id for r in found] == [run_id]


def curves_values(curves: dict[str, Any], key: str) -> list[float]:
    return next(s["values"] for s in curves["series"] if s["key"] == key)


@pytest.mark.usefixtures("logging_as")
def test_another_team_s_token_finds_nothing_and_no_token_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow.set_experiment("private")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 1.0, step=1)
    experiment_id = run.info.experiment_id
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.other_token)
    client = mlflow.MlflowClient()
    assert client.get_experiment_by_name("private") is None
    for read in (
        lambda: client.get_run(run.info.run_id),
        lambda: client.get_experiment(experiment_id),
        lambda: client.log_metric(run.info.run_id, "loss", 2.0, step=2),
    ):
        with pytest.raises(MlflowException) as refused:
            read()
        assert refused.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_runs([experiment_id]) == []
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException) as anonymous:
        client.get_run(run.info.run_id)
    assert anonymous.value.error_code == "UNAUTHENTICATED"


@pytest.mark.usefixtures("logging_as")
def test_what_fitlens_does_not_keep_is_refused_as_not_implemented(tmp_path: Path) -> None:
    mlflow.set_experiment("refusals")
    note = tmp_path / "note.txt"
    note.write_text("hello")
    with mlflow.start_run() as run:
        with pytest.raises(Exception, match="NOT_IMPLEMENTED"):
            mlflow.log_artifact(str(note))
        with pytest.raises(MlflowException) as changed:
            mlflow.log_param("lr", 0.1)
            mlflow.log_param("lr", 0.2)
        assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


@pytest.mark.usefixtures("logging_as")
def test_pytorch_autolog_logs_every_scalar_then_fails_on_its_model_summary_artifact(
    server: Server,
) -> None:
    """``mlflow.pytorch.autolog()`` (Lightning) logs params and each epoch's scalars through
    log-batch, which fitlens takes; at the end it always uploads ``model_summary.txt`` through
    MLflow's artifact API, which fitlens answers NOT_IMPLEMENTED: autolog catches that (the
    training finishes) but ends its run FAILED. The scalars are all there."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(64, 10)

        def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
            loss = torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch: list[torch.Tensor], _: int) -> None:
            loss = torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])
            self.log("val_loss", loss)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y, vx, vy = _digits()
    mlflow.set_experiment("autolog")
    mlflow.pytorch.autolog(log_models=False, checkpoint=False)
    try:
        trainer = L.Trainer(
            max_epochs=4,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(
            Tiny(),
            DataLoader(TensorDataset(x, y), batch_size=40),
            DataLoader(TensorDataset(vx, vy), batch_size=200),
        )
    finally:
        mlflow.pytorch.autolog(disable=True)
    assert trainer.current_epoch == 4  # the training itself went to its end
    autologged = mlflow.last_active_run()
    assert autologged is not None
    run = server.api(f"/runs/{autologged.info.run_id}")
    assert run["status"] == "failed" and "MLflow client" in run["failure_reason"]
    assert run["params"]["optimizer_name"] == "SGD" and run["params"]["lr"] == "0.1"
    curves = server.api(f"/runs/{autologged.info.run_id}/curves")
    totals = {s["key"]: s["total_points"] for s in curves["series"]}
    assert totals["train_loss"] == 4 and totals["val_loss"] == 4
