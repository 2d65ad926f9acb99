"""Curves, histograms, comparisons and exports, shaped for plotting; cheap polling with ETags."""

from __future__ import annotations

import csv
import io
import random

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, post_points, start, submit


def running_run(client: TestClient, spec: dict | None = None, **extra: object) -> int:
    run = submit(client, spec, **extra)
    start(client, run["id"])
    return int(run["id"])


def noisy_series(n: int, spike_at: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "key": "train_loss",
            "step": s,
            "value": 100.0 if s == spike_at else 1.0 + rng.random() * 0.1,
        }
        for s in range(n)
    ]


@pytest.mark.parametrize("spike_at", [0, 12_345, 31_337, 49_999])
def test_downsampling_keeps_a_single_step_spike(client: TestClient, spike_at: int) -> None:
    rid = running_run(client)
    points = noisy_series(50_000, spike_at)
    for i in range(0, len(points), 10_000):
        post_points(client, rid, points[i : i + 10_000])
    series = client.get(
        f"{API}/runs/{rid}/curves", params={"keys": "train_loss", "max_points": 200}
    ).json()["series"][0]
    assert series["downsampled"] and series["total_points"] == 50_000
    assert len(series["steps"]) <= 200
    assert series["steps"] == sorted(series["steps"])
    assert max(series["values"]) == 100.0
    assert series["steps"][series["values"].index(100.0)] == spike_at
    # Every returned point is a real stored point.
    truth = {p["step"]: p["value"] for p in points}
    assert all(truth[s] == v for s, v in zip(series["steps"], series["values"], strict=True))
    # The global minimum survives too.
    assert min(series["values"]) == min(truth.values())


def test_zoom_returns_full_resolution_inside_the_bounds(client: TestClient) -> None:
    rid = running_run(client)
    points = noisy_series(20_000, spike_at=15_000)
    for i in range(0, len(points), 10_000):
        post_points(client, rid, points[i : i + 10_000])
    zoom = client.get(
        f"{API}/runs/{rid}/curves",
        params={
            "keys": "train_loss",
            "start": 14_900,
            "end": 15_100,
            "max_points": 1000,
        },
    ).json()["series"][0]
    assert not zoom["downsampled"]
    assert zoom["steps"] == list(range(14_900, 15_101))
    assert zoom["values"] == [p["value"] for p in points[14_900:15_101]]
    wide = client.get(
        f"{API}/runs/{rid}/curves",
        params={
            "keys": "train_loss",
            "start": 5_000,
            "end": 16_000,
            "max_points": 100,
        },
    ).json()["series"][0]
    assert wide["downsampled"] and len(wide["steps"]) <= 100
    assert wide["steps"][0] >= 5_000 and wide["steps"][-1] <= 16_000
    assert 100.0 in wide["values"]


def test_short_series_come_back_whole_and_aligned_by_key(client: TestClient) -> None:
    rid = running_run(client)
    post_points(
        client,
        rid,
        [
            {"key": k, "step": e, "value": v * e}
            for e in range(1, 31)
            for k, v in (("train_loss", 1), ("gap", 2))
        ],
    )
    body = client.get(f"{API}/runs/{rid}/curves", params={"keys": "gap,train_loss,missing"})
    series = body.json()["series"]
    assert [s["key"] for s in series] == ["gap", "train_loss", "missing"]
    assert series[0]["steps"] == list(range(1, 31)) and series[0]["values"][-1] == 60
    assert series[2] == {
        "key": "missing",
        "steps": [],
        "values": [],
        "total_points": 0,
        "downsampled": False,
        "next_start": None,
    }
    every = client.get(f"{API}/runs/{rid}/curves").json()["series"]
    assert [s["key"] for s in every] == ["gap", "train_loss"]


def test_etags_answer_304_until_something_changes(client: TestClient) -> None:
    rid = running_run(client)
    post_points(client, rid, [{"key": "loss", "step": 1, "value": 1.0}])
    for path in ("/curves?keys=loss", "", "/histograms"):
        url = f"{API}/runs/{rid}{path}"
        first = client.get(url)
        assert first.status_code == 200 and first.headers["etag"].startswith('W/"')
        again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    url = f"{API}/runs/{rid}/curves?keys=loss"
    tag = client.get(url).headers["etag"]
    other_query = client.get(
        f"{API}/runs/{rid}/curves?keys=loss&max_points=10", headers={"If-None-Match": tag}
    )
    assert other_query.status_code == 200
    post_points(client, rid, [{"key": "loss", "step": 2, "value": 0.5}])
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["series"][0]["steps"] == [1, 2]
    compare = f"{API}/compare?runs={rid}&keys=loss"
    ctag = client.get(compare).headers["etag"]
    assert client.get(compare, headers={"If-None-Match": ctag}).status_code == 304


