"""Points in blocks (api.metrics.blocks): whatever order, repeats and gaps points come in, every
read answers what a plain step -> value map of the first value posted per step would; special
floats come back bit for bit; steps go up to 2**63 - 1."""

from __future__ import annotations

import itertools
import json
import math
import random
import struct
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.metrics.blocks import BLOCK_POINTS, MAX_STEP, Block, pack, place, unpack
from tests.api.conftest import API, start, submit

SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, -1e308, 0.0]


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def as_json(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def from_json(value: Any) -> float:
    return float(value) if isinstance(value, str) else value


def test_the_codec_keeps_every_bit() -> None:
    values = SPECIAL * 100
    assert [bits(v) for v in unpack("d", pack("d", values))] == [bits(v) for v in values]
    # A repeated array packs small (zlib); a noisy one stays raw, and both come back whole.
    assert len(pack("d", [1_700_000_000.5] * 1024)) < 200
    rng = random.Random(1)
    noisy = [rng.random() for _ in range(1024)]
    assert pack("d", noisy)[0] == 0 and unpack("d", pack("d", noisy)) == noisy
    steps = [0, 1, 2**40, MAX_STEP - 1, MAX_STEP]
    block = Block(steps, [1.0] * 5, [2.0] * 5)
    row = block.row()
    assert row[:3] == (0, MAX_STEP, 5)
    assert row[7] is not None  # not dense: the gaps are packed
    assert Block(list(range(10, 20)), [0.0] * 10, [0.0] * 10).row()[7] is None  # dense


def test_a_point_goes_to_the_block_holding_its_step_or_the_one_before() -> None:
    blocks = [(10, 19), (30, 39)]
    assert place([5, 12, 25, 31, 50], blocks) == [(10, 0, 3), (30, 3, 5)]
    assert place([1, 2], []) == [(None, 0, 2)]


def stored_blocks(client: TestClient, run_id: int) -> list[tuple[str, int, int, int]]:
    with client.app.state.store.engine.connect() as conn:  # type: ignore[attr-defined]
        found = conn.execute(
            text(
                "SELECT key, first_step, last_step, count FROM metric_block WHERE run_id = :r "
                "ORDER BY key, first_step"
            ),
            {"r": run_id},
        )
        return [tuple(r) for r in found]


def post(client: TestClient, run_id: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(f"{API}/runs/{run_id}/metrics", json={"points": points})
    assert response.status_code == 200, response.text
    return dict(response.json())


def full_read(client: TestClient, run_id: int, key: str, page: int) -> dict[int, float]:
    got: dict[int, float] = {}
    start_at: int | None = 0
    while start_at is not None:
        params = {"keys": key, "downsample": "false", "max_points": page, "start": start_at}
        series = client.get(f"{API}/runs/{run_id}/curves", params=params).json()["series"][0]
        got.update(zip(series["steps"], map(from_json, series["values"]), strict=True))
        start_at = series["next_start"]
    return got


@pytest.mark.parametrize("seed", [0, 7])
def test_any_order_of_posts_reads_back_as_the_first_value_of_each_step(
    client: TestClient, seed: int
) -> None:
    rng = random.Random(seed)
    run_id = submit(client)["id"]
    start(client, run_id)
    expected: dict[int, float] = {}
    steps = [s for s in range(4 * BLOCK_POINTS) if rng.random() > 0.1]  # gaps
    rng.shuffle(steps)
    accepted = 0
    for i in range(0, len(steps), 700):
        chunk = steps[i : i + 700]
        chunk += rng.sample(steps[: i + 1], min(50, i + 1))  # repeats, some already stored
        points = []
        for s in chunk:
            value = SPECIAL[s % 8] if s % 5 == 0 else rng.uniform(-1, 1)
            points.append({"key": "loss", "step": s, "value": as_json(value)})
        new = {p["step"]: from_json(p["value"]) for p in reversed(points)}  # the first wins
        new = {s: v for s, v in new.items() if s not in expected}
        answer = post(client, run_id, points)
        assert answer["accepted"] == len(new)
        accepted += answer["accepted"]
        expected.update(new)
    assert accepted == len(steps)
    got = full_read(client, run_id, "loss", page=333)
    assert sorted(got) == sorted(expected)
    assert all(bits(got[s]) == bits(expected[s]) for s in expected)
    blocks = stored_blocks(client, run_id)
    assert sum(b[3] for b in blocks) == len(expected)
    assert all(b[3] <= BLOCK_POINTS for b in blocks)
    assert all(a[2] < b[1] for a, b in itertools.pairwise(blocks))  # no overlap
    lines = client.get(f"{API}/runs/{run_id}/metrics.jsonl").text.splitlines()
    exported = {p["step"]: from_json(p["value"]) for p in map(json.loads, lines)}
    assert all(bits(exported[s]) == bits(expected[s]) for s in expected)
    assert len(lines) == len(expected)


def test_a_downsampled_read_keeps_each_bucket_s_own_extremes(client: TestClient) -> None:
    rng = random.Random(3)
    run_id = submit(client)["id"]
    start(client, run_id)
    values = {s: rng.gauss(0, 1) for s in range(0, 30_000, 3)}
    values[12_345] = 50.0  # a spike between two stored steps' rhythm
    values[20_001] = math.nan
    points = [{"key": "x", "step": s, "value": as_json(v)} for s, v in values.items()]
    for i in range(0, len(points), 5_000):
        post(client, run_id, points[i : i + 5_000])
    lo, hi, max_points = 1_000, 25_000, 200
    params = {"keys": "x", "max_points": max_points, "start": lo, "end": hi}
    series = client.get(f"{API}/runs/{run_id}/curves", params=params).json()["series"][0]
    assert series["downsampled"]
    width = -(-(hi - lo + 1) // (max_points // 2))
    expected: set[int] = set()
    for b in range(max_points // 2):
        inside = [
            (v, s)
            for s, v in values.items()
            if lo + b * width <= s < lo + (b + 1) * width and s <= hi and not math.isnan(v)
        ]
        if inside:
            expected |= {min(inside)[1], max(inside)[1]}
    assert set(series["steps"]) == expected
    assert 12_345 in series["steps"]
    got = dict(zip(series["steps"], series["values"], strict=True))
    assert all(got[s] == values[s] for s in expected)


def test_each_bucket_keeps_its_first_extremes_among_ties_and_nan() -> None:
    """The bucketing by hand: per bucket, its first minimum and first maximum by step (NaN is
    neither; a bucket of NaN only shows its first step as NaN), with ties, infinities and
    -0.0 common."""
    import numpy as np

    from api.metrics.downsample import bucket_extremes

    rng = random.Random(5)
    for _ in range(200):
        steps = sorted(rng.sample(range(3_000), rng.randrange(1, 600)))
        values = [rng.choice([*SPECIAL, 1.0, 1.0]) for _ in steps]
        lo = rng.randrange(0, steps[0] + 1)
        n_buckets = rng.choice([1, 2, 7, 50, 400])
        width = -(-(steps[-1] - lo + 1) // n_buckets)
        expected: dict[int, float] = {}
        for b in range(n_buckets):
            held = [(s, v) for s, v in zip(steps, values, strict=True) if b == (s - lo) // width]
            real = [(s, v) for s, v in held if not math.isnan(v)]
            if held and not real:
                expected[held[0][0]] = math.nan
            for best in (min, max) if real else ():
                value = best(v for _, v in real)
                expected |= [(s, v) for s, v in real if v == value][:1]
        got = bucket_extremes(np.array(steps), np.array(values), lo, width, n_buckets)
        assert got[0] == sorted(expected)
        assert [bits(v) for v in got[1]] == [bits(expected[s]) for s in got[0]]


def test_steps_up_to_the_largest_int64(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    steps = [0, 2**62, MAX_STEP - 1, MAX_STEP]
    post(client, run_id, [{"key": "far", "step": s, "value": s / 3} for s in steps])
    curves = client.get(f"{API}/runs/{run_id}/curves").json()["series"][0]
    assert curves["steps"] == steps
    zoom = client.get(
        f"{API}/runs/{run_id}/curves", params={"start": MAX_STEP - 1, "end": MAX_STEP}
    ).json()["series"][0]
    assert zoom["steps"] == [MAX_STEP - 1, MAX_STEP]
    assert full_read(client, run_id, "far", page=2) == {s: s / 3 for s in steps}
    # One bucket over every step (2**63 of them: wider than int64) keeps its min and max:
    # (MAX_STEP - 1) / 3 and MAX_STEP / 3 are one float64, and the first of ties is kept.
    one_bucket = client.get(f"{API}/runs/{run_id}/curves", params={"max_points": 2})
    assert one_bucket.status_code == 200
    assert one_bucket.json()["series"][0]["steps"] == [0, MAX_STEP - 1]
    too_far = [{"key": "far", "step": MAX_STEP + 1, "value": 1.0}]
    refused = client.post(f"{API}/runs/{run_id}/metrics", json={"points": too_far})
    assert refused.status_code == 422 and "points.0.step" in refused.text


def test_appends_fill_blocks_and_leave_full_ones_alone(client: TestClient) -> None:
    run_id = submit(client)["id"]
    start(client, run_id)
    for step in range(BLOCK_POINTS + 5):  # an epoch log: one point a post
        post(client, run_id, [{"key": "acc", "step": step, "value": step / 10}])
    assert stored_blocks(client, run_id) == [
        ("acc", 0, BLOCK_POINTS - 1, BLOCK_POINTS),
        ("acc", BLOCK_POINTS, BLOCK_POINTS + 4, 5),
    ]
    post(client, run_id, [{"key": "acc", "step": s, "value": 0.0} for s in range(0, 2000, 7)])
    assert full_read(client, run_id, "acc", page=10_000)[7] == 0.7  # a repeat changed nothing


def test_writers_posting_to_one_run_at_once_lose_no_point(client: TestClient) -> None:
    """The run's lock serialises ingestion: a writer reads the blocks it extends only once it
    holds the lock (on PostgreSQL in the same round trip as taking it), so writers racing on
    the same keys, appending and filling each other's gaps, store every point once."""
    run_id = submit(client)["id"]
    start(client, run_id)
    store = client.app.state.store.metrics  # type: ignore[attr-defined]
    writers, posts, per_post = 4, 12, 40

    def write(writer: int) -> int:
        accepted = 0
        for n in range(posts):
            steps = range(n * per_post * writers + writer, (n + 1) * per_post * writers, writers)
            points = [{"key": key, "step": s, "value": s / 7} for s in steps for key in "ab"]
            accepted += store.add_metrics(run_id, points).accepted
            accepted += store.add_metrics(run_id, points[:5]).accepted  # a retry: nothing
        return accepted

    with ThreadPoolExecutor(writers) as pool:
        accepted = sum(pool.map(write, range(writers)))
    total = writers * posts * per_post
    assert accepted == 2 * total
    for key in "ab":
        got = full_read(client, run_id, key, page=10_000)
        assert sorted(got) == list(range(total)) and all(got[s] == s / 7 for s in got)
    series = client.get(f"{API}/runs/{run_id}/curves", params={"max_points": 2}).json()["series"]
    assert sorted((s["key"], s["total_points"]) for s in series) == [("a", total), ("b", total)]
