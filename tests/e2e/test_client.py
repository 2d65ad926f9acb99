"""The Python client and the `fitlens` command against a real uvicorn server and a real worker
(issue 14): every read into its documented type, logging from your own loop, the CLI's
commands and exit codes."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from fitlens import Client, FitlensError
from fitlens.errors import NotFound
from tests.e2e.conftest import Worker

FAILING = {"dataset": {"name": "mnist"}, "epochs": 1}  # no MNIST on this disk: the run fails


@pytest.fixture(scope="module")
def client(api: httpx.Client) -> Iterator[Client]:
    base = str(api.base_url).rstrip("/").removesuffix("/api/v1")
    with Client(base, api.headers["authorization"].split(" ", 1)[1]) as c:
        yield c


def test_the_client_reads_a_real_run_into_its_types(client: Client, worker: Worker) -> None:
    run = client.submit({"epochs": 4}, project="client", tags=["py"], name="read me")
    assert run.status == "queued" and run.name == "read me"
    run.wait(timeout=240)
    assert run.status == "succeeded" and run.diagnosis and run.diagnosis["epochs"] == 4
    curves = run.curves(["train_loss", "val_loss"])
    assert list(curves.index) == [1, 2, 3, 4] and curves.index.name == "step"
    assert list(curves.columns) == ["train_loss", "val_loss"]
    assert all(curves.dtypes == np.float64) and curves.notna().all().all()
    edges, counts, steps = run.histograms("fc1.weight")
    assert edges.shape == (4, 65) and counts.shape == (4, 64) and list(steps) == [1, 2, 3, 4]
    shared, counts16, _ = run.histograms("fc1.weight", shared_bins=16)
    assert shared.shape == (17,) and counts16.shape == (4, 16)
    assert np.isclose(counts16.sum(axis=1), counts.sum(axis=1)).all()
    evaluation = run.evaluation()
    assert len(evaluation["confusion_matrix"]) == 10 and evaluation["accuracy"] > 0.1
    listed = client.runs(project="client")
    assert isinstance(listed, pd.DataFrame) and listed.loc[run.id, "status"] == "succeeded"
    assert isinstance(listed.loc[run.id, "min_val_loss"], float)
    compared = client.compare([run])
    assert compared.loc[run.id, "best_epoch"] >= 1 and "verdict" in compared.columns
    # Errors carry the API's status, message and fields.
    with pytest.raises(FitlensError) as refused:
        client.submit({"epochs": -1})
    assert refused.value.status == 422 and refused.value.errors[0]["field"] == "spec.epochs"
    with pytest.raises(NotFound):
        client.run(10**9)


def test_your_own_loop_logs_non_finite_values_and_failures(
    client: Client, api: httpx.Client
) -> None:
    with client.start_run(project="client", name="own loop", params={"lr": 0.1}) as logged:
        logged.log({"loss": float("nan")}, step=1)
        logged.log({"loss": math.inf}, step=2)
        logged.log({"loss": 0.5}, step=3)
    run = client.run(logged.id)
    assert run.status == "succeeded" and run.data["source"] == "client"
    loss = run.curves("loss")["loss"]
    assert math.isnan(loss[1]) and loss[2] == math.inf and loss[3] == 0.5
    with pytest.raises(RuntimeError), client.start_run(project="client") as broken:
        broken.log({"loss": 1.0}, step=1)
        raise RuntimeError("boom")
    failed = client.run(broken.id)
    assert failed.status == "failed" and "RuntimeError: boom" in failed.data["failure_reason"]
    # A viewer of the team may read, not log.
    team = client.me()["teams"][0]["id"]
    made = api.post("/users", json={"name": "client-viewer", "team_id": team, "role": "viewer"})
    with Client(client.url, made.json()["token"]) as viewer:
        with pytest.raises(FitlensError) as refused:
            viewer.start_run(project="client")
        assert refused.value.status == 403
        assert viewer.run(run.id).status == "succeeded"


def test_exports_stream_every_point_and_keep_non_finite_values(
    client: Client, tmp_path: Path
) -> None:
    special = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
    with client.start_run(project="client", name="exported") as logged:
        for step in range(3_000):  # three blocks' worth
            value = special[step % 6] if step % 10 == 0 else 1.0 / (step + 1)
            logged.log({"loss": value, "acc": step / 3_000}, step=step)
    run = client.run(logged.id)
    exported = pd.read_parquet(run.export(tmp_path / "run.parquet", "parquet"))
    written = pd.read_csv(run.export(tmp_path / "run.csv"))
    assert len(exported) == len(written) == 6_000 and exported["value"].notna().sum() < 6_000
    loss = exported[exported["key"] == "loss"].set_index("step")["value"]
    for step in range(0, 3_000, 10):
        want = special[step % 6]
        got = loss[step]
        assert (math.isnan(got) and math.isnan(want)) or (
            got == want and math.copysign(1, got) == math.copysign(1, want)
        ), (step, got, want)
    assert list(exported["step"][exported["key"] == "acc"]) == list(range(3_000))


def test_your_own_loops_run_ends_at_its_last_step_and_records_its_environment(
    client: Client, api: httpx.Client
) -> None:
    """Issue 24: no stale progress after the run succeeds (it was 0/40, or 11/15), and the run
    says what it ran with, as a worker's does (torch: this test process has imported it)."""
    import torch

    with client.start_run(project="client", name="progress", epochs=40) as logged:
        for step in (1, 2, 3):
            logged.log({"loss": 1.0 / step}, step=step)
    run = api.get(f"/runs/{logged.id}").json()
    assert run["status"] == "succeeded"
    assert run["progress"] == {"epoch": 3, "epochs": 40}
    environment = run["environment"]
    assert environment["torch"] == torch.__version__ and environment["device"] == "cpu"
    assert environment["python"].count(".") == 2 and environment["fitlens"] == "0.1.0"


