"""Answers of polled reads kept by ETag (api.core.cache): bounded, rendered once per change."""

from __future__ import annotations

import asyncio
import threading
import time

from api.core.cache import AnswerCache, answer
from api.metrics.schemas import Curves, Series


def test_concurrent_misses_of_one_answer_render_it_once() -> None:
    cache = AnswerCache(1 << 20)
    calls = 0
    lock = threading.Lock()

    def produce() -> Curves:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.2)  # a slow read: every other poller arrives while it runs
        series = Series(
            key="loss", steps=[1, 2], values=[0.5, float("nan")], total_points=2, downsampled=False
        )
        return Curves(run_id=1, revision=3, series=[series])

    async def fifty_pollers() -> list[bytes]:
        answers = await asyncio.gather(*(answer(cache, 'W/"t1"', produce) for _ in range(50)))
        return [bytes(a.body) for a in answers]

    bodies = asyncio.run(fifty_pollers())
    assert calls == 1
    assert len(set(bodies)) == 1 and b'"values":[0.5,"NaN"]' in bodies[0]
    assert not cache.rendering  # nothing left waiting


def test_a_failed_render_is_not_kept_and_its_waiters_try_again() -> None:
    cache = AnswerCache(1 << 20)
    attempts: list[int] = []

    def produce() -> dict[str, int]:
        attempts.append(1)
        time.sleep(0.05)
        if len(attempts) == 1:
            raise LookupError("the database went away")
        return {"ok": 1}

    async def two() -> tuple[object, object]:
        return await asyncio.gather(
            answer(cache, "t", produce), answer(cache, "t", produce), return_exceptions=True
        )

    first, second = asyncio.run(two())
    assert isinstance(first, LookupError)
    assert getattr(second, "body", None) == b'{"ok":1}' and len(attempts) == 2
    assert cache.get("t") == b'{"ok":1}'


def test_the_cache_keeps_to_its_budget_least_recently_used_out_first() -> None:
    cache = AnswerCache(800)  # entries over 100 bytes are not kept at all
    for i in range(10):
        cache.put(f"t{i}", bytes(100))
    cache.get("t2")  # used: stays
    cache.put("t10", bytes(100))
    kept = [t for t in (f"t{i}" for i in range(11)) if cache.get(t) is not None]
    assert "t2" in kept and "t10" in kept and len(kept) == 8
    cache.put("big", bytes(101))
    assert cache.get("big") is None


def test_without_a_cache_every_read_is_rendered() -> None:
    response = asyncio.run(answer(None, "t", lambda: {"a": float("inf")}))
    assert response.body == b'{"a":"Infinity"}' and response.headers["etag"] == "t"