def test_csv_export_has_every_point(client: TestClient) -> None:
    rid = running_run(client)
    points = [
        {"key": k, "step": s, "value": s / 7, "wall_time": 1.7e9 + s}
        for k in ("val_loss", "train_loss")
        for s in range(1, 251)
    ]
    post_points(client, rid, points)
    response = client.get(f"{API}/runs/{rid}/metrics.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 500
    assert [r["key"] for r in rows[:1] + rows[-1:]] == ["train_loss", "val_loss"]
    assert {(r["key"], int(r["step"]), float(r["value"]), float(r["wall_time"])) for r in rows} == {
        (p["key"], p["step"], p["value"], p["wall_time"]) for p in points
    }


def test_any_length_reads_at_full_resolution_page_by_page(client: TestClient) -> None:
    rid = running_run(client)
    points = noisy_series(25_000, spike_at=7)
    points[100]["value"], points[101]["value"] = "NaN", "-Infinity"
    for i in range(0, len(points), 10_000):
        post_points(client, rid, points[i : i + 10_000])
    steps: list[int] = []
    values: list[object] = []
    pages = 0
    params: dict[str, object] = {"keys": "train_loss", "downsample": "false", "max_points": 10_000}
    while True:
        body = client.get(f"{API}/runs/{rid}/curves", params=params).json()["series"][0]
        pages += 1
        assert not body["downsampled"] and len(body["steps"]) <= 10_000
        steps += body["steps"]
        values += body["values"]
        if body["next_start"] is None:
            break
        params["start"] = body["next_start"]
    assert pages == 3
    assert steps == list(range(25_000))  # every point once, in order
    assert values[7] == 100.0 and values[100] == "NaN" and values[101] == "-Infinity"
    assert values[5_000] == points[5_000]["value"]
    # A bounded range ends within it; an empty one says so.
    last = client.get(
        f"{API}/runs/{rid}/curves",
        params={"keys": "train_loss", "downsample": "false", "start": 24_990, "end": 24_994},
    ).json()["series"][0]
    assert last["steps"] == [24_990, 24_991, 24_992, 24_993, 24_994] and last["next_start"] is None


def test_json_lines_export_streams_every_point_of_the_keys_asked(client: TestClient) -> None:
    import json

    rid = running_run(client)
    points = [
        {"key": k, "step": s, "value": s / 7, "wall_time": 1.7e9 + s}
        for k in ("val_loss", "train_loss", "lr")
        for s in range(1, 201)
    ]
    points[0]["value"], points[1]["value"], points[2]["value"] = "NaN", "Infinity", "-Infinity"
    post_points(client, rid, points)
    response = client.get(f"{API}/runs/{rid}/metrics.jsonl", params={"keys": "val_loss,lr"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == 400 and {r["key"] for r in rows} == {"val_loss", "lr"}
    assert rows[0]["key"] == "lr" and rows[200]["key"] == "val_loss"  # by key, then step
    assert [r["value"] for r in rows[200:203]] == ["NaN", "Infinity", "-Infinity"]
    wanted = {(p["key"], p["step"], p["wall_time"]) for p in points if p["key"] != "train_loss"}
    assert {(r["key"], r["step"], r["wall_time"]) for r in rows} == wanted
    csv_rows = client.get(f"{API}/runs/{rid}/metrics.csv", params={"keys": "lr"}).text
    assert csv_rows.count("\n") == 201


def test_a_changed_answer_is_rendered_once_and_never_served_stale(client: TestClient) -> None:
    """Polled reads are kept by ETag (api.core.cache): a second poller gets the same bytes, and
    new data is never answered with the bytes kept for the old."""
    rid = running_run(client)
    post_points(client, rid, [{"key": "loss", "step": 1, "value": 1.0}])
    url = f"{API}/runs/{rid}/curves?keys=loss"
    answers = client.app.state.answers  # type: ignore[attr-defined]
    first = client.get(url)
    hits = answers.hits
    second = client.get(url)
    assert answers.hits == hits + 1 and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    post_points(client, rid, [{"key": "loss", "step": 2, "value": "Infinity"}])
    third = client.get(url)
    assert third.headers["etag"] != first.headers["etag"]
    assert third.json()["series"][0]["values"] == [1.0, "Infinity"]
    run = client.get(f"{API}/runs/{rid}").json()
    client.post(f"{API}/runs/{rid}/status", json={"status": "heartbeat", "attempt": 1, "epoch": 5})
    assert (
        client.get(f"{API}/runs/{rid}").json()["progress"]["epoch"] == 5 != run["progress"]["epoch"]
    )


def hist(step: int, lo: float, hi: float, counts: list[float], param: str = "fc1.weight") -> dict:
    n = len(counts)
    return {
        "param": param,
        "step": step,
        "counts": counts,
        "edges": [lo + (hi - lo) * i / n for i in range(n + 1)],
    }


def test_histograms_over_steps_and_on_shared_edges(client: TestClient) -> None:
    rid = running_run(client)
    client.post(
        f"{API}/runs/{rid}/histograms",
        json={
            "histograms": [
                hist(1, -1.0, 1.0, [1, 2, 3, 4]),
                hist(2, -2.0, 2.0, [4, 3, 2, 1]),
                hist(3, -0.5, 0.5, [0, 10, 0, 0]),
                hist(1, 0.0, 1.0, [5], param="fc1.bias"),
            ]
        },
    )
    url = f"{API}/runs/{rid}/histograms"
    raw = client.get(url, params={"param": "fc1.weight", "steps": "1,3"}).json()
    assert [s["step"] for s in raw["steps"]] == [1, 3] and not raw["shared_edges"]
    assert raw["steps"][0]["edges"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    heat = client.get(url, params={"param": "fc1.weight", "shared_bins": 8}).json()
    assert heat["shared_edges"] and [s["step"] for s in heat["steps"]] == [1, 2, 3]
    edges = heat["steps"][0]["edges"]
    assert edges[0] == -2.0 and edges[-1] == 2.0 and len(edges) == 9
    for step, original in zip(heat["steps"], (10, 10, 10), strict=True):
        assert step["edges"] == edges and len(step["counts"]) == 8
        assert sum(step["counts"]) == pytest.approx(original)
    # Step 3 has all 10 weights in [-0.25, 0): they land in the bin [-0.5, 0).
    assert heat["steps"][2]["counts"][3] == pytest.approx(10)
    assert client.get(url, params={"param": "nope"}).json()["steps"] == []


def test_overlay_puts_several_runs_on_the_same_bins(client: TestClient) -> None:
    plain = running_run(client, name="none")
    l1 = running_run(client, {"regularization": {"l1": 1e-4}}, name="l1")
    client.post(
        f"{API}/runs/{plain}/histograms",
        json={
            "histograms": [
                hist(5, -3.0, 3.0, [10, 20, 30, 40, 50, 60]),
                hist(9, -4.0, 4.0, [1] * 8),
            ]
        },
    )
    client.post(
        f"{API}/runs/{l1}/histograms", json={"histograms": [hist(5, -0.1, 0.1, [100, 110])]}
    )
    response = client.get(
        f"{API}/histograms/overlay",
        params={"runs": f"{plain},{l1}", "param": "fc1.weight", "step": 5, "bins": 12},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["edges"][0] == -3.0 and body["edges"][-1] == 3.0 and len(body["edges"]) == 13
    by_name = {r["name"]: r for r in body["runs"]}
    assert sum(by_name["none"]["counts"]) == pytest.approx(210)
    assert sum(by_name["l1"]["counts"]) == pytest.approx(210)
    # The L1 run's weights are all near zero: they fill the two middle bins only.
    assert by_name["l1"]["counts"][5] + by_name["l1"]["counts"][6] == pytest.approx(210)
    latest = client.get(
        f"{API}/histograms/overlay", params={"runs": f"{plain}", "param": "fc1.weight"}
    ).json()
    assert latest["runs"][0]["step"] == 9
    missing = client.get(
        f"{API}/histograms/overlay",
        params={"runs": f"{plain},{l1}", "param": "fc1.weight", "step": 9},
    )
    assert missing.status_code == 404 and "has no histogram" in missing.json()["detail"]


def test_compare_returns_series_and_a_summary_row_per_run(client: TestClient) -> None:
    def epochs(rid: int, val: list[float], train: list[float], acc: list[float]) -> None:
        points = []
        for e, (v, t, a) in enumerate(zip(val, train, acc, strict=True), start=1):
            points += [
                {"key": "val_loss", "step": e, "value": v},
                {"key": "train_loss", "step": e, "value": t},
                {"key": "gap", "step": e, "value": v - t},
                {"key": "val_accuracy", "step": e, "value": a},
            ]
        post_points(client, rid, points)

    plain = running_run(client, name="none")
    dropout = running_run(client, {"model": {"dropout": 0.5}}, name="dropout")
    epochs(plain, [0.9, 0.5, 0.6, 0.8], [0.8, 0.3, 0.1, 0.05], [0.7, 0.8, 0.82, 0.81])
    epochs(dropout, [1.0, 0.6, 0.45, 0.44], [1.0, 0.55, 0.4, 0.35], [0.6, 0.78, 0.84, 0.85])
    response = client.get(
        f"{API}/compare", params={"runs": f"{plain},{dropout}", "keys": "val_loss,train_loss"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["keys"] == ["val_loss", "train_loss"]
    rows = {r["run"]["name"]: r for r in body["runs"]}
    assert [r["run"]["id"] for r in body["runs"]] == [plain, dropout]
    assert rows["none"]["summary"] == {
        "best_epoch": 2,
        "min_val_loss": 0.5,
        "final_gap": pytest.approx(0.75),
        "final_val_accuracy": 0.81,
        "final_train_loss": 0.05,
        # From the diagnosis (issue 12): no early stop, so the last epoch was evaluated; a
        # two-epoch climb is shorter than the onset rule's patience.
        "evaluated_epoch": 4,
        "val_accuracy": 0.81,
        "onset_epoch": None,
        "verdict": "good fit",
    }
    assert rows["dropout"]["summary"]["best_epoch"] == 4
    assert rows["dropout"]["summary"]["final_gap"] == pytest.approx(0.09)
    assert [s["key"] for s in rows["none"]["series"]] == ["val_loss", "train_loss"]
    assert rows["none"]["series"][0]["steps"] == [1, 2, 3, 4]
    bad = client.get(f"{API}/compare", params={"runs": "1,x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "runs"


def test_healthz_reports_the_database(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok"


def test_healthz_says_when_the_database_is_unreachable(tmp_path: object) -> None:
    from api.core.config import Settings
    from api.main import create_app

    app = create_app(
        Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    )
    with TestClient(app) as local:
        response = local.get("/healthz")
    assert response.status_code == 503 and response.json()["database"] == "unreachable"


def test_each_read_is_validated_by_its_own_data(client: TestClient) -> None:
    """A heartbeat changes the run, not its curves; a point of one key changes that key's
    curves, not another's; only a histogram changes the histograms; a new attempt changes all
    (issue 15: pollers get their 304 while workers write)."""
    rid = running_run(client)
    post_points(client, rid, [{"key": k, "step": 1, "value": 1.0} for k in ("lr", "val_loss")])
    hist = {"param": "w", "step": 1, "edges": [0.0, 1.0], "counts": [3]}
    client.post(f"{API}/runs/{rid}/histograms?attempt=1", json={"histograms": [hist]})
    urls = {
        name: f"{API}/runs/{rid}{path}"
        for name, path in (
            ("lr", "/curves?keys=lr"),
            ("val_loss", "/curves?keys=val_loss"),
            ("all", "/curves"),
            ("run", ""),
            ("hist", "/histograms"),
            ("hist_w", "/histograms?param=w"),
        )
    }
    tags = {name: client.get(url).headers["etag"] for name, url in urls.items()}

    def changed() -> set[str]:
        found = set()
        for name, url in urls.items():
            answer = client.get(url, headers={"If-None-Match": tags[name]})
            if answer.status_code == 200:
                found.add(name)
                tags[name] = answer.headers["etag"]
            else:
                assert answer.status_code == 304
        return found

    beat = {"status": "heartbeat", "attempt": 1, "epoch": 1, "epochs": 5}
    assert client.post(f"{API}/runs/{rid}/status", json=beat).status_code == 200
    assert changed() == {"run"}
    post_points(client, rid, [{"key": "val_loss", "step": 2, "value": 0.5}])
    assert changed() == {"val_loss", "all", "run"}
    post_points(client, rid, [{"key": "val_loss", "step": 2, "value": 0.5}])  # a repeat
    assert changed() <= {"run"}
    hist2 = {**hist, "step": 2}
    client.post(f"{API}/runs/{rid}/histograms?attempt=1", json={"histograms": [hist2]})
    assert changed() == {"hist", "hist_w", "run"}
    client.post(f"{API}/runs/{rid}/cancel")
    client.post(f"{API}/runs/{rid}/retry")  # data cleared: every read changes
    assert changed() == set(urls)
