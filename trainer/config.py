"""Trainer settings, from environment variables (FITLENS_DATA_DIR, ...)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FITLENS_", extra="ignore")

    # Root of the torchvision data sets (MNIST/, FashionMNIST/, cifar-10-batches-py/).
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "fitlens" / "data")
    # Batch size for the no-grad passes (validation, train re-scoring, evaluation).
    eval_batch_size: int = Field(default=8192, gt=0)
    # CPU threads one run may use (None: torch's default, every core). Workers sharing a
    # machine should share its cores: two workers with every core each made a study run twice
    # as slowly as one worker (bench.study), their threads spinning against each other.
    torch_threads: int | None = Field(default=None, ge=1, le=1024)


@lru_cache(maxsize=1)
def get_settings() -> TrainerSettings:
    return TrainerSettings()
