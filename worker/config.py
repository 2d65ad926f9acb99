"""Worker settings, from environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FITLENS_", extra="ignore")

    # The API, the worker's only door (it never touches the database).
    api_url: str = "http://127.0.0.1:8000"
    api_prefix: str = "/api/v1"
    # Same broker as the API's enqueuer: Redis in deployments, a shared folder by default.
    broker_url: str = Field(
        default="filesystem://", validation_alias=AliasChoices("FITLENS_BROKER_URL", "REDIS_URL")
    )
    broker_dir: str = ".fitlens/broker"
    # Seconds between heartbeats at most: the API's answer (a third of its
    # FITLENS_HEARTBEAT_TIMEOUT) wins when it asks for more often.
    heartbeat_interval: float = Field(default=10.0, gt=0)
    # HTTP: how long a post is retried while the API is unreachable (restarting, its database
    # away) before the worker gives the run up; the first back-off, doubling up to 10 s.
    # Meanwhile training goes on and its epochs wait, in order, in a buffer of this many posts.
    retry_for: float = Field(default=900.0, ge=0)
    http_backoff: float = Field(default=0.5, gt=0)
    http_timeout: float = Field(default=30.0, gt=0)
    outbox_size: int = Field(default=1000, ge=1)
    # The code's git commit, recorded with each run; found with git when not set (containers).
    git_commit: str | None = None
    # Hard limit for one training job; the broker's visibility timeout is set longer still.
    task_time_limit: int = Field(default=6 * 3600, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> WorkerSettings:
    return WorkerSettings()
