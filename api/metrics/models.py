"""Metric points, packed in blocks per series, and each series' summary, kept up to date as
points arrive.

Non-finite values: in a block's packed values, as they are (float64 bits); in the summary
columns, NaN is NULL (SQLite cannot store NaN at all; NULL also keeps it out of MIN/MAX) and
+-Infinity are stored as they are (both databases support them).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, LargeBinary
from sqlmodel import Field, SQLModel

from api.core.db import BigId, attempt_data

# A key ending so counts its steps in batches, not epochs (fitlens's trainer logs
# "train_loss_batch"): reads that join keys by epoch (streams, the diagnosis) leave it out.
PER_BATCH_SUFFIX = "_batch"


def per_batch(key: str) -> bool:
    return key.endswith(PER_BATCH_SUFFIX)


class MetricBlock(SQLModel, table=True):
    """Up to api.metrics.blocks.BLOCK_POINTS points of one series, packed (how:
    api.metrics.blocks). Its summary columns come first: a read that only needs them (a
    downsampled curve over many blocks) never touches the packed arrays."""

    __tablename__ = "metric_block"
    __table_args__ = (attempt_data(),)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=100, primary_key=True)
    first_step: int = Field(sa_column=Column(BigInteger, primary_key=True))
    last_step: int = Field(sa_column=Column(BigInteger, nullable=False))
    count: int
    min_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    min_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    max_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    steps_packed: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    values_packed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wall_times_packed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


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
    last_wall_time: float = Field(sa_column=Column(Float, nullable=False))
