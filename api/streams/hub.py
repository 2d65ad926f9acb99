"""One watcher per API process for every stream it serves.

A single task asks the database, once per tick, for the revision of every run that any open
stream follows (one indexed query, however many readers). A run or study whose revision moved
has its news read once, by its feed, and handed to each of its readers; readers never query on
a tick of their own. Reads run in threads, so the event loop never waits on the database.

A reader that falls too far behind (its queue full) is ended; its client reconnects with
``Last-Event-ID`` and is caught up from the database, so nothing is lost. How many streams one
user may hold open in one process is bounded (429 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from api.core.errors import finite
from api.streams.cursor import Event
from api.streams.reads import Batch

log = logging.getLogger("fitlens.api")

READER_QUEUE = 2000  # events a reader may have waiting before it is ended (it resumes)


class Cursor(Protocol):
    def accept(self, event: Event) -> bool: ...
    def encode(self) -> str: ...
    def copy(self) -> Cursor: ...


@dataclass(eq=False)
class Reader:
    events: deque[Event] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lagging: bool = False
    gone: bool = False  # what it follows was deleted: the stream ends

    def close(self) -> None:
        self.gone = True
        self.wake.set()

    def push(self, batch: Sequence[Event]) -> None:
        if len(self.events) + len(batch) > READER_QUEUE:
            self.lagging = True
        else:
            self.events.extend(batch)
        self.wake.set()


@dataclass(eq=False)
class Feed:
    """News of one run or study, read once for all its readers in this process."""

    run_ids: list[int]
    cursor: Cursor
    read: Callable[[Any], Batch]  # reads what ``cursor`` has not seen
    readers: set[Reader] = field(default_factory=set)
    known: dict[int, int] = field(default_factory=dict)  # revisions at the last read
    dirty: bool = True  # read at the next tick whatever the revisions say
    single: bool = False  # a run's feed: it ends when the run is deleted


class Hub:
    def __init__(self, revisions: Callable[[Sequence[int]], dict[int, int]], interval: float):
        self._revisions = revisions
        self.interval = interval
        self.feeds: dict[str, Feed] = {}
        self.open: Counter[str] = Counter()
        # Made in the watcher's loop (an asyncio.Event belongs to the loop that first uses it);
        # None while no watcher runs (an app served without its lifespan).
        self._woken: asyncio.Event | None = None

    def _wake(self) -> None:
        if self._woken is not None:
            self._woken.set()

    # ---- the one watcher ----

    async def watch_forever(self) -> None:
        self._woken = woken = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), self.interval)
            woken.clear()
            try:
                await self.tick()
            except Exception:  # the database is away: ride it out, readers wait
                log.warning("stream watcher: could not read revisions", exc_info=True)

    async def tick(self) -> None:
        feeds = [f for f in self.feeds.values() if f.readers]
        if not feeds:
            return
        ids = sorted({i for f in feeds for i in f.run_ids})
        revisions = await asyncio.to_thread(self._revisions, ids)
        changed = []
        for feed in feeds:
            now = {i: revisions.get(i, -1) for i in feed.run_ids}
            if feed.single and now and -1 in now.values():  # the run was deleted
                for reader in feed.readers:
                    reader.close()
                continue
            if feed.dirty or now != feed.known:
                changed.append((feed, now))
        await asyncio.gather(*(self._refresh(feed, now) for feed, now in changed))

    async def _refresh(self, feed: Feed, revisions: dict[int, int]) -> None:
        batch = await asyncio.to_thread(feed.read, feed.cursor)
        feed.known, feed.dirty = revisions, batch.more
        news = [e for e in batch.events if feed.cursor.accept(e) and not e.quiet]
        if news:
            for reader in feed.readers:
                reader.push(news)
        if batch.more:
            self._wake()

    # ---- readers ----

    def acquire(self, limits: dict[str, int]) -> str | None:
        """A place for a new stream under every bound (e.g. its user's, its team's, the
        process's); None if granted, else the name of the bound that is full."""
        for owner, limit in limits.items():
            if self.open[owner] >= limit:
                return owner
        for owner in limits:
            self.open[owner] += 1
        return None

    def release(self, owners: Sequence[str]) -> None:
        for owner in owners:
            self.open[owner] -= 1
            if self.open[owner] <= 0:
                del self.open[owner]

    async def stream(
        self,
        key: str,
        make_feed: Callable[[], Feed],
        cursor: Cursor,
        catch_up: Callable[[Any], Batch],
        keepalive: float,
        allowed: Callable[[], bool] = lambda: True,
        recheck: float = 5.0,
    ) -> AsyncIterator[str]:
        """The text of one reader's stream: what ``cursor`` has not seen (from the database),
        then the feed's news, each event once, with a keep-alive comment when nothing happens.
        Ends after ``end``, when what it follows is deleted, or when ``allowed()`` (asked in a
        thread every ``recheck`` seconds: the token still works, the reader is still in the
        team) says no. ``make_feed`` (in a thread) makes the feed if none follows ``key``."""
        feed = self.feeds.get(key)
        if feed is None:
            made = await asyncio.to_thread(make_feed)
            feed = self.feeds.setdefault(key, made)
        reader = Reader()
        feed.readers.add(reader)  # first: news from now on is queued while we catch up
        try:
            yield "retry: 2000\n\n"
            more = True
            while more:
                batch = await asyncio.to_thread(catch_up, cursor)
                more = batch.more
                for event in batch.events:
                    if cursor.accept(event) and not event.quiet:
                        yield _frame(event, cursor)
                        if event.kind == "end":
                            return
            self._wake()  # the feed reads at once (it may be new)
            checked = sent = loop_time()
            while not reader.lagging and not reader.gone:
                wait = min(sent + keepalive, checked + recheck) - loop_time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.wake.wait(), max(0.0, wait))
                reader.wake.clear()
                if loop_time() - checked >= recheck:
                    if not await asyncio.to_thread(allowed):
                        return
                    checked = loop_time()
                if reader.gone:
                    return
                if not reader.events and not reader.lagging and loop_time() - sent >= keepalive:
                    yield ": keep-alive\n\n"
                    sent = loop_time()
                while reader.events:
                    event = reader.events.popleft()
                    if cursor.accept(event):
                        yield _frame(event, cursor)
                        sent = loop_time()
                        if event.kind == "end":
                            return
        finally:
            feed.readers.discard(reader)
            if not feed.readers and self.feeds.get(key) is feed:
                del self.feeds[key]


def loop_time() -> float:
    return asyncio.get_running_loop().time()


def _frame(event: Event, cursor: Cursor) -> str:
    data = json.dumps(finite(event.data), default=str, separators=(",", ":"), allow_nan=False)
    return f"id: {cursor.encode()}\nevent: {event.kind}\ndata: {data}\n\n"
