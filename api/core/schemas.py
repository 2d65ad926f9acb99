"""Shapes every domain shares: checked text and times, steps, ingest answers, error bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it everywhere so both databases agree.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


def _as_utc(value: datetime) -> datetime:
    # Stored times are UTC; a time without an offset is taken as UTC. Converting one near
    # year 1 or 9999 can leave the calendar: that is the caller's bad input, not a 500.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Step = Annotated[int, Field(ge=0, le=2**62)]


class In(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class IngestResult(BaseModel):
    accepted: int  # new items stored
    duplicates: int  # items already stored, or repeated in the batch: kept once
    revision: int


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: a message naming the problem, and for invalid input each field."""

    detail: str
    errors: list[ErrorItem] | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
    detail: str | None = None
