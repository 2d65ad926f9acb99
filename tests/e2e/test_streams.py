"""Streams of real runs trained by a real worker, served by a real uvicorn: the event sequence,
resuming with Last-Event-ID (nothing lost or repeated), keep-alives, the per-user bound (429),
isolation (404), and a study's stream."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stack import launch
from tests.e2e.conftest import Worker
from tests.e2e.sse import Frame, read_stream
from tests.waits import wait_for

MAX_STREAMS = 3


@pytest.fixture(scope="module")
def pipeline_env(pipeline_env: dict[str, str]) -> Iterator[dict[str, str]]:
    yield {
        **pipeline_env,
        "FITLENS_STREAM_KEEPALIVE": "1",
        "FITLENS_MAX_STREAMS_PER_USER": str(MAX_STREAMS),
    }


def _log(frames: list[Frame]) -> dict[str, list[tuple[Any, ...]]]:
    """What every reader must see exactly once, each kind in order: the data and the run's
    events (status and diagnosis are states: a reader sees the latest, not every intermediate;
    how kinds interleave depends on when the database was read)."""
    out: list[tuple[Any, ...]] = []
    for f in frames:
        if f.event == "epoch":
            out.append(("epoch", f.data["step"], tuple(sorted(f.data["metrics"]))))
        elif f.event == "histograms":
            out.append(("histograms", f.data["step"], tuple(f.data["params"])))
        elif f.event == "event":
            out.append(("event", f.data["kind"], f.data["step"], f.data["created_at"]))
        elif f.event in ("evaluation", "end"):
            out.append((f.event,))
    return {kind: [t for t in out if t[0] == kind] for kind in {t[0] for t in out}}


class Background(threading.Thread):
    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # re-raised in the test
            self.error = exc

    def value(self) -> Any:
        self.join(timeout=240)
        assert not self.is_alive(), "the stream did not end"
        if self.error is not None:
            raise self.error
        return self.result


def test_a_real_run_streams_every_event_once_across_a_reconnect(
    api: httpx.Client, pipeline_env: dict[str, str], start_worker: Callable[[str], Worker]
) -> None:
    spec = {"epochs": 6, "lr_schedule": {"kind": "step", "step_size": 2, "gamma": 0.5}}
    run_id = api.post("/jobs", json={"spec": spec, "name": "streamed"}).json()["id"]
    path = f"/runs/{run_id}/stream"
    whole = Background(lambda: read_stream(api, path))
    whole.start()

    def interrupted() -> tuple[list[Frame], list[Frame]]:
        first, _ = read_stream(api, path, limit=4)  # then the client goes away...
        rest, _ = read_stream(api, path, last_id=first[-1].id)  # ...and comes back
        return first, rest

    resumed = Background(interrupted)
    resumed.start()
    # Nobody trains it yet: the streams are quiet, but for their keep-alive comments.
    threading.Event().wait(2.5)
    start_worker("w-streams")

    events, comments = whole.value()
    first, rest = resumed.value()
    assert "keep-alive" in comments
    kinds = [e.event for e in events]
    assert kinds[0] == "status" and events[0].data["status"] == "queued"
    assert kinds[-1] == "end" and events[-1].data["status"] == "succeeded"
    assert [e.data["status"] for e in events if e.event == "status"][-1] == "succeeded"
    steps = [e.data["step"] for e in events if e.event == "epoch"]
    assert steps == list(range(1, 7))
    metrics = next(e.data["metrics"] for e in events if e.event == "epoch")
    assert {"train_loss", "val_loss", "val_accuracy", "lr", "gap"} <= set(metrics)
    assert [e.data["step"] for e in events if e.event == "histograms"] == list(range(1, 7))
    lr_cuts = [e.data for e in events if e.event == "event" and e.data["kind"] == "lr_change"]
    assert len(lr_cuts) >= 2
    assert kinds.count("evaluation") == 1 and kinds.index("evaluation") > kinds.index("epoch")
    diagnoses = [e.data for e in events if e.event == "diagnosis"]
    assert diagnoses and diagnoses[-1]["epochs"] == 6
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids) and all(ids)

    # The reconnecting reader lost nothing and got nothing twice.
    assert _log(first + rest) == _log(events)
    assert len(first) == 4 and rest[-1].event == "end"
    # Once the end was seen, reconnecting answers 204: an EventSource stops there.
    again = api.get(path, headers={"Last-Event-ID": rest[-1].id or ""})
    assert again.status_code == 204
    # A new reader of a finished run gets its state and the end at once.
    late, _ = read_stream(api, path)
    assert late[0].event == "status" and late[-1].event == "end"
    assert api.get(path, headers={"Last-Event-ID": "r1.not-a-cursor"}).status_code == 422


def test_streams_are_bounded_per_user_and_isolated(
    api: httpx.Client, pipeline_env: dict[str, str]
) -> None:
    run_id = api.post("/jobs", json={"spec": {"epochs": 1}, "name": "queued"}).json()["id"]
    path = f"/runs/{run_id}/stream"
    outsider = launch.user_token(pipeline_env, "streams-outsider", "streams-other-team")
    with httpx.Client(
        base_url=str(api.base_url), headers={"Authorization": f"Bearer {outsider}"}, timeout=30
    ) as other:
        assert other.get(path).status_code == 404
        assert other.get("/runs/99999999/stream").status_code == 404
        held = []
        try:
            for _ in range(MAX_STREAMS):
                response = api.send(api.build_request("GET", path), stream=True)
                assert response.status_code == 200
                held.append(response)
            refused = api.get(path)
            assert refused.status_code == 429 and refused.headers["Retry-After"]
            assert "streams open" in refused.json()["detail"]
            # Another user's bound is their own.
            mine = other.send(other.build_request("GET", "/me"))
            assert mine.status_code == 200
        finally:
            for response in held:
                response.close()

    # Closed streams give their places back.
    def reopened() -> bool:
        with api.stream("GET", path) as response:
            return response.status_code == 200

    wait_for(reopened, 10, "a place to come back")
    api.post(f"/runs/{run_id}/cancel")


def test_a_study_streams_its_members_until_all_are_done(
    api: httpx.Client, start_worker: Callable[[str], Worker]
) -> None:
    body = {"spec": {"epochs": 2}, "name": "streamed-study", "design": {"seeds": [1, 2]}}
    study = api.post("/studies", json=body).json()
    start_worker("w-study-stream")
    events, _ = read_stream(api, f"/studies/{study['id']}/stream")
    members = {e.data["run_id"] for e in events if e.event == "member"}
    listed = api.get("/runs", params={"study": study["id"]}).json()["items"]
    assert members == {r["id"] for r in listed} and len(members) == 2
    last = {e.data["run_id"]: e.data for e in events if e.event == "member"}
    assert all(m["status"] == "succeeded" and m["epoch"] == 2 for m in last.values())
    assert events[-1].event == "end" and events[-1].data["members"] == {"succeeded": 2}
    again = api.get(
        f"/studies/{study['id']}/stream", headers={"Last-Event-ID": events[-1].id or ""}
    )
    assert again.status_code == 204
