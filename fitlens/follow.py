"""Following a run or a study until it ends: its stream (resumed with Last-Event-ID if the
connection drops), else polling with ETags; optionally a rich progress bar on stderr."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from fitlens.errors import FitlensError

if TYPE_CHECKING:
    from fitlens.http import Http
    from fitlens.runs import Run, Study

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


def _bar(progress: bool) -> contextlib.AbstractContextManager[Any]:
    if not progress:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _stream(
    client: Http, path: str, deadline: float, poll: Callable[[], bool]
) -> Iterator[tuple[str, Any]]:
    """Events until ``end``; reconnects (resuming) when the connection drops or the server
    restarts; falls back to ``poll`` (True once finished) when no stream is to be had."""
    last_id: str | None = None
    while time.monotonic() < deadline:
        try:
            for event, data, event_id in client.events(path, last_id):
                last_id = event_id or last_id
                yield event, data
                if event == "end":
                    return
            if poll():  # closed without an end: ended (204), or a reader that lagged
                return
        except FitlensError as exc:
            if exc.status not in (429, 503):
                raise
            while not poll():  # too many streams open: ETag polling instead
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: still going") from None
                time.sleep(1.0)
            return
        except httpx.TransportError:  # the server blinked: try again, resuming
            time.sleep(1.0)
    raise TimeoutError(f"{path}: still going")


def follow_run(run: Run, progress: bool, timeout: float | None) -> None:
    deadline = time.monotonic() + timeout if timeout else float("inf")
    etag = ""

    def poll() -> bool:
        nonlocal etag
        response = run.client.http.get(f"/runs/{run.id}", headers={"If-None-Match": etag})
        if response.status_code == 200:
            run.data, etag = response.json(), response.headers.get("etag", "")
        return run.finished

    with _bar(progress) as bar:
        task = None
        if bar is not None:
            p = run.data["progress"]
            task = bar.add_task(
                f"run {run.id}", total=p["epochs"] or None, completed=p["epoch"], detail=run.status
            )
        latest: dict[str, Any] = {}
        for event, data in _stream(run.client, f"/runs/{run.id}/stream", deadline, poll):
            if bar is None or task is None:
                continue
            if event == "epoch":
                latest.update(data["metrics"])
                bar.update(task, completed=data["step"])
            elif event == "status":
                bar.update(task, total=data["epochs"] or None, completed=data["epoch"])
            elif event == "end":
                latest["status"] = data["status"]
            shown = [
                f"{k} {_fmt(latest[k])}"
                for k in ("train_loss", "val_loss", "gap", "status")
                if k in latest
            ]
            bar.update(task, detail="  ".join(shown))


def follow_study(study: Study, progress: bool, timeout: float | None) -> None:
    deadline = time.monotonic() + timeout if timeout else float("inf")

    def poll() -> bool:
        return study.refresh().done

    members: dict[int, str] = {}
    with _bar(progress) as bar:
        task = None
        if bar is not None:
            task = bar.add_task(f"study {study.id}", total=study.data["members"], detail="")
        for event, data in _stream(study.client, f"/studies/{study.id}/stream", deadline, poll):
            if event == "member":
                members[data["run_id"]] = data["status"]
            if bar is not None and task is not None:
                done = sum(s in FINISHED for s in members.values())
                counts: dict[str, int] = {}
                for s in members.values():
                    counts[s] = counts.get(s, 0) + 1
                detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                bar.update(task, completed=done, detail=detail)
