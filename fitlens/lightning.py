"""A PyTorch Lightning logger (``pip install lightning``): every metric Lightning logs goes to
a fitlens run, with the hyperparameters as its params.

    trainer = L.Trainer(max_epochs=30, logger=FitlensLogger(project="mnist-reg"))

Metrics are stored at the epoch (1-based, as fitlens counts), so the curves and the diagnosis
read epochs; those Lightning names ``*_step`` (``on_step=True`` with ``on_epoch=True``) at its
global step instead.
"""

from __future__ import annotations

import math
from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from fitlens.client import Client
from fitlens.logger import LoggedRun


class FitlensLogger(Logger):
    def __init__(
        self,
        client: Client | None = None,
        project: str = "",
        name: str | None = None,
        tags: list[str] | None = None,
        team: str | None = None,
        strict: bool = False,
    ) -> None:
        """``strict``: raise when the run could not be fully recorded at the end (by default a
        warning on stderr: tracking never stops training)."""
        super().__init__()
        self.client = client or Client(team=team)
        self.project, self.run_name, self.tags = project, name, tags or []
        self.team, self.strict = team, strict
        self.params: dict[str, Any] = {}
        self._run: LoggedRun | None = None

    @property
    def name(self) -> str:
        return "fitlens"

    @property
    def version(self) -> int | str:
        return self._run.id if self._run is not None else ""

    @property
    def experiment(self) -> LoggedRun:
        """The fitlens run, started at the first thing logged (with the params known then)."""
        if self._run is None:
            self._run = self.client.start_run(
                project=self.project,
                name=self.run_name,
                params=self.params,
                tags=self.tags,
                team=self.team,
                strict=self.strict,
            )
        return self._run

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        new = {str(k)[:100]: _param(v) for k, v in values.items()}
        self.params |= new
        if self._run is not None:  # Lightning starts the experiment before it logs these
            self._run.set_params(new)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        per_step = {k: v for k, v in values.items() if k.endswith("_step")}
        if per_step:
            self.experiment.log(per_step, step=step or 0)
        per_epoch = {k: v for k, v in values.items() if k not in per_step}
        if per_epoch:
            epoch = int(metrics["epoch"]) + 1 if "epoch" in metrics else (step or 0)
            self.experiment.log(per_epoch, step=epoch)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is not None:
            self._run.finish(None if status == "success" else f"lightning: {status}")
            self._run = None


def _param(value: Any) -> str | float | int | bool | None:
    if value is None or isinstance(value, bool | int | str):
        return value if not isinstance(value, str) else value[:1000]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)[:1000]
