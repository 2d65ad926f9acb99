"""What every ``fitlens`` command shares: the consoles, common options, and the client whose
errors become exit codes (fitlens.cli lists them)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from fitlens.client import Client
from fitlens.errors import FitlensError

out = Console()
err = Console(stderr=True)
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Watch = Annotated[bool, typer.Option("--watch", help="follow it until it ends")]
Team = Annotated[
    str | None,
    typer.Option("--team", envvar="FITLENS_TEAM", help="the team, when you are in several"),
]


@contextmanager
def api_client(team: str | None = None) -> Iterator[Client]:
    """A client from the environment or the login file; API errors become exit codes."""
    try:
        with Client(team=team) as client:
            yield client
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except FitlensError as exc:
        err.print(f"[red]error {exc.status}: {exc.message}[/red]")
        for e in exc.errors:
            err.print(f"  {e.get('field')}: {e.get('message')}")
        raise typer.Exit(3) from None
    except httpx.TransportError as exc:
        err.print(f"[red]cannot reach the server: {exc}[/red]")
        raise typer.Exit(4) from None


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, indent=2) + "\n")
