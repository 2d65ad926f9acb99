"""Checkpoints through the API on both artifact backends: a folder, and a real S3-compatible
server (moto's standalone server, started here on a free port): what the trainer keeps goes
in as its worker uploads it and comes back to an identical state_dict; damaged, oversized
and half-sent uploads are refused and never listed; a deleted run's files go with it."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.main import create_app
from api.runs.queue import RecordingQueue
from stack.launch import free_port
from tests.api.conftest import API, bearer, empty_tables, start, submit
from tests.trainer.conftest import Recorder
from tests.waits import wait_for
from trainer.loop import train
from trainer.spec import JobSpec


@pytest.fixture(scope="module")
def kept() -> list[Any]:
    recorder = Recorder()
    spec = {"dataset": {"train_subset": 300}, "epochs": 6, "early_stopping": {"patience": 1}}
    train(JobSpec.model_validate(spec), [recorder])
    assert recorder.ended is not None
    return recorder.ended.checkpoints


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(answering, 60, "moto's S3 server to answer")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def client_for(database_url: str, **settings: Any) -> TestClient:
    app = create_app(Settings(database_url=database_url, **settings), enqueuer=RecordingQueue())
    empty_tables(app.state.store.engine)
    _, token = app.state.store.people.create_user("alice", team="lab", role="owner")
    return TestClient(app, headers=bearer(token))


def upload(client: TestClient, run_id: int, c: Any, **change: Any) -> httpx.Response:
    data = change.pop("data", base64.b64decode(c.data))
    params = {"epoch": c.epoch, "size": c.size, "sha256": c.sha256, "why": c.why, **change}
    return client.post(
        f"{API}/runs/{run_id}/checkpoints/{c.name}",
        params=params,
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


@pytest.fixture(params=["folder", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    if request.param == "folder":
        return {"artifacts": str(tmp_path / "artifacts")}
    import boto3

    endpoint = request.getfixturevalue("s3_server")
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"fitlens-{tmp_path.name.lower().replace('_', '-')[:40]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return {"artifacts": f"s3://{bucket}/tests", "s3_endpoint_url": endpoint}


def test_a_checkpoint_round_trips_to_an_identical_state_dict(
    database_url: str, backend: dict[str, Any], kept: list[Any]
) -> None:
    with client_for(database_url, **backend) as client:
        run_id = submit(client)["id"]
        start(client, run_id)
        for c in kept:
            assert upload(client, run_id, c).status_code == 200
        listed = client.get(f"{API}/runs/{run_id}/checkpoints").json()["checkpoints"]
        assert [c["name"] for c in listed] == ["best", "last"]
        best = next(c for c in kept if c.name == "best")
        assert listed[0]["sha256"] == best.sha256 and "lowest val_loss" in listed[0]["why"]
        got = client.get(f"{API}/runs/{run_id}/checkpoints/best")
        assert hashlib.sha256(got.content).hexdigest() == best.sha256
        state = torch.load(io.BytesIO(got.content), weights_only=True)
        original = torch.load(io.BytesIO(base64.b64decode(best.data)), weights_only=True)
        assert state.keys() == original.keys()
        assert all(torch.equal(state[k], original[k]) for k in state)
        client.delete(f"{API}/runs/{run_id}")
        if backend["artifacts"].startswith("s3://"):
            import boto3

            bucket = backend["artifacts"][5:].split("/")[0]
            s3 = boto3.client("s3", endpoint_url=backend["s3_endpoint_url"])
            assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        else:
            assert not any(Path(backend["artifacts"]).rglob("best"))


def test_damaged_oversized_and_short_uploads_are_refused_and_not_listed(
    database_url: str, tmp_path: Path, kept: list[Any]
) -> None:
    settings = {"artifacts": str(tmp_path), "max_run_checkpoint_mb": 1}
    with client_for(database_url, **settings) as client:
        run_id = submit(client)["id"]
        start(client, run_id)
        c = kept[0]
        damaged = bytearray(base64.b64decode(c.data))
        damaged[100] ^= 0xFF
        for change, status, field in (
            ({"data": bytes(damaged)}, 422, "sha256"),
            ({"data": base64.b64decode(c.data)[:-10]}, 422, "size"),
            ({"size": 2 << 20}, 413, "size"),
            ({"sha256": "not-a-hash"}, 422, "sha256"),
        ):
            response = upload(client, run_id, c, **change)
            assert response.status_code == status, response.text
            assert field in response.text
        assert client.get(f"{API}/runs/{run_id}/checkpoints").json()["checkpoints"] == []
        assert list(tmp_path.rglob("best")) == []
        assert client.get(f"{API}/runs/{run_id}/checkpoints/best").status_code == 404
