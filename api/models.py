"""Database tables (SQLModel). The schema itself is created by the Alembic migrations.

Non-finite metric values: NaN is stored as NULL (SQLite cannot store NaN at all; NULL also keeps
it out of MIN/MAX), +-Infinity are stored as they are (both databases support them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Float, Index, Integer, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# Ids, steps and counts are 64-bit on PostgreSQL (the API accepts up to 2**62 everywhere); on
# SQLite INTEGER is 64-bit already and only "INTEGER PRIMARY KEY" auto-increments.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=100, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=100, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    team_id: int = Field(sa_type=BigId, foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(
        sa_type=BigId, foreign_key="user.id", primary_key=True, ondelete="CASCADE", index=True
    )
    role: str = Field(max_length=10)  # owner, member, viewer


class ApiToken(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256. Either a user's, or a worker's for one run."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="user.id", ondelete="CASCADE"
    )
    run_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="run.id", ondelete="CASCADE"
    )
    name: str = Field(default="", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    # Minted for the user by a team owner (POST /users): the owner has seen it, so it cannot
    # accept an invitation, and accepting one revokes it (it must never reach another team).
    handed_over: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Invitation(SQLModel, table=True):
    """An owner's offer of a role in their team. Kept by user *name*, whether or not such a user
    exists, so inviting reveals nothing; only the user with that name can accept it."""

    __table_args__ = (UniqueConstraint("team_id", "user_name", name="uq_invitation_team_user"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    team_id: int = Field(sa_type=BigId, foreign_key="team.id", ondelete="CASCADE")
    user_name: str = Field(max_length=100, index=True)
    role: str = Field(max_length=10)
    invited_by_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="user.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Project(SQLModel, table=True):
    """A team's project. Names are unique within a team, so every team has its own "default"."""

    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_project_team_id_name"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    name: str = Field(max_length=200, index=True)
    team_id: int | None = Field(default=None, sa_type=BigId, foreign_key="team.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    project_id: int = Field(sa_type=BigId, foreign_key="project.id", index=True)
    created_by_id: int | None = Field(
        default=None, sa_type=BigId, foreign_key="user.id", index=True
    )
    name: str = Field(max_length=200, index=True)
    status: str = Field(max_length=20, index=True)  # queued/running/succeeded/failed/cancelled
    spec_json: str = Field(sa_column=Column(Text, nullable=False))
    spec_hash: str = Field(max_length=64, index=True)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Spec fields copied into columns so runs can be filtered on them with plain SQL.
    task: str = Field(max_length=20)
    dataset: str = Field(max_length=40, index=True)
    model_kind: str = Field(max_length=20)
    optimizer: str = Field(max_length=20)
    lr: float
    weight_decay: float
    dropout: float  # the larger of the hidden and input dropout rates
    l1: float
    l2: float
    lr_schedule: str = Field(max_length=40)
    early_stopping: bool
    epochs: int
    batch_size: int
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Lifecycle.
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker_host: str | None = Field(default=None, max_length=200)
    device: str | None = Field(default=None, max_length=200)
    progress_epoch: int = 0
    progress_total: int = 0
    failure_reason: str | None = Field(default=None, sa_column=Column(Text))
    attempt: int = 0
    # When the run was last handed to the queue; NULL: not yet (or the hand-over failed). The
    # database is the source of truth: a queued run whose hand-over is missing or old is sent
    # again by the API's reconciler.
    enqueued_at: datetime | None = None
    # Where and with what the current attempt runs (versions, device, driver), as JSON.
    environment_json: str | None = Field(default=None, sa_column=Column(Text))
    # The first epoch with a non-finite loss, if the run diverged.
    diverged_epoch: int | None = None
    # Bumped on every change to the run or its data: the basis of ETags for cheap polling.
    revision: int = Field(default=0, sa_type=BigId)


class RunTag(SQLModel, table=True):
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(max_length=100, primary_key=True, index=True)


class MetricPoint(SQLModel, table=True):
    __tablename__ = "metric_point"
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=100, primary_key=True)
    step: int = Field(sa_column=Column(BigInteger, primary_key=True))
    value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    wall_time: float


class MetricSeries(SQLModel, table=True):
    """One row per (run, key): totals that make summaries and decisions O(1)."""

    __tablename__ = "metric_series"
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=100, primary_key=True)
    count: int = Field(sa_type=BigId)
    first_step: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_step: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    min_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    min_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    max_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class MetricRollup(SQLModel, table=True):
    """Pre-aggregated min/max per bucket of 16^level steps, kept up to date on ingest.

    A curve read over a million points reads a few thousand of these rows instead.
    """

    __tablename__ = "metric_rollup"
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=100, primary_key=True)
    level: int = Field(primary_key=True)
    bucket: int = Field(sa_column=Column(BigInteger, primary_key=True))
    count: int
    min_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    min_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    max_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    first_step: int = Field(sa_column=Column(BigInteger, nullable=False))


class Histogram(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("run_id", "param", "step"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", index=True, ondelete="CASCADE")
    param: str = Field(max_length=200)
    step: int = Field(sa_type=BigId)
    edges_json: str = Field(sa_column=Column(Text, nullable=False))
    counts_json: str = Field(sa_column=Column(Text, nullable=False))
    numel: int = Field(sa_column=Column(BigInteger, nullable=False))
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    l1: float | None = None
    l2: float | None = None
    near_zero: float | None = None
    # Values the bins cannot hold: NaN, +Infinity, -Infinity (a diverged parameter).
    nan_count: int = Field(default=0, sa_type=BigId, sa_column_kwargs={"server_default": "0"})
    posinf_count: int = Field(default=0, sa_type=BigId, sa_column_kwargs={"server_default": "0"})
    neginf_count: int = Field(default=0, sa_type=BigId, sa_column_kwargs={"server_default": "0"})


class Evaluation(SQLModel, table=True):
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class RunEvent(SQLModel, table=True):
    """Things that happen to a run at a step: LR changes, status transitions."""

    __tablename__ = "run_event"
    __table_args__ = (Index("ix_run_event_run_kind", "run_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", ondelete="CASCADE")
    kind: str = Field(max_length=40)
    step: int | None = Field(default=None, sa_type=BigId)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
