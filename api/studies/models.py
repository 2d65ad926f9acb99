"""A study's table: many runs asked one question. Its members are ordinary runs that name it
(``run.study_id``, with their configuration, replicate and overrides: api.runs.models)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from api.core.db import NEVER_REUSED, BigId, utcnow


class Study(SQLModel, table=True):
    __table_args__ = NEVER_REUSED
    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    project_id: int = Field(sa_type=BigId, foreign_key="project.id", index=True)
    created_by_id: int | None = Field(default=None, sa_type=BigId, foreign_key="user.id")
    name: str = Field(max_length=200)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # The base spec as submitted (before any override) and the design: sweep or overrides,
    # seeds, folds, learning-curve sizes, baseline (api.studies.design.Design as JSON).
    spec_json: str = Field(sa_column=Column(Text, nullable=False))
    design_json: str = Field(sa_column=Column(Text, nullable=False))
    # Each configuration's overrides (dotted path -> value), in order: index = run.study_config.
    configs_json: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # Bumped when the study itself changes (cancel, retry); with its members' revisions, the
    # basis of its ETags.
    revision: int = Field(default=0, sa_type=BigId)
