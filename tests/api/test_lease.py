"""The database lease that makes the reconciler run in one API process at a time (issue 15):
one holder at once, renewed by its holder, taken over once it expires."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.core.lease import LeaseHolder


def test_one_holder_at_a_time_and_a_dead_ones_lease_passes_on(client: TestClient) -> None:
    engine = client.app.state.store.engine  # type: ignore[attr-defined]
    first = LeaseHolder(engine, "reconciler", ttl=0.6)
    second = LeaseHolder(engine, "reconciler", ttl=0.6)
    with engine.begin() as conn:  # whatever an earlier test's app held: expired
        conn.execute(text("UPDATE lease SET expires_at = '2000-01-01'"))
    assert first.hold()
    assert not second.hold()
    assert first.hold()  # renewed by its holder
    time.sleep(0.7)  # first stops renewing (it died)
    assert second.hold()
    assert not first.hold()
    assert not LeaseHolder(engine, "no such lease", ttl=1).hold()
    second.release()
    assert first.hold()  # a clean shutdown hands it on at once
