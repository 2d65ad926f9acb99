"""A run's checkpoints: one row per kept state_dict, written after its file is whole."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, attempt_data, utcnow


class RunCheckpoint(SQLModel, table=True):
    __tablename__ = "run_checkpoint"
    __table_args__ = (UniqueConstraint("run_id", "name"), {**attempt_data(), **NEVER_REUSED})
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=20)  # best or last
    epoch: int = Field(sa_type=BigId)
    why: str = Field(max_length=200)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(max_length=64)
    key: str = Field(max_length=300)  # in the artifact store, made from ids
    created_at: datetime = Field(default_factory=utcnow)
