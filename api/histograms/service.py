"""Weight histograms: ingest (one per parameter and step, idempotent), the per-run index and
series (optionally re-binned onto shared edges: a heat-map over epochs), and overlays of
several runs at one step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlmodel import Session, col

from api.core.exceptions import NotFound
from api.core.schemas import IngestResult
from api.core.store import StoreBase
from api.histograms.bins import rebin, shared_edges
from api.histograms.models import Histogram
from api.histograms.schemas import (
    HistogramIn,
    HistogramIndex,
    HistogramOverlay,
    HistogramSeries,
    HistogramStep,
    HistogramSummary,
    OverlayRun,
)
from api.runs.access import RunAccess
from api.runs.models import Run

SUMMARY = tuple(HistogramSummary.model_fields)  # declared once, in api.histograms.schemas


class HistogramStore(StoreBase):
    def __init__(self, access: RunAccess) -> None:
        super().__init__(access.engine)
        self.access = access

    def add_histograms(
        self, run_id: int, histograms: Sequence[HistogramIn], attempt: int | None = None
    ) -> IngestResult:
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        for h in histograms:
            rows.setdefault(
                (h.param, h.step),
                {
                    "run_id": run_id,
                    "param": h.param,
                    "step": h.step,
                    "edges_json": json.dumps(h.edges),
                    "counts_json": json.dumps(h.counts),
                    "numel": h.numel if h.numel is not None else round(sum(h.counts)),
                    # A non-finite summary (a diverged parameter's mean) is stored as unknown.
                    **{k: _finite_or_none(getattr(h, k)) for k in SUMMARY},
                },
            )
        with Session(self.engine) as session:
            self.access.writable_run(session, run_id, attempt=attempt)
            inserted = 0
            if rows:
                stmt = (
                    self._insert(Histogram)
                    .on_conflict_do_nothing(index_elements=["run_id", "param", "step"])
                    .returning(Histogram.id)
                )
                inserted = len(session.execute(stmt, list(rows.values())).all())
            bump = self.access.bump_revision if inserted else self.access.revision_of
            revision = bump(session, run_id)
            session.commit()
        return IngestResult(
            accepted=inserted, duplicates=len(histograms) - inserted, revision=revision
        )

    def histograms_validator(self, run_id: int, param: str | None) -> str:
        """A histogram read's ETag: the run's attempt, and how many histograms it has (of
        ``param``) and the newest one's id (rows are only ever added, or cleared with their
        attempt)."""
        query = _HIST_STATE if param is None else _HIST_STATE_OF
        with self.engine.connect() as conn:
            row = conn.execute(query, {"run_id": run_id, "param": param}).first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return f"a{row[0]}|{row[1]}|{row[2]}"

    def histogram_index(self, run_id: int) -> HistogramIndex:
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            rows = session.execute(
                select(col(Histogram.param), col(Histogram.step))
                .where(col(Histogram.run_id) == run_id)
                .order_by(col(Histogram.param), col(Histogram.step))
            ).all()
        params: dict[str, list[int]] = {}
        for param, step in rows:
            params.setdefault(param, []).append(step)
        return HistogramIndex(run_id=run_id, params=params)

    def get_histograms(
        self, run_id: int, param: str, steps: Sequence[int] | None, shared_bins: int | None
    ) -> HistogramSeries:
        with Session(self.engine) as session:
            self.access.run_row(session, run_id)
            query = select(Histogram).where(
                col(Histogram.run_id) == run_id, col(Histogram.param) == param
            )
            if steps:
                query = query.where(col(Histogram.step).in_(steps))
            rows = list(session.execute(query.order_by(col(Histogram.step))).scalars())
        items = [_histogram_step(h) for h in rows]
        if shared_bins and items:
            edges = shared_edges([i.edges for i in items], shared_bins)
            items = [
                i.model_copy(update={"edges": edges, "counts": rebin(i.edges, i.counts, edges)})
                for i in items
            ]
        return HistogramSeries(
            run_id=run_id, param=param, shared_edges=bool(shared_bins), steps=items
        )

    def overlay_histograms(
        self, run_ids: Sequence[int], param: str, step: int | None, bins: int
    ) -> HistogramOverlay:
        picked: list[tuple[Run, Histogram]] = []
        with Session(self.engine) as session:
            for run_id in run_ids:
                run = self.access.run_row(session, run_id)
                query = select(Histogram).where(
                    col(Histogram.run_id) == run_id, col(Histogram.param) == param
                )
                if step is not None:
                    query = query.where(col(Histogram.step) == step)
                h = (
                    session.execute(query.order_by(col(Histogram.step).desc()).limit(1))
                    .scalars()
                    .first()
                )
                if h is None:
                    at = f" at step {step}" if step is not None else ""
                    raise NotFound(f"run {run_id} has no histogram of {param}{at}")
                picked.append((run, h))
        steps = [_histogram_step(h) for _, h in picked]
        edges = shared_edges([s.edges for s in steps], bins)
        return HistogramOverlay(
            param=param,
            edges=edges,
            runs=[
                OverlayRun(
                    run_id=run.id or 0,
                    name=run.name,
                    step=s.step,
                    numel=s.numel,
                    counts=rebin(s.edges, s.counts, edges),
                )
                for (run, _), s in zip(picked, steps, strict=True)
            ],
        )


def _histogram_step(h: Histogram) -> HistogramStep:
    return HistogramStep(
        step=h.step,
        edges=json.loads(h.edges_json),
        counts=json.loads(h.counts_json),
        numel=h.numel,
        **{k: getattr(h, k) for k in SUMMARY},
    )


def _finite_or_none(value: float | None) -> float | None:
    # Counts (ints) are finite: they pass as they are.
    return value if value is not None and math.isfinite(value) else None


def _hist_state(of_param: bool) -> Any:
    on = col(Histogram.run_id) == Run.id
    if of_param:
        on = and_(on, col(Histogram.param) == bindparam("param"))
    return (
        select(col(Run.attempt), func.count(col(Histogram.id)), func.max(col(Histogram.id)))
        .outerjoin(Histogram, on)
        .where(col(Run.id) == bindparam("run_id"))
        .group_by(col(Run.attempt))
    )


_HIST_STATE = _hist_state(of_param=False)
_HIST_STATE_OF = _hist_state(of_param=True)
