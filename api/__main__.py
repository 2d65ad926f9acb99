"""``python -m api``: migrate the database to head, then serve with uvicorn.

``python -m api admin create-user NAME [--team TEAM] [--role owner]`` creates a user (and the
team, if new) and prints the user's first token: how the first user gets in.
``python -m api admin token NAME`` prints a new token for an existing user (a lost token).
Both print the token alone on stdout, so scripts can capture it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from api.core.config import get_settings
from api.core.db import run_migrations


def serve(argv: list[str]) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-migrate", action="store_true", help="skip alembic upgrade head")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("FITLENS_API_WORKERS", "1")),
        help="server processes (default 1, or FITLENS_API_WORKERS); the reconciler runs in "
        "whichever holds its lease in the database",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    # fitlens's own log lines (the reaper, deliveries) at INFO; uvicorn's access log stays off.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.no_migrate:
        run_migrations(settings.database_url)
    queue = settings.queue if settings.queue != "celery" else f"celery ({settings.broker_url})"
    print(
        f"fitlens API on http://{args.host}:{args.port}{settings.api_prefix} "
        f"(OpenAPI: http://{args.host}:{args.port}/openapi.json; "
        f"database {_safe(settings.database_url)}; "
        f"queue {queue})",
        file=sys.stderr,
        flush=True,
    )
    from api.core.server import DeadlineHttpTools

    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level="warning",
        workers=max(1, args.workers),
        # Open streams would hold a shutdown forever; their readers resume elsewhere.
        timeout_graceful_shutdown=3,
        # Slow and idle connections are closed (api.core.server); connections beyond the
        # bound are answered 503 at once.
        http=DeadlineHttpTools,
        timeout_keep_alive=settings.keepalive_timeout,
        limit_concurrency=settings.max_connections,
    )


def _safe(url: str) -> str:
    """A database URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def admin(argv: list[str]) -> int:
    from api.core.db import make_engine
    from api.core.exceptions import Conflict, NotFound
    from api.people.service import PeopleStore

    parser = argparse.ArgumentParser(prog="python -m api admin")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="create a user and print their first token")
    create.add_argument("name")
    create.add_argument("--team", help="add the user to this team (created if new)")
    create.add_argument("--role", choices=["owner", "member", "viewer"], default="owner")
    create.add_argument("--expires-days", type=float, default=None)
    mint = sub.add_parser("token", help="print a new token for an existing user")
    mint.add_argument("name")
    mint.add_argument("--label", default="minted by admin", help="the token's name")
    mint.add_argument("--expires-days", type=float, default=None)
    args = parser.parse_args(argv)

    settings = get_settings()
    run_migrations(settings.database_url)
    people = PeopleStore(make_engine(settings.database_url))
    if args.command == "token":
        try:
            secret = people.admin_mint(args.name, args.label, args.expires_days)
        except NotFound as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"new token for {args.name} (shown once, keep it safe):", file=sys.stderr)
        print(secret)
        return 0
    try:
        user, token = people.create_user(args.name, args.team, args.role, args.expires_days)
    except Conflict as exc:
        print(exc, file=sys.stderr)
        return 1
    teams = ", ".join(f"{t.name} ({t.role})" for t in user.teams) or "no team"
    print(
        f"created user {user.name} in {teams}; their token (shown once, keep it safe):",
        file=sys.stderr,
    )
    print(token)  # alone on stdout, so scripts can capture it
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["admin"]:
        return admin(argv[1:])
    serve(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
