"""Stopping at the onset of overfitting (issue 24): a worker run with ``diagnosis.stop_on:
"onset"`` ends when the API's diagnosis finds the onset, keeping the best epoch's weights as
early stopping does; a run from your own loop learns it from its heartbeats' answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from fitlens import Client
from tests.e2e.conftest import Worker
from tests.e2e.test_diagnosis import example
from tests.e2e.test_pipeline import finished
from tests.waits import wait_for

# val_loss turns up after epoch 3 while train_loss keeps falling (tests/api/test_diagnosis.py).
TRAIN = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.04]
VAL = [1.1, 0.9, 0.7, 0.75, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3]


@pytest.fixture(scope="module")
def client(api: httpx.Client) -> Iterator[Client]:
    base = str(api.base_url).rstrip("/").removesuffix("/api/v1")
    with Client(base, api.headers["authorization"].split(" ", 1)[1]) as c:
        yield c


def test_a_worker_run_stops_at_the_onset_with_its_best_weights(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    start_worker("w-onset")
    spec = {**example("overfit_tiny_subset"), "epochs": 100, "diagnosis": {"stop_on": "onset"}}
    run_id = api.post("/jobs", json={"spec": spec}).json()["id"]
    done = wait_for(lambda: finished(api, run_id), 300, "the run to stop at its onset")
    assert done["status"] == "succeeded", done["failure_reason"]
    d = done["diagnosis"]
    assert d["early_stopped"] and "onset of overfitting" in d["stop_reason"], d["stop_reason"]
    assert d["onset_epoch"] is not None and d["onset_epoch"] < d["epochs"] < 100
    # The weights kept are those of the lowest validation loss, as early stopping keeps them.
    assert d["restored_epoch"] == d["evaluated_epoch"] == d["best_epoch"]
    evaluation = api.get(f"/runs/{run_id}/evaluation").json()["evaluation"]
    assert evaluation["epoch"] == d["best_epoch"]


def test_your_own_loop_learns_the_onset_from_its_heartbeats(client: Client) -> None:
    with client.start_run(
        project="client", name="onset", epochs=len(VAL), stop_on="onset", heartbeat_every=0.1
    ) as run:

        def logged(upto: int) -> None:
            for epoch in range(1, upto + 1):
                run.log({"train_loss": TRAIN[epoch - 1], "val_loss": VAL[epoch - 1]}, step=epoch)
            run.flush()
            heard = run.sender.answers
            wait_for(lambda: run.sender.answers > heard + 1, 30, "a heartbeat's answer")

        # Five epochs: the climb after epoch 3 has lasted two, not the patience of three.
        logged(5)
        assert not run.should_stop and run.onset_epoch is None
        logged(6)
        assert run.should_stop and run.onset_epoch == 3
