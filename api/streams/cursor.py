"""Where a stream's reader is: the SSE event id, and the test that keeps events exactly-once.

Every event carries a *mark* (what it is the news of) and its id is the reader's whole cursor
after it, so ``Last-Event-ID`` alone says what a reconnecting reader has. A cursor accepts an
event only if the event is news to it, so events read twice (the shared feed's and a
reconnecting reader's own catch-up overlap on purpose, so that nothing falls between them)
are sent once, and none is skipped:

- ``epoch`` (step, points at that step) and ``histograms`` (step, parameters at that step):
  newer if later in that order (a step that gains points later is sent again, whole);
- ``event`` (a run event's id): newer if larger;
- ``status`` and ``diagnosis`` (the run's revision when read, a digest of the value): newer
  if read at the same or a later revision and different;
- ``evaluation``, ``end``: once;
- a study's ``member`` (member index, the member's revision): newer if the revision is larger.

Data belong to an attempt: an event of a later attempt starts that attempt's data afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from api.core.exceptions import Invalid


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]
    mark: tuple[int, ...] = ()
    attempt: int = 0
    digest: str = ""
    quiet: bool = False  # moves the cursor, is not sent (a new reader's starting place)


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


def _bad(text: str) -> Invalid:
    return Invalid("Last-Event-ID", f"not an id this stream sent ({text[:40]!r})")


@dataclass
class RunCursor:
    attempt: int = 0
    step: int = -1
    step_points: int = 0
    hist_step: int = -1
    hist_params: int = 0
    event_id: int = 0
    status_rev: int = -1
    status: str = ""
    diagnosis_rev: int = -1
    diagnosis: str = ""
    evaluated: int = 0
    ended: int = 0

    def encode(self) -> str:
        return "r1." + ".".join(str(getattr(self, f.name)) for f in fields(self))

    @classmethod
    def decode(cls, text: str) -> RunCursor:
        parts = text.split(".")
        names = [f.name for f in fields(cls)]
        if parts[0] != "r1" or len(parts) != len(names) + 1:
            raise _bad(text)
        values: dict[str, Any] = {}
        for name, part in zip(names, parts[1:], strict=True):
            if name in ("status", "diagnosis"):
                if len(part) > 8 or (part and not part.isalnum()):
                    raise _bad(text)
                values[name] = part
            else:
                try:
                    values[name] = int(part)
                except ValueError:
                    raise _bad(text) from None
                if abs(values[name]) > 2**62:
                    raise _bad(text)
        return cls(**values)

    def accept(self, event: Event) -> bool:
        """True (and the cursor moves past it) if ``event`` is news to this reader."""
        if event.attempt < self.attempt and event.kind not in ("event", "end"):
            return False
        if event.attempt > self.attempt:
            # A new attempt: its data start afresh; run events and status carry over.
            fresh = RunCursor(attempt=event.attempt, event_id=self.event_id)
            fresh.status_rev, fresh.status = self.status_rev, self.status
            self.__dict__.update(fresh.__dict__)
        kind, mark = event.kind, event.mark
        if kind == "epoch" and mark > (self.step, self.step_points):
            self.step, self.step_points = mark
        elif kind == "histograms" and mark > (self.hist_step, self.hist_params):
            self.hist_step, self.hist_params = mark
        elif kind == "event" and mark[0] > self.event_id:
            self.event_id = mark[0]
        elif kind == "status" and mark[0] >= self.status_rev and event.digest != self.status:
            self.status_rev, self.status = mark[0], event.digest
        elif (
            kind == "diagnosis"
            and mark[0] >= self.diagnosis_rev
            and (event.digest != self.diagnosis)
        ):
            self.diagnosis_rev, self.diagnosis = mark[0], event.digest
        elif kind == "evaluation" and not self.evaluated:
            self.evaluated = 1
        elif kind == "end" and not self.ended:
            self.ended = 1
        else:
            return False
        return True

    def copy(self) -> RunCursor:
        return replace(self)


@dataclass
class StudyCursor:
    """One revision per member (in the order of their run ids), and whether ``end`` was sent."""

    revisions: list[int] = field(default_factory=list)
    ended: int = 0

    def encode(self) -> str:
        return f"s1.{self.ended}." + ".".join(str(r) for r in self.revisions)

    @classmethod
    def decode(cls, text: str, members: int) -> StudyCursor:
        parts = text.split(".")
        if len(parts) != members + 2 or parts[0] != "s1":
            raise _bad(text)
        try:
            numbers = [int(p) for p in parts[1:]]
        except ValueError:
            raise _bad(text) from None
        if any(n < -1 or n > 2**62 for n in numbers):
            raise _bad(text)
        return cls(revisions=numbers[1:], ended=numbers[0])

    def accept(self, event: Event) -> bool:
        if event.kind == "member":
            index, revision = event.mark
            if revision > self.revisions[index]:
                self.revisions[index] = revision
                self.ended = 0  # a member changed after the end: a retry; the end comes again
                return True
            return False
        if event.kind == "end" and not self.ended:
            self.ended = 1
            return True
        return False

    def copy(self) -> StudyCursor:
        return StudyCursor(list(self.revisions), self.ended)
