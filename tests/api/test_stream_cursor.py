"""The cursor a stream's event ids carry: what a reader has seen, and the test that keeps each
event exactly-once when the shared feed and a reader's own catch-up overlap."""

from __future__ import annotations

import pytest

from api.core.exceptions import Invalid
from api.streams.cursor import Event, RunCursor, StudyCursor


def test_a_run_cursor_survives_its_id_and_refuses_forgeries() -> None:
    cursor = RunCursor()
    for event in (
        Event("status", {}, (3,), 1, "aa11"),
        Event("epoch", {}, (4, 7), 1),
        Event("histograms", {}, (4, 2), 1),
        Event("event", {}, (12,), 1),
        Event("diagnosis", {}, (5,), 1, "bb22"),
        Event("evaluation", {}, (), 1),
    ):
        assert cursor.accept(event)
    assert RunCursor.decode(cursor.encode()) == cursor
    for forged in ("", "r1", "r2." + cursor.encode()[3:], cursor.encode() + ".1", "r1.x.1"):
        with pytest.raises(Invalid) as caught:
            RunCursor.decode(forged)
        assert caught.value.field == "Last-Event-ID"


def test_each_event_is_news_once_in_any_overlap() -> None:
    cursor = RunCursor(attempt=1)
    assert cursor.accept(Event("epoch", {}, (1, 5), 1))
    assert not cursor.accept(Event("epoch", {}, (1, 5), 1))  # the same step again
    assert cursor.accept(Event("epoch", {}, (1, 6), 1))  # it gained a point: sent whole
    assert not cursor.accept(Event("epoch", {}, (1, 5), 1))  # an older read of it
    assert cursor.accept(Event("event", {}, (9,), 1))
    assert not cursor.accept(Event("event", {}, (8,), 1))
    assert cursor.accept(Event("status", {}, (10,), 1, "run"))
    assert not cursor.accept(Event("status", {}, (9,), 1, "que"))  # read before: stale
    assert not cursor.accept(Event("status", {}, (11,), 1, "run"))  # nothing changed
    assert cursor.accept(Event("end", {}, (), 1)) and not cursor.accept(Event("end", {}, (), 1))


def test_a_new_attempt_starts_its_data_afresh() -> None:
    cursor = RunCursor(attempt=1, step=30, step_points=6, event_id=40, evaluated=1, ended=1)
    assert not cursor.accept(Event("epoch", {}, (31, 6), 0))  # an older attempt's
    assert cursor.accept(Event("epoch", {}, (1, 6), 2))  # the retry's first epoch
    assert (cursor.attempt, cursor.step, cursor.event_id, cursor.ended) == (2, 1, 40, 0)
    assert cursor.accept(Event("evaluation", {}, (), 2))


def test_a_study_cursor_follows_each_member() -> None:
    cursor = StudyCursor([-1, -1])
    assert cursor.accept(Event("member", {}, (0, 3)))
    assert not cursor.accept(Event("member", {}, (0, 3)))
    assert cursor.accept(Event("member", {}, (1, 2)))
    assert cursor.accept(Event("end", {}))
    assert cursor.accept(Event("member", {}, (1, 5)))  # a retried member: the end comes again
    assert cursor.accept(Event("end", {}))
    assert StudyCursor.decode(cursor.encode(), 2) == cursor
    with pytest.raises(Invalid):
        StudyCursor.decode(cursor.encode(), 3)  # not this study's
