"""``fitlens``: the command line (typer, rich).

Exit codes: 0 done (a watched run or study succeeded); 1 a watched run or study failed or was
cancelled; 2 bad usage; 3 the API refused (its message is printed); 4 the server cannot be
reached. Every read takes ``--json`` for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from fitlens.cli_base import Json, Team, Watch, api_client, err, out, print_json
from fitlens.cli_import import import_app
from fitlens.client import Client
from fitlens.config import ClientSettings, config_path, save
from fitlens.errors import FitlensError

app = typer.Typer(help="fitlens: train, follow and compare PyTorch runs.", no_args_is_help=True)
study_app = typer.Typer(help="Studies: many runs, one question.", no_args_is_help=True)
app.add_typer(study_app, name="study")
app.add_typer(import_app, name="import")
NAME_WIDTH = 24  # a run's name folds over lines beyond this, in tables


def _table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    """A table that fits the terminal: columns (in the order given: the first matter most)
    that do not fit are left out, and said so on stderr; a long name folds over lines. No
    value is ever cut short."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    shown: list[int] = []
    used = 1  # the table's left edge
    for i, c in enumerate(columns):
        width = max([len(c), *(len(r[i]) for r in cells)])
        if c == "name":
            width = min(width, NAME_WIDTH)  # folds beyond
        if used + width + 3 > out.width and shown:  # padding and a border each
            continue
        shown.append(i)
        used += width + 3
    table = Table(title=title)
    for i in shown:
        c = columns[i]
        table.add_column(
            c,
            justify="right" if c not in ("name", "status", "verdict") else "left",
            overflow="fold",
            no_wrap=c != "name",
            min_width=min(NAME_WIDTH, len(c)) if c == "name" else None,
        )
    for r in cells:
        table.add_row(*[r[i] for i in shown])
    out.print(table)
    hidden = [columns[i] for i in range(len(columns)) if i not in shown]
    if hidden:
        err.print(f"({', '.join(hidden)} left out to fit {out.width} columns; --json has all)")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _ended(status: str) -> None:
    if status != "succeeded":
        err.print(f"[red]{status}[/red]")
        raise typer.Exit(1)


@app.command()
def login(
    url: str,
    token: Annotated[str | None, typer.Option(help="else asked for (not echoed)")] = None,
) -> None:
    """Check a token against the server and keep both in your config file (mode 0600)."""
    token = token or typer.prompt("token", hide_input=True)
    try:
        with Client(url, token) as client:
            me = client.me()
    except FitlensError as exc:
        err.print(f"[red]login failed: {exc.message}[/red]")
        raise typer.Exit(3) from None
    except httpx.TransportError as exc:
        err.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(4) from None
    path = config_path(ClientSettings())
    save(path, url.rstrip("/"), token)
    out.print(f"signed in to {url} as {me['name']}; saved in {path}")


