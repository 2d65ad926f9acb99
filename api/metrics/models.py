"""Metric points and the summaries kept up to date as they arrive (per series, per rollup bucket).

Non-finite metric values: NaN is stored as NULL (SQLite cannot store NaN at all; NULL also keeps
it out of MIN/MAX), +-Infinity are stored as they are (both databases support them).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float
from sqlmodel import Field, SQLModel

from api.core.db import BigId, attempt_data

# A key ending so counts its steps in batches, not epochs (fitlens's trainer logs
# "train_loss_batch"): reads that join keys by epoch (streams, the diagnosis) leave it out.
PER_BATCH_SUFFIX = "_batch"


def per_batch(key: str) -> bool:
    return key.endswith(PER_BATCH_SUFFIX)


class MetricPoint(SQLModel, table=True):
    __tablename__ = "metric_point"
    __table_args__ = (attempt_data(),)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=100, primary_key=True)
    step: int = Field(sa_column=Column(BigInteger, primary_key=True))
    value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    wall_time: float


class MetricSeries(SQLModel, table=True):
    """One row per (run, key): totals that make summaries and decisions O(1)."""

    __tablename__ = "metric_series"
    __table_args__ = (attempt_data(),)
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
    __table_args__ = (attempt_data(),)
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
