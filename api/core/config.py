"""API settings, from environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
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
    # Which enqueuer POST /jobs uses: "celery" sends runs to the workers' broker (by default
    # the on-disk one the demo's and the README's workers use, so a job submitted before any
    # worker starts runs once one does); "none" stores them as queued and nothing more.
    queue: str = "celery"
    # Broker for the "celery" queue: Redis in deployments (e.g. redis://host:6379/0); the
    # default is a folder on disk, so one machine needs no server (see broker_dir).
    broker_url: str = Field(
        default="filesystem://", validation_alias=AliasChoices("FITLENS_BROKER_URL", "REDIS_URL")
    )
    broker_dir: str = ".fitlens/broker"
    # Where runs with device "auto" go: "cpu" or "gpu".
    auto_queue: str = "cpu"
    # A running run whose worker has not sent a heartbeat for this long is requeued (while it
    # has attempts left) or failed; the check runs every reaper_interval seconds (0: never).
    heartbeat_timeout: float = Field(default=120.0, gt=0)
    reaper_interval: float = Field(default=10.0, ge=0)
    max_attempts: int = Field(default=2, ge=1)
    # A queued run handed to the queue this long ago and not started by any worker is handed
    # over again (its message was lost, e.g. Redis restarted without persistence). Duplicates
    # are harmless; keep it above how long runs wait for a free worker, to send few of them.
    redeliver_after: float = Field(default=600.0, gt=0)
    # What one job may ask a worker to hold (JobSpec.resources), checked when it is submitted:
    # model parameters, data set elements, and activation elements (a training batch's layer
    # outputs, or a validation pass's widest layer). 4 bytes each as float32.
    max_model_parameters: int = Field(default=50_000_000, gt=0)
    max_data_elements: int = Field(default=300_000_000, gt=0)
    max_activation_elements: int = Field(default=1_000_000_000, gt=0)
    # What runs may store, estimated from the spec at submission (api.runs.budget): one run,
    # and a team's runs together (deleting runs frees it), in MiB. 422 beyond.
    max_run_storage_mb: int = Field(default=512, gt=0)
    max_team_storage_mb: int = Field(default=20_480, gt=0)
    # Metric keys one run may have (422 beyond): reading all of a run's curves stays cheap.
    max_metric_keys: int = Field(default=1_000, gt=0, le=100_000)
    # Members one study may have (configurations x sizes x folds x seeds).
    max_study_members: int = Field(default=500, gt=0, le=100_000)
    # Streams (SSE): how often one watcher per process looks for news of the runs streamed
    # (seconds), how often a quiet stream sends a keep-alive comment, how often an open stream
    # re-checks that its reader still may read it (token, session, membership), and how many
    # streams one user, one team (whose data they show) and the process may hold open at once
    # (429 beyond).
    stream_interval: float = Field(default=0.5, gt=0, le=60)
    stream_keepalive: float = Field(default=5.0, gt=0, le=300)
    stream_recheck: float = Field(default=5.0, gt=0, le=60)
    max_streams_per_user: int = Field(default=8, gt=0, le=10_000)
    max_streams_per_team: int = Field(default=32, gt=0, le=100_000)
    max_streams: int = Field(default=1000, gt=0, le=1_000_000)
    # The browser's sign-in (POST /session): how long its cookie lasts, and whether the cookie
    # is marked Secure (None: when the request came over https).
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    session_cookie_secure: bool | None = None
    # Slow and idle connections (api.core.server): a request's head must arrive within
    # header_timeout seconds of the connection opening or of the previous answer, each chunk
    # of its body within body_timeout (408); an idle keep-alive connection closes after
    # keepalive_timeout; at most max_connections at once per process (503 beyond).
    header_timeout: float = Field(default=10.0, gt=0, le=600)
    body_timeout: float = Field(default=30.0, gt=0, le=3600)
    keepalive_timeout: int = Field(default=5, gt=0, le=600)
    max_connections: int = Field(default=2000, gt=0, le=1_000_000)
    # FastAPI's /docs and /redoc pages (their scripts come from a CDN): off by default.
    api_docs: bool = False
    # Answers of polled reads kept by ETag (api.core.cache), per process, in MiB; 0: none.
    answer_cache_mb: int = Field(default=64, ge=0, le=65_536)
    # Webhooks (api.webhooks): whether a URL may resolve to a private, loopback or link-local
    # address (no: the server's own network is not for anyone who registers a URL); each
    # try's time limit (connect to answer, seconds); tries before a delivery fails, the wait
    # before the second (doubling, at most an hour); how often the sender looks for due ones
    # (0: never, deliveries wait); webhooks one team may have.
    webhook_allow_private: bool = False
    webhook_timeout: float = Field(default=5.0, gt=0, le=60)
    webhook_max_tries: int = Field(default=6, ge=1, le=50)
    webhook_backoff: float = Field(default=10.0, gt=0, le=3600)
    webhook_interval: float = Field(default=1.0, ge=0, le=3600)
    max_webhooks_per_team: int = Field(default=20, ge=1, le=1000)
    # Checkpoints (api.checkpoints): where they are kept: a folder ("" means .fitlens/
    # artifacts beside the database's working directory) or s3://bucket/prefix on an
    # S3-compatible server (s3_endpoint_url for one that is not AWS; credentials and region
    # from the usual AWS_* variables); and how much one run and one team's runs may keep, in
    # MiB (413 beyond). One checkpoint also fits in max_body_bytes.
    artifacts: str = ""
    s3_endpoint_url: str | None = None
    max_run_checkpoint_mb: int = Field(default=256, gt=0)
    max_team_checkpoint_mb: int = Field(default=4096, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
