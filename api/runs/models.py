"""A run's tables: the run (its spec, filterable columns and lifecycle), its tags and its
events (its diagnosis's table lives with api.diagnosis)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, utcnow

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
# What a run's curves say (api.diagnosis.rules tells how each is decided).
Verdict = Literal[
    "diverged",
    "unstable",
    "not learning",
    "overfitting",
    "still improving",
    "underfitting",
    "good fit",
]


class Run(SQLModel, table=True):
    __table_args__ = NEVER_REUSED
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
    # A study's member: the study, its configuration (index into the study's configs), its
    # replicate (the fold, or the seed's index) and the overrides applied to the study's spec.
    study_id: int | None = Field(default=None, sa_type=BigId, foreign_key="study.id", index=True)
    study_config: int | None = None
    study_replicate: int | None = None
    overrides_json: str | None = Field(default=None, sa_column=Column(Text))
    # Who trains it: "worker" (a job spec, trained by a fitlens worker) or "client" (the user's
    # own training loop logs it through the Python client: no spec, free-form params instead,
    # whose numbers named like spec columns (lr, epochs, dropout...) are copied into them).
    source: str = Field(
        default="worker", max_length=10, sa_column_kwargs={"server_default": "worker"}
    )
    params_json: str | None = Field(default=None, sa_column=Column(Text))
    # What the run may store at most (histograms, metrics, events), estimated from its spec at
    # submission: counted against its team's storage budget (api.runs.budget).
    storage_bytes: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # Bumped on every change to the run or its data: the basis of ETags for cheap polling.
    revision: int = Field(default=0, sa_type=BigId)


class RunTag(SQLModel, table=True):
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(max_length=100, primary_key=True, index=True)


class RunEvent(SQLModel, table=True):
    """Things that happen to a run at a step: LR changes, status transitions."""

    __tablename__ = "run_event"
    __table_args__ = (Index("ix_run_event_run_kind", "run_id", "kind"), NEVER_REUSED)
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", ondelete="CASCADE")
    kind: str = Field(max_length=40)
    step: int | None = Field(default=None, sa_type=BigId)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
