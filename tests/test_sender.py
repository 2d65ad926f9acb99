"""The one sender a worker and your own loop report through (fitlens.sender), against a
scripted API on httpx's transport: what it posts, in which order, and what it does when the
API is away, refuses a post, or says the run is gone. (The real API and real workers: the
e2e tests, faults included.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fitlens.errors import FitlensError
from fitlens.sender import BATCH, RunSender, json_safe, send
from tests.waits import wait_for

Answer = Callable[[httpx.Request], int]


class ScriptedApi:
    """Records every request; answers each with the status ``answer`` gives (200 by default)."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer or (lambda _: 200)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        with self._lock:
            self.requests.append((request.method, request.url.path, dict(request.url.params), body))
        status = self.answer(request)
        return httpx.Response(status, json={"detail": f"scripted {status}"})

    def posts(self, path_end: str) -> list[Any]:
        with self._lock:
            return [b for m, p, _, b in self.requests if p.endswith(path_end) and m != "GET"]


def sender(api: ScriptedApi, heartbeat_every: float = 3600.0, **kwargs: Any) -> RunSender:
    http = httpx.Client(base_url="http://api/api/v1", transport=httpx.MockTransport(api))
    return RunSender(http, 7, 2, lambda: {"epoch": 5, "epochs": 9}, heartbeat_every, **kwargs)


def test_posts_go_in_the_order_logged_with_points_batched() -> None:
    api = ScriptedApi()
    s = sender(api, flush_every=60)
    s.log_points([("loss", 1, 0.5, 10.0), ("acc", 1, float("nan"), 10.0)])
    s.log_points([("loss", 2, float("inf"), 11.0)])
    s.post("histograms", {"histograms": [{"param": "w", "step": 2}]})
    s.log_points([("loss", i, 1.0, 12.0) for i in range(3, 3 + BATCH + 5)])
    s.close()
    paths = [p.rsplit("/", 1)[-1] for _, p, _, _ in api.requests]
    assert paths == ["metrics", "histograms", "metrics", "metrics"]
    # Points go as one series a key (columns), each key's in the order logged.
    first = {s["key"]: s for s in api.requests[0][3]["series"]}
    assert first["loss"]["steps"] == [1, 2] and first["loss"]["values"] == [0.5, "Infinity"]
    assert first["acc"]["values"] == ["NaN"] and first["loss"]["wall_times"] == [10.0, 11.0]
    sizes = [sum(len(s["steps"]) for s in b["series"]) for b in api.posts("/metrics")]
    assert sizes == [3, BATCH, 5]
    assert all(params == {"attempt": "2"} for _, _, params, _ in api.requests)


def test_a_busy_or_unreachable_api_is_retried_until_it_answers() -> None:
    answers = iter([503, 429, 200])
    api = ScriptedApi(lambda _: next(answers))
    s = sender(api, backoff=0.01)
    s.post("events", {"events": [{"kind": "lr_change", "step": 1, "payload": {}}]})
    s.close()
    assert len(api.posts("/events")) == 3
    assert s.error is None and not s.unsent


def test_a_run_that_is_gone_stops_the_sending_and_counts_the_rest() -> None:
    api = ScriptedApi(lambda r: 409 if r.url.path.endswith("/histograms") else 200)
    s = sender(api, flush_every=60)
    s.post("histograms", {"histograms": []})
    s.log_points([("loss", 1, 0.5, 1.0)])
    s.post("evaluation", {"epoch": 1})
    s.close()
    assert s.gone.is_set()
    assert s.error is not None and s.error.status == 409
    assert api.posts("/metrics") == [] and api.posts("/evaluation") == []
    assert s.unsent == {"histograms": 1, "points": 1, "evaluation": 1}


def test_a_refused_post_is_kept_and_the_next_ones_still_go() -> None:
    api = ScriptedApi(lambda r: 422 if r.url.path.endswith("/evaluation") else 200)
    s = sender(api)
    s.post("evaluation", {"epoch": 1})
    s.post("params", {"params": {"lr": 0.1}})
    assert s.flush(timeout=30)
    s.close()
    assert s.error is not None and s.error.status == 422 and not s.gone.is_set()
    assert s.unsent == {"evaluation": 1}
    patched = [r for r in api.requests if r[0] == "PATCH"]
    assert patched == [("PATCH", "/api/v1/runs/7", {}, {"params": {"lr": 0.1}})]


def test_the_sender_outlives_an_unexpected_failure() -> None:
    calls = []

    def answer(request: httpx.Request) -> int:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise RuntimeError("a bug in a proxy")
        return 200

    api = ScriptedApi(answer)
    s = sender(api)
    s.post("events", {"events": []})
    s.post("evaluation", {"epoch": 1})
    s.close()
    assert "RuntimeError" in str(s.error)
    assert calls[-1].endswith("/evaluation") and s.unsent == {"events": 1}


def test_heartbeats_carry_the_progress_and_learn_that_the_run_is_gone() -> None:
    beats: list[Any] = []

    def answer(request: httpx.Request) -> int:
        beats.append(json.loads(request.content))
        return 409 if len(beats) >= 3 else 200

    s = sender(ScriptedApi(answer), heartbeat_every=0.05)
    wait_for(s.gone.is_set, 30, "the third heartbeat's 409")
    s.close()
    assert beats[0] == {"status": "heartbeat", "attempt": 2, "epoch": 5, "epochs": 9}
    assert len(beats) == 3  # none after the run was gone


def test_send_raises_the_apis_refusal_and_gives_up_when_time_is_up() -> None:
    http = httpx.Client(
        base_url="http://api", transport=httpx.MockTransport(ScriptedApi(lambda _: 503))
    )
    with pytest.raises(FitlensError) as away:
        send(http, "POST", "/x", {"a": 1}, retry_for=0.05, backoff=0.01)
    assert away.value.status == 0 and "503" in str(away.value)
    http = httpx.Client(
        base_url="http://api", transport=httpx.MockTransport(ScriptedApi(lambda _: 404))
    )
    with pytest.raises(FitlensError) as refused:
        send(http, "GET", "/x", retry_for=60)
    assert refused.value.status == 404


def test_non_finite_numbers_travel_as_the_apis_strings() -> None:
    body = {"a": [1.0, float("-inf"), {"b": float("nan")}], "c": (2, float("inf")), "d": "NaN"}
    assert json_safe(body) == {
        "a": [1.0, "-Infinity", {"b": "NaN"}],
        "c": [2, "Infinity"],
        "d": "NaN",
    }