@app.command()
def submit(
    spec: Path,
    project: Annotated[str, typer.Option()] = "",
    tag: Annotated[list[str] | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    team: Team = None,
    watch: Watch = False,
    as_json: Json = False,
) -> None:
    """Submit a job spec (a JSON file) to train on the workers."""
    with api_client(team) as client:
        run = client.submit(json.loads(spec.read_text()), project, tag or [], name)
        if not as_json:
            out.print(f"run {run.id} ({run.name}) {run.status}: {client.url}/#/runs/{run.id}")
        if watch:
            run.wait(progress=not as_json)
        if as_json:
            print_json(run.data)
        if watch:
            _ended(run.status)


@study_app.command("submit")
def study_submit(
    study: Path, team: Team = None, watch: Watch = False, as_json: Json = False
) -> None:
    """Submit a study (spec and design, a JSON file)."""
    with api_client(team) as client:
        s = client.submit_study(json.loads(study.read_text()))
        if not as_json:
            out.print(f"study {s.id}: {s.data['members']} runs: {client.url}/#/studies/{s.id}")
        if watch:
            s.wait(progress=not as_json)
        if as_json:
            print_json(s.data)
        if watch:
            statuses = s.data["status"]
            _ended("succeeded" if set(statuses) == {"succeeded"} else "failed")


RUN_COLUMNS = [
    "id",
    "name",
    "status",
    "epoch",
    "epochs",
    "verdict",
    "min_val_loss",
    "best_epoch",
    "onset_epoch",
    "final_gap",
    "val_accuracy",
]


@app.command()
def runs(
    where: Annotated[str | None, typer.Option(help="e.g. dropout>0,lr<0.01")] = None,
    status: Annotated[list[str] | None, typer.Option()] = None,
    sort: Annotated[str | None, typer.Option(help="e.g. -min_val_loss")] = None,
    project: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: Json = False,
) -> None:
    """Your teams' runs, filtered and sorted as the API does."""
    with api_client() as client:
        found = client.list_runs(limit, where=where, status=status, sort=sort, project=project)
        rows = [r.summary() for r in found]
        if as_json:
            print_json(rows)
        else:
            _table(rows, RUN_COLUMNS)


@app.command()
def show(run_id: int, as_json: Json = False) -> None:
    """A run: its summary, its diagnosis and its last epochs."""
    with api_client() as client:
        run = client.run(run_id)
        tail = run.curves().tail(5)  # per-epoch keys: a per-batch curve counts batches
        if as_json:
            print_json({"run": run.data, "last_epochs": json.loads(tail.to_json(orient="index"))})
            return
        out.print(
            f"[bold]run {run.id}[/bold] {run.name}: {run.status} "
            f"(epoch {run.data['progress']['epoch']}/{run.data['progress']['epochs']})"
        )
        d = run.diagnosis
        if d:
            out.print(f"{d['verdict']}: {d['why']}")
        if run.data.get("failure_reason"):
            out.print(f"[red]{run.data['failure_reason']}[/red]")
        rows = [{"step": int(step), **row} for step, row in tail.to_dict(orient="index").items()]
        _table(rows, ["step", *tail.columns], title="last epochs")


@app.command()
def compare(run_ids: list[int], as_json: Json = False) -> None:
    """Several runs' summaries side by side."""
    with api_client() as client:
        frame = client.compare(run_ids)
        rows = [{"id": i, **row} for i, row in frame.to_dict(orient="index").items()]
        if as_json:
            print_json(rows)
        else:
            _table(rows, ["id", *frame.columns])


def _act(action: Callable[[Client, int], Any], run_id: int) -> None:
    with api_client() as client:
        run = action(client, run_id)
        out.print(f"run {run.id}: {run.status}")


@app.command()
def cancel(run_id: int) -> None:
    """Cancel a queued or running run."""
    _act(lambda c, i: c.run(i).cancel(), run_id)


@app.command()
def retry(run_id: int) -> None:
    """Put a failed or cancelled run back in the queue."""
    _act(lambda c, i: c.run(i).retry(), run_id)


@app.command()
def export(
    run_id: int,
    format: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
    output: Annotated[Path | None, typer.Option("--out")] = None,
) -> None:
    """Every point of a run (key, step, value, wall_time)."""
    if format not in ("csv", "parquet"):
        err.print("--format is csv or parquet")
        raise typer.Exit(2)
    with api_client() as client:
        path = client.run(run_id).export(output or Path(f"run-{run_id}.{format}"), format)
        out.print(f"wrote {path}")


@app.command("open")
def open_run(run_id: int, browser: Annotated[bool, typer.Option(help="open it")] = False) -> None:
    """The run's page in the dashboard."""
    with api_client() as client:
        url = f"{client.url}/#/runs/{client.run(run_id).id}"
    out.print(url)
    if browser:
        import webbrowser

        webbrowser.open(url)


if __name__ == "__main__":
    app()
