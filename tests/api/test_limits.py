"""The documented bounds hold on both databases: ids and steps up to 2**62, histograms with any
finite edges. (PostgreSQL's 32-bit columns answered 422 "integer out of range" past 2**31 - 1,
and edges near +-1e308 gave NaN edges in overlays.)"""

from __future__ import annotations

import math

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.conftest import API, start, submit

BIG = 2**31 + 7  # past a 32-bit column
HUGE = 2**62  # the documented bound


def test_ids_past_32_bits_are_just_ids(client: TestClient) -> None:
    for run_id in (BIG, HUGE):
        assert client.get(f"{API}/runs/{run_id}").status_code == 404
        assert client.get(f"{API}/runs/{run_id}/curves").status_code == 404
        assert client.get(f"{API}/compare", params={"runs": f"{run_id}"}).status_code == 404
        assert client.delete(f"{API}/tokens/{run_id}").status_code == 404
        assert client.put(f"{API}/teams/{run_id}/members", json={"user": "x"}).status_code == 404
    assert client.get(f"{API}/runs/{HUGE + 1}").status_code == 422


def test_a_run_whose_id_is_past_32_bits_works_end_to_end(client: TestClient) -> None:
    engine = client.app.state.store.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:  # as if two billion runs had come before
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('run_id_seq', :v)"), {"v": BIG})
        else:  # SQLite gives the next run max(id) + 1: copy a run to id BIG
            first = submit(client)["id"]
            columns = [
                row[1] for row in conn.execute(text("PRAGMA table_info(run)")) if row[1] != "id"
            ]
            listed = ", ".join(columns)
            conn.execute(
                text(f"INSERT INTO run (id, {listed}) SELECT :v, {listed} FROM run WHERE id = :id"),
                {"v": BIG, "id": first},
            )
    run_id = submit(client)["id"]
    assert run_id > BIG
    start(client, run_id)
    step = 2**40
    points = [{"key": "val_loss", "step": step, "value": 0.25}]
    assert client.post(f"{API}/runs/{run_id}/metrics", json={"points": points}).status_code == 200
    hist = {"param": "w", "step": step, "edges": [0, 1], "counts": [2]}
    posted = client.post(f"{API}/runs/{run_id}/histograms", json={"histograms": [hist]})
    assert posted.status_code == 200, posted.text
    event = {"kind": "lr_change", "step": step, "payload": {"new_lr": 0.1}}
    assert client.post(f"{API}/runs/{run_id}/events", json={"events": [event]}).status_code == 200

    curves = client.get(f"{API}/runs/{run_id}/curves").json()
    assert curves["series"][0]["steps"] == [step]
    assert client.get(f"{API}/runs/{run_id}/histograms").json()["params"] == {"w": [step]}
    events = client.get(f"{API}/runs/{run_id}/events", params={"kind": "lr_change"}).json()
    assert [e["step"] for e in events] == [step]


def test_histograms_with_edges_near_the_float_limit_rebin_to_finite_numbers(
    client: TestClient,
) -> None:
    runs = []
    for edges in ([-1e308, 1e308], [-1e308, 0.0, 1.7e308], [-1.0, 1.0]):
        run_id = submit(client)["id"]
        start(client, run_id)
        counts = [5.0] * (len(edges) - 1)
        hist = {"param": "w", "step": 1, "edges": edges, "counts": counts}
        response = client.post(f"{API}/runs/{run_id}/histograms", json={"histograms": [hist]})
        assert response.status_code == 200, response.text
        runs.append((run_id, sum(counts)))

    overlay = client.get(
        f"{API}/histograms/overlay",
        params={"runs": ",".join(str(r) for r, _ in runs), "param": "w", "bins": 8},
    ).json()
    assert all(isinstance(e, float) and math.isfinite(e) for e in overlay["edges"])
    assert overlay["edges"] == sorted(overlay["edges"])
    for (_, total), run in zip(runs, overlay["runs"], strict=True):
        assert math.isclose(sum(run["counts"]), total)
    shared = client.get(
        f"{API}/runs/{runs[0][0]}/histograms", params={"param": "w", "shared_bins": 4}
    ).json()
    step = shared["steps"][0]
    assert all(math.isfinite(e) for e in step["edges"]) and math.isclose(sum(step["counts"]), 5)


def test_histogram_counts_must_be_counts(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    for counts in ([1e308, 1e308], [-1.0, 1.0], [2.0**54, 0.0]):
        hist = {"param": "w", "step": 1, "edges": [0, 1, 2], "counts": counts}
        response = client.post(f"{API}/runs/{run_id}/histograms", json={"histograms": [hist]})
        assert response.status_code == 422, response.text
        assert "counts" in response.json()["detail"]
