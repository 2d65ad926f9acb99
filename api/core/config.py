"""API settings, from environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FITLENS_", extra="ignore")

    # SQLite file by default; e.g. postgresql+psycopg://user@host:5432/db for PostgreSQL.
    # DATABASE_URL (no prefix) is honoured too, as most platforms set it.
    database_url: str = Field(
        default="sqlite:///./fitlens.db",
        validation_alias="DATABASE_URL",
    )
    api_prefix: str = "/api/v1"
    # Most points one POST /runs/{id}/metrics may carry (413 beyond).
    max_metric_batch: int = Field(default=10_000, gt=0)
    # Largest request body accepted, in bytes (413 beyond), checked before parsing.
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    default_project: str = "default"
    # Which enqueuer POST /jobs uses: "none" stores the run as queued and nothing more.
    queue: str = "none"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
