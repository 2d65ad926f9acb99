"""What an MLflow run holds that a fitlens run has no column for: its tags, which are
key-value pairs (a fitlens run's tags are labels). ``mlflow.runName`` and
``mlflow.note.content`` are the run's name and notes, kept in the run's own columns."""

from __future__ import annotations

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from api.core.db import BigId


class MlflowTag(SQLModel, table=True):
    __tablename__ = "mlflow_tag"
    run_id: int = Field(sa_type=BigId, foreign_key="run.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=250, primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
