"""A TensorBoard event file, posted whole, as a client run: read by TensorBoard's own reader
(fitlens.tensorboard, the same as ``fitlens import tensorboard``), its scalars stored as metric
points, its histograms as histograms, the run ended. Idempotent: the same file posted again
under the same project and name finds the run it made (tagged with the file's SHA-256), and a
post cut short is resumed."""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session, col

from api.core.exceptions import Invalid, TooLarge
from api.histograms.schemas import HistogramIn
from api.histograms.service import HistogramStore
from api.metrics.schemas import MetricPointDict
from api.metrics.service import MetricStore
from api.people.auth import Principal
from api.people.models import Project
from api.runs.lifecycle import RunLifecycle
from api.runs.models import FINISHED, Run, RunTag
from api.runs.schemas import RunOut, RunStart, StatusUpdate
from api.runs.service import RunStore

MAX_POINTS = 1_000_000  # scalar points in one posted file
MAX_HISTOGRAMS = 10_000
MAX_STEP = 2**62
HISTOGRAMS_PER_WRITE = 500


class ImportStore:
    """Built with the stores an imported run is written through: runs (its start), lifecycle
    (its end), metrics and histograms (its data), each with its own rules and limits."""

    def __init__(
        self,
        runs: RunStore,
        lifecycle: RunLifecycle,
        metrics: MetricStore,
        histograms: HistogramStore,
    ) -> None:
        self.runs = runs
        self.lifecycle = lifecycle
        self.metrics = metrics
        self.histograms = histograms

    def import_tensorboard(
        self,
        principal: Principal,
        data: bytes,
        start: RunStart,
        mapping: Mapping[str, str],
        max_batch: int,
        max_keys: int,
    ) -> tuple[RunOut, bool]:
        """The run the file makes (or made before), and whether it is new."""
        digest = hashlib.sha256(data + f"|{start.project}|{start.name}".encode()).hexdigest()
        tag = f"imported:tensorboard-file:{digest[:24]}"
        points, histograms = _read(data, mapping)
        found = self._imported(principal, tag)
        if found is not None:  # a viewer's post is refused even when there is nothing to do
            self.runs.access.grant_run(principal, found.id, "write")
        if found is not None and found.status in FINISHED:
            return found, False
        run = found or self.runs.start_client_run(
            start.model_copy(update={"tags": [tag, *start.tags][:50]}), principal
        )
        for at in range(0, len(points), max_batch):
            self.metrics.add_metrics(run.id, points[at : at + max_batch], 1, max_keys)
        for at in range(0, len(histograms), HISTOGRAMS_PER_WRITE):
            self.histograms.add_histograms(run.id, histograms[at : at + HISTOGRAMS_PER_WRITE], 1)
        self.lifecycle.set_status(run.id, StatusUpdate(status="succeeded", attempt=1))
        return self.runs.access.get_run(run.id), found is None

    def _imported(self, principal: Principal, tag: str) -> RunOut | None:
        """The run an earlier post of the file made, among the caller's teams' runs."""
        with Session(self.runs.engine) as session:
            run_id = session.execute(
                select(col(Run.id))
                .join(RunTag, col(RunTag.run_id) == col(Run.id))
                .join(Project, col(Project.id) == col(Run.project_id))
                .where(col(RunTag.tag) == tag, col(Project.team_id).in_(principal.teams()))
                .limit(1)
            ).scalar()
        return None if run_id is None else self.runs.access.get_run(int(run_id))


def _read(
    data: bytes, mapping: Mapping[str, str]
) -> tuple[list[MetricPointDict], list[HistogramIn]]:
    """The file's points and histograms, checked against the limits before anything is kept.
    TensorBoard's reader reads files: the body goes to a folder of its own, gone after."""
    try:
        from fitlens.tensorboard import read_run
    except ImportError:  # the server was installed without the tensorboard package
        raise Invalid("body", "this server cannot read TensorBoard files") from None
    with tempfile.TemporaryDirectory(prefix="fitlens-tb-") as folder:
        path = Path(folder)
        (path / "events.out.tfevents.upload").write_bytes(data)
        try:
            read = read_run(path, path, mapping)
        except Exception as exc:  # a corrupt or hostile file: the reader's error, named
            raise Invalid("body", f"not a readable TensorBoard event file ({exc})") from None
    if not read.points and not read.histograms:
        raise Invalid("body", "no scalars or histograms in this file (a TensorBoard event file?)")
    if len(read.points) > MAX_POINTS or len(read.histograms) > MAX_HISTOGRAMS:
        raise TooLarge(
            "body", f"at most {MAX_POINTS:,} scalar points and {MAX_HISTOGRAMS:,} histograms"
        )
    now = time.time()
    points: list[MetricPointDict] = [
        {"key": k, "step": s, "value": v, "wall_time": w if math.isfinite(w) else now}
        for k, s, v, w in read.points
        if 0 <= s <= MAX_STEP
    ]
    return points, [_histogram(h) for h in read.histograms]


def _histogram(body: dict[str, Any]) -> HistogramIn:
    try:
        return HistogramIn.model_validate(body)
    except ValidationError as exc:
        where = f"histogram {str(body.get('param'))[:100]!r} at step {body.get('step')}"
        raise Invalid("body", f"{where}: {exc.errors()[0]['msg']}") from None
