"""The fair share across teams reaches the real broker: each priority the API gives a run is a
Redis list of its own, which workers serve lowest first (kombu's priority order), so one team's
backlog (high numbers) waits behind another team's first run (0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection

from api.runs.queue import CeleryQueue
from tests.e2e.conftest import REDIS_URL
from trainer.spec import JobSpec
from worker.contract import broker_transport_options

# This worker's database (each module flushes it; modules of one worker run one at a time).
FAIR_URL = REDIS_URL


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(FAIR_URL)
    client.flushdb()
    yield client
    client.flushdb()


def test_runs_are_served_by_priority_whatever_order_they_were_sent_in(
    broker: redis.Redis, tmp_path: Path
) -> None:
    queue = CeleryQueue(FAIR_URL, str(tmp_path))
    spec = JobSpec(device="cpu")
    # A team's backlog first (its 2nd..4th runs), then another team's first run.
    for run_id, priority in ((1, 1), (2, 2), (3, 2), (4, 0)):
        queue.enqueue(run_id, spec, f"token-{run_id}", priority)
    assert broker.llen("cpu") == 1 and broker.llen("cpu:1") == 1 and broker.llen("cpu:2") == 2

    served = []
    options = broker_transport_options(FAIR_URL, str(tmp_path))
    with Connection(FAIR_URL, transport_options=options) as conn:
        simple = conn.SimpleQueue("cpu")
        for _ in range(4):
            message = simple.get(timeout=5)
            served.append(message.headers["argsrepr"])
            message.ack()
        simple.close()
    assert served[0] == "[4]"  # the other team's first run, though it came last
    assert served[1] == "[1]"
