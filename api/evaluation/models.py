"""A run's evaluations: one JSON document per split and epoch. The final ones (of the weights
the run keeps) carry ROC and precision-recall curves and weight heat-maps; those made while
training carry each class's loss and counts (api: GET /runs/{id}/per_class)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from api.core.db import BigId, attempt_data, utcnow

SPLITS = ("train", "val", "test")


class Evaluation(SQLModel, table=True):
    __tablename__ = "run_evaluation"
    __table_args__ = (attempt_data(),)
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    split: str = Field(max_length=5, primary_key=True)
    epoch: int = Field(primary_key=True)
    final: bool = Field(default=False)
    payload_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
