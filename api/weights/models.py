"""Weight snapshots: one weight tensor of a run at one epoch, its values packed."""

from __future__ import annotations

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, attempt_data


class WeightSnapshot(SQLModel, table=True):
    __tablename__ = "weight_snapshot"
    __table_args__ = (
        UniqueConstraint("run_id", "param", "epoch"),
        {**attempt_data(), **NEVER_REUSED},
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", index=True, ondelete="CASCADE")
    param: str = Field(max_length=200)
    epoch: int = Field(sa_type=BigId)
    shape_json: str = Field(max_length=100)  # of the values kept
    full_shape_json: str = Field(max_length=100)  # the tensor's own
    dtype: str = Field(max_length=10)  # float32 or float16, little-endian, row-major
    why_json: str = Field(max_length=100)
    method: str = Field(max_length=300)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
