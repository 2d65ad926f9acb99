"""The one interface the app holds: every domain's store, joined (as MLflow's tracking store).

Each domain keeps its persistence in one class of its own package (``api/<domain>/service.py``)
and builds on ``api.runs.access.RunAccess`` when it keeps data of a run. Routes see only their
domain's class (api.core.deps); code that needs all of it (the operator's CLI, the reconciler,
tests) takes this one.
"""

from __future__ import annotations

from sqlalchemy import Engine

from api.evaluation.service import EvaluationStore
from api.histograms.service import HistogramStore
from api.people.service import PeopleStore
from api.streams.reads import StreamReads
from api.studies.reads import StudyReads

__all__ = ["TrackingStore"]


class TrackingStore(PeopleStore, StreamReads, StudyReads, HistogramStore, EvaluationStore):
    """Users, teams and tokens; studies, their runs and the runs' lifecycle; metrics (with the
    diagnosis made from them), histograms, evaluations; what streams read."""

    def __init__(self, engine: Engine, default_project: str = "default") -> None:
        super().__init__(engine, default_project)
        # The one place a run's diagnosis is wired to its data: every write of metrics, events,
        # status or heartbeat calls it in its own transaction.
        self.on_run_data_changed(self.refresh_diagnosis)
