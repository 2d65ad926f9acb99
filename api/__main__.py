"""``python -m api``: migrate the database to head, then serve with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from api.core.config import get_settings
from api.db import run_migrations


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-migrate", action="store_true", help="skip alembic upgrade head")
    args = parser.parse_args()
    if not args.no_migrate:
        run_migrations(get_settings().database_url)
    uvicorn.run(
        "api.main:create_app", factory=True, host=args.host, port=args.port, log_level="warning"
    )


if __name__ == "__main__":
    main()
