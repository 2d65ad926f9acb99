"""Per-layer weight histograms, one row per (run, parameter, step)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, attempt_data


class Histogram(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("run_id", "param", "step"),
        {**attempt_data(), **NEVER_REUSED},
    )
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
