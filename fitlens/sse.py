"""Reading Server-Sent Events: one frame per event (or per comment line, e.g. a keep-alive)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Frame:
    id: str | None
    event: str
    data: Any
    comment: str | None = None  # a ": keep-alive" line, when the frame is only that


def frames(lines: Iterable[str]) -> Iterator[Frame]:
    """Frames from a stream's lines (a frame of only ``retry:`` is no event)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield Frame(
                    fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                )
            fields = {}
        elif line.startswith(":"):
            yield Frame(None, "", None, comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
