"""Request and response bodies of the API (pydantic)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from trainer.events import Evaluation as EvaluationBody
from trainer.spec import JobSpec

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


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
MetricKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_./:-]+$")]
Tag = Annotated[Text, Field(min_length=1, max_length=100, pattern=r"^[^,\s][^,]*$")]
Step = Annotated[int, Field(ge=0, le=2**62)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- jobs and runs ----


class JobCreate(_In):
    spec: JobSpec = Field(default_factory=JobSpec)
    project: Text = Field(default="", max_length=200, description="empty: the default project")
    team: Text | None = Field(
        default=None,
        max_length=100,
        description="team of a new project; needed only when you write to several teams",
    )
    name: Text | None = Field(default=None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    notes: Text = Field(default="", max_length=10_000)


class RunPatch(_In):
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    notes: Text | None = Field(default=None, max_length=10_000)


class Progress(BaseModel):
    epoch: int
    epochs: int


class RunLinks(BaseModel):
    self: str
    curves: str
    histograms: str
    evaluation: str
    events: str
    metrics_csv: str


class RunOut(BaseModel):
    id: int
    project: str
    name: str
    created_by: str | None  # who submitted it
    status: RunStatus
    spec: dict[str, Any]
    spec_hash: str
    tags: list[str]
    notes: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_host: str | None
    device: str | None
    progress: Progress
    failure_reason: str | None
    attempt: int
    revision: int
    # When the run was last handed to the queue (null: not yet; the API keeps trying).
    enqueued_at: datetime | None = None
    # Versions and hardware of the attempt: python, torch, fitlens, git commit, device, ...
    environment: dict[str, str] | None = None
    # The first epoch with a non-finite loss, when the run diverged.
    diverged_epoch: int | None = None
    links: RunLinks | None = None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


# ---- users, teams, tokens ----

Name = Annotated[Text, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]
Role = Literal["owner", "member", "viewer"]


class TeamRole(BaseModel):
    id: int
    name: str
    role: Role


class UserOut(BaseModel):
    id: int
    name: str
    teams: list[TeamRole]


class Member(BaseModel):
    user: str
    role: Role


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[Member]
    projects: list[str]
    # Pending invitations, by name: they grant nothing until the user accepts.
    invited: list[Member] = Field(default_factory=list)


class InvitationOut(BaseModel):
    team_id: int
    team: str
    role: Role
    invited_by: str | None
    created_at: datetime
    expires_at: datetime


class TeamCreate(_In):
    name: Name


class MemberSet(_In):
    user: Name
    role: Role = "member"


class UserCreate(_In):
    name: Name
    team_id: int = Field(ge=1, le=2**62, description="a team you own; the user joins it")
    role: Role = "member"


class TokenCreate(_In):
    """A new token for yourself: nobody mints tokens for another user."""

    name: Text = Field(default="", max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    # Minted by the team owner who created your account (POST /users): replace it with your own.
    handed_over: bool = False


class TokenCreated(BaseModel):
    token: str  # shown once; only its hash is stored
    info: TokenOut


class UserCreated(BaseModel):
    user: UserOut
    token: str  # the user's first token, shown once


# ---- worker side ----


MAX_REASON = 10_000


def _storable_reason(value: object) -> object:
    # How a run ended must always be recordable: NULs dropped, long reasons cut, never a 422
    # that would leave the run without its real cause.
    if isinstance(value, str):
        value = value.replace("\x00", "")
        if len(value) > MAX_REASON:
            value = value[: MAX_REASON - 1] + "…"
    return value


EnvironmentKey = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_.]+$")]


class StatusUpdate(_In):
    status: Literal["running", "heartbeat", "succeeded", "failed"]
    worker_host: Text | None = Field(default=None, max_length=200)
    device: Text | None = Field(default=None, max_length=200)
    epoch: int | None = Field(default=None, ge=0, le=1_000_000)
    epochs: int | None = Field(default=None, ge=0, le=1_000_000)
    reason: Annotated[Text | None, BeforeValidator(_storable_reason)] = Field(
        default=None, max_length=MAX_REASON
    )
    # With "running": what the attempt runs on (python, torch, fitlens, git_commit, device...).
    environment: dict[EnvironmentKey, Annotated[Text, Field(max_length=200)]] | None = Field(
        default=None, max_length=32
    )
    # The attempt a worker got from its "running" post; later posts name it (stale ones: 409).
    attempt: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _reason_for_failure(self) -> StatusUpdate:
        if self.status == "failed" and not self.reason:
            raise ValueError("reason: a failed run needs a reason")
        return self


class StatusOut(BaseModel):
    id: int
    status: RunStatus
    attempt: int
    revision: int


class MetricPointIn(_In):
    key: MetricKey
    step: Step
    # Any float, NaN and +-Infinity included (as JSON numbers or the strings "NaN",
    # "Infinity", "-Infinity").
    value: float
    wall_time: float | None = Field(default=None, description="unix seconds; default: now")

    @field_validator("wall_time")
    @classmethod
    def _finite_time(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("wall_time must be a finite number")
        return v


class MetricBatch(_In):
    points: list[MetricPointIn]


# The ingest hot path validates with TypedDicts straight from the JSON bytes: the same rules as
# MetricBatch (which documents the body in OpenAPI), about 7x faster than building models.
@with_config(ConfigDict(extra="forbid"))
class MetricPointDict(TypedDict):
    key: MetricKey
    step: Step
    value: float
    wall_time: NotRequired[Annotated[float, Field(allow_inf_nan=False)] | None]


@with_config(ConfigDict(extra="forbid"))
class MetricBatchDict(TypedDict):
    points: list[MetricPointDict]


METRIC_BATCH = TypeAdapter(MetricBatchDict)


class IngestResult(BaseModel):
    accepted: int  # new points stored
    duplicates: int  # (key, step) pairs already stored, or repeated in the batch: kept once
    revision: int


class HistogramIn(_In):
    param: Text = Field(min_length=1, max_length=200)
    step: Step
    edges: list[float] = Field(min_length=2, max_length=4097)
    counts: list[float] = Field(min_length=1, max_length=4096)
    numel: int | None = Field(default=None, ge=0, le=2**62)
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    l1: float | None = None
    l2: float | None = None
    near_zero: float | None = None
    # Values no bin can hold (a diverged parameter): counted apart from the bins.
    nan_count: int = Field(default=0, ge=0, le=2**62)
    posinf_count: int = Field(default=0, ge=0, le=2**62)
    neginf_count: int = Field(default=0, ge=0, le=2**62)

    @model_validator(mode="after")
    def _check_bins(self) -> HistogramIn:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError("edges: need exactly one more edge than counts")
        if not all(math.isfinite(e) for e in self.edges):
            raise ValueError("edges: must be finite numbers")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges: must be strictly increasing")
        if any(not math.isfinite(c) or c < 0 or c > 2**53 for c in self.counts):
            raise ValueError("counts: must be finite, non-negative and at most 2**53")
        if sum(self.counts) > 2**62:
            raise ValueError("counts: must add up to at most 2**62 (the numel a run can have)")
        return self


class HistogramBatch(_In):
    histograms: list[HistogramIn] = Field(max_length=1000)


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    # A free-form payload is stored as JSON and served back: keep it shallow enough to read.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise ValueError(f"nested more than {MAX_PAYLOAD_DEPTH} levels deep")
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return value


MAX_PAYLOAD_DEPTH = 16


class EventIn(_In):
    # lr_change: payload old_lr, new_lr, reason; diverged: the first epoch with a non-finite
    # loss (payload: the reason), which also marks the run (RunOut.diverged_epoch).
    kind: Literal["lr_change", "diverged"]
    step: Step
    payload: Annotated[dict[str, Any], AfterValidator(_shallow)] = Field(default_factory=dict)


class EventBatch(_In):
    events: list[EventIn] = Field(max_length=1000)


class EventOut(BaseModel):
    kind: str
    step: int | None
    payload: dict[str, Any]
    created_at: datetime


# ---- read side ----


class Series(BaseModel):
    key: str
    steps: list[int]
    values: list[float]
    total_points: int  # points stored for this key (whole run)
    downsampled: bool


class Curves(BaseModel):
    run_id: int
    revision: int
    series: list[Series]


class HistogramStep(BaseModel):
    step: int
    edges: list[float]
    counts: list[float]
    numel: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    l1: float | None
    l2: float | None
    near_zero: float | None
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0


class HistogramSeries(BaseModel):
    run_id: int
    param: str
    # True when every step was re-binned onto the same edges (a heat-map over steps).
    shared_edges: bool
    steps: list[HistogramStep]


class HistogramIndex(BaseModel):
    run_id: int
    params: dict[str, list[int]]  # param -> steps that have a histogram


class OverlayRun(BaseModel):
    run_id: int
    name: str
    step: int
    counts: list[float]
    numel: int


class HistogramOverlay(BaseModel):
    param: str
    edges: list[float]
    runs: list[OverlayRun]


class RunSummary(BaseModel):
    best_epoch: int | None  # step of the lowest val_loss
    min_val_loss: float | None
    final_gap: float | None
    final_val_accuracy: float | None
    final_train_loss: float | None


class CompareRun(BaseModel):
    run: RunOut
    summary: RunSummary
    series: list[Series]


class Comparison(BaseModel):
    keys: list[str]
    runs: list[CompareRun]


class EvaluationOut(BaseModel):
    run_id: int
    evaluation: EvaluationBody


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
