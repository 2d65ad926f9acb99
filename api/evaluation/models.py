"""The end-of-run evaluation: one JSON document per run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from api.core.db import BigId, attempt_data, utcnow


class Evaluation(SQLModel, table=True):
    __table_args__ = (attempt_data(),)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
