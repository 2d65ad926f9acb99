"""trainer/ is pure PyTorch: training pulls in no web, database or queue package."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "celery",
    "kombu",
    "redis",
    "httpx",
    "requests",
    "psycopg",
)


def test_training_imports_no_web_db_or_queue_package() -> None:
    code = (
        "import sys\n"
        "from trainer.__main__ import main\n"
        "from trainer.loop import train\n"
        "from trainer.spec import JobSpec\n"
        "train(JobSpec.model_validate({'epochs': 1, 'model': {'hidden': [8]}}))\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