def test_tracking_never_crashes_the_training_script(
    client: Client, api: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22: the client beats at the server's pace, and a server that refuses at the end
    of the block is a warning on stderr (raised only with strict=True)."""
    with client.start_run(project="client", name="refused at the end") as logged:
        assert logged.data["heartbeat"]["timeout_s"] == 4  # the test server's
        assert logged.heartbeat_every == pytest.approx(4 / 3)
        logged.log({"loss": 1.0}, step=1)
        logged.flush(timeout=60)
        assert api.delete(f"/runs/{logged.id}").status_code == 204  # refused from now on
        logged.log({"loss": 0.5}, step=2)
    warned = capsys.readouterr().err
    assert warned.count("fitlens: run") == 1 and f"run {logged.id} was not fully" in warned
    assert "1 points" in warned and "the run's end" in warned
    with (
        pytest.raises(FitlensError) as raised,
        client.start_run(project="client", name="strict", strict=True) as strict,
    ):
        strict.log({"loss": 1.0}, step=1)
        strict.flush(timeout=60)
        api.delete(f"/runs/{strict.id}")
        strict.log({"loss": 0.5}, step=2)
    assert raised.value.status == 404


def test_a_study_from_python(client: Client, worker: Worker) -> None:
    study = client.submit_study({"spec": {"epochs": 2}, "design": {"seeds": [1, 2]}})
    study.wait(timeout=240)
    assert study.done and study.data["status"] == {"succeeded": 2}
    table = study.table()
    assert len(table) == 1 and table.iloc[0]["members"] == 2
    assert table.iloc[0]["min_val_loss_mean"] > 0 and len(study.runs()) == 2


def _fitlens(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "fitlens"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_line(
    client: Client, worker: Worker, tmp_path: Path, pipeline_env: dict[str, str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FITLENS_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["COLUMNS"] = "160"  # rich draws the progress bar this wide when not on a terminal
    token = client.http.headers["authorization"].split(" ", 1)[1]
    assert _fitlens(env, "runs").returncode == 2  # not logged in yet: says how
    bad = _fitlens(env, "login", client.url, "--token", "fl_not-a-token")
    assert bad.returncode == 3 and "unknown token" in bad.stderr
    login = _fitlens(env, "login", client.url, "--token", token)
    assert login.returncode == 0, login.stderr
    saved = tmp_path / "config" / "fitlens" / "config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text()) == {"url": client.url, "token": token}
    assert token not in login.stdout + login.stderr

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"epochs": 3}))
    watched = _fitlens(env, "submit", str(spec), "--project", "cli", "--tag", "cli", "--watch")
    assert watched.returncode == 0, watched.stderr
    run_id = int(watched.stdout.split()[1])
    assert "3/3" in watched.stderr  # the progress bar's last state
    spec.write_text(json.dumps(FAILING))
    failing = _fitlens(env, "submit", str(spec), "--project", "cli", "--watch", "--json")
    assert failing.returncode == 1 and json.loads(failing.stdout)["status"] == "failed"

    listed = json.loads(_fitlens(env, "runs", "--where", "epochs=3", "--json").stdout)
    assert run_id in [r["id"] for r in listed]
    assert "succeeded" in _fitlens(env, "runs", "--project", "cli").stdout
    # Tables fit the terminal: long values fold over lines, none is cut short (issue 22).
    for width in ("80", "120"):
        narrow = _fitlens({**env, "COLUMNS": width}, "runs", "--project", "cli").stdout
        assert "…" not in narrow and max(len(line) for line in narrow.splitlines()) <= int(width)
        assert str(run_id) in narrow and "succeeded" in narrow
    shown = json.loads(_fitlens(env, "show", str(run_id), "--json").stdout)
    assert shown["run"]["id"] == run_id and list(shown["last_epochs"]) == ["1", "2", "3"]
    compared = json.loads(_fitlens(env, "compare", str(run_id), str(run_id), "--json").stdout)
    assert len(compared) == 1 and compared[0]["id"] == run_id
    csv = tmp_path / "run.csv"
    assert _fitlens(env, "export", str(run_id), "--out", str(csv)).returncode == 0
    assert csv.read_text().startswith("key,step,value")
    parquet = tmp_path / "run.parquet"
    assert (
        _fitlens(
            env, "export", str(run_id), "--format", "parquet", "--out", str(parquet)
        ).returncode
        == 0
    )
    exported = pd.read_parquet(parquet)
    assert set(exported[exported["key"] != "train_loss_batch"]["step"]) == {1, 2, 3}
    assert _fitlens(env, "open", str(run_id)).stdout.strip() == f"{client.url}/#/runs/{run_id}"
    finished = _fitlens(env, "cancel", str(run_id))
    assert finished.returncode == 3 and "succeeded" in finished.stderr  # 409, said plainly
    assert _fitlens(env, "show", "999999999").returncode == 3


def test_the_example_loop_and_the_trainer_callback_log_whole_runs(
    client: Client, tmp_path: Path
) -> None:
    env = {**os.environ, "FITLENS_URL": client.url}
    env["FITLENS_TOKEN"] = client.http.headers["authorization"].split(" ", 1)[1]
    example = Path(__file__).resolve().parents[2] / "examples" / "own_loop_digits.py"
    done = subprocess.run(
        [sys.executable, str(example), "--epochs", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run = client.run(int(done.stdout.split()[1].rstrip(":")))
    assert run.status == "succeeded" and run.data["params"]["dataset"] == "digits"
    assert list(run.curves().index) == [1, 2, 3, 4]
    assert run.histogram_params()["0.weight"] == [1, 2, 3, 4]
    assert len(run.evaluation()["roc"]) == 10 and run.diagnosis
    # fitlens's own trainer in this process, reporting through the callback.
    from trainer.loop import train
    from trainer.spec import JobSpec
    from worker.callback import FitlensCallback

    spec = JobSpec.model_validate({"epochs": 3, "lr_schedule": {"kind": "step", "step_size": 1}})
    with client.start_run(project="client", params={"trainer": "fitlens"}, epochs=3) as logged:
        train(spec, [FitlensCallback(logged)])
    trained = client.run(logged.id)
    assert trained.status == "succeeded" and list(trained.curves("val_loss").index) == [1, 2, 3]
    assert len(trained.events("lr_change")) == 3 and trained.evaluation()["epoch"] == 3

    # One line each for a notebook.
    import matplotlib

    matplotlib.use("Agg")
    from fitlens import plot

    assert len(plot.curves(run).lines) >= 3  # two curves and the best epoch
    assert plot.histogram_heatmap(run, "0.weight").collections
    assert len(plot.histogram_overlay([run], "0.weight", step=3).patches) == 1
    assert plot.confusion(run).images
    # Seed 003's figures of fitlens's own trainer's run: the matrix, its change, its units.
    kept = {(s["param"], s["epoch"]) for s in trained.snapshots()}
    assert {("fc1.weight", 1), ("fc1.weight", 3)} <= kept
    assert trained.weights("fc1.weight", 3).shape == (128, 64)
    assert plot.weights(trained, "fc1.weight", epoch=3, diff_from=1).images
    grid = plot.weight_images(trained, "fc1.weight", epoch=3, input_shape=(1, 8, 8))
    assert sum(bool(ax.images) for ax in grid.axes) == 128
    # The best epoch's weights, taken home (checked against their SHA-256), load strictly.
    from trainer.models import build_model

    assert [c["name"] for c in trained.checkpoints()] == ["best", "last"]
    build_model(spec, (1, 8, 8), 10).load_state_dict(trained.load_state_dict("best"))


def test_a_lightning_trainer_logs_through_the_fitlens_logger(client: Client) -> None:
    import lightning as L
    import torch

    from fitlens.lightning import FitlensLogger

    class Tiny(L.LightningModule):
        def __init__(self, lr: float) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch: list[torch.Tensor], _: int) -> None:
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=16)
    logger = FitlensLogger(client, project="lightning", name="tiny")
    trainer = L.Trainer(
        max_epochs=3,
        logger=logger,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(Tiny(lr=0.05), loader, loader)
    run = client.list_runs(project="lightning")[0]
    assert run.status == "succeeded" and run.data["params"]["lr"] == 0.05
    curves = run.curves(["train_loss", "val_loss"])
    assert list(curves.index) == [1, 2, 3] and curves.notna().all().all()
