"""``fitlens import``: runs you already have, from TensorBoard logs or an MLflow server, as
fitlens runs. Idempotent: importing the same runs again finds them and stores nothing twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from fitlens.cli_base import Json, Team, api_client, err, out, print_json
from fitlens.importer import Imported, ImportedRun, write_run

import_app = typer.Typer(
    help="Bring runs you already have: TensorBoard logs, an MLflow server.",
    no_args_is_help=True,
)
Project = Annotated[str, typer.Option("--project", help="the fitlens project to file them in")]


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        tag, sep, key = pair.partition("=")
        if not sep or not tag or not key:
            err.print(f"--map takes TAG=KEY, not {pair!r}")
            raise typer.Exit(2)
        mapping[tag] = key
    return mapping


def _write_all(
    runs: Iterable[ImportedRun], project: str, team: str | None, as_json: bool
) -> list[Imported]:
    done = []
    with api_client(team) as client:
        for run in runs:
            imported = write_run(client, run, project, client.team)
            done.append(imported)
            if not as_json:
                out.print(
                    f"run {imported.run_id} {imported.name!r}: {imported.outcome}, "
                    f"{imported.added} of {imported.points} points added, "
                    f"{imported.histograms} histograms"
                )
            for warning in imported.warnings:
                err.print(f"  [yellow]{warning}[/yellow]")
    if as_json:
        print_json([asdict(i) for i in done])
    elif not done:
        err.print("nothing to import")
    return done


@import_app.command("tensorboard")
def import_tensorboard(
    logdir: Annotated[Path, typer.Argument(help="a TensorBoard log directory")],
    project: Project = "tensorboard",
    map_tags: Annotated[
        list[str] | None,
        typer.Option("--map", help="TAG=KEY: store TAG as metric KEY (repeat for several)"),
    ] = None,
    team: Team = None,
    as_json: Json = False,
) -> None:
    """Each directory of event files is a run: scalars become metrics by step (Loss/train ->
    train_loss, Accuracy/val -> val_accuracy, ...), histograms fitlens histograms."""
    if not logdir.is_dir():
        err.print(f"{logdir} is not a directory")
        raise typer.Exit(2)
    try:
        from fitlens.tensorboard import read_logdir
    except ImportError:
        err.print('reading TensorBoard logs needs: pip install "fitlens[tensorboard]"')
        raise typer.Exit(2) from None
    _write_all(read_logdir(logdir, _mapping(map_tags or [])), project, team, as_json)


@import_app.command("mlflow")
def import_mlflow(
    tracking_uri: Annotated[
        str, typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="the server")
    ],
    experiment: Annotated[str, typer.Option("--experiment", help="the experiment's name")],
    project: Annotated[
        str | None, typer.Option("--project", help="default: the experiment's name")
    ] = None,
    team: Team = None,
    as_json: Json = False,
) -> None:
    """An MLflow experiment's runs, with their params, tags and every metric's history."""
    from fitlens.mlflow_import import SourceError, mlflow_http, read_experiment

    try:
        with mlflow_http(tracking_uri) as http:
            _write_all(read_experiment(http, experiment), project or experiment, team, as_json)
    except SourceError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(3) from None
