"""What the app holds: every domain's store, built in dependency order (as MLflow's tracking
store is one interface, but made of parts you can see).

Each domain keeps its persistence in a store of its own (``api/<domain>/service.py``) that is
given, in its constructor, the stores it uses; no domain reaches into another's private
methods. Routes name the part they use (``api.core.deps.part``); code that needs several (the
operator's CLI, the reconciler, tests) takes this container.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from api.checkpoints.service import Budgets, CheckpointStore
from api.core.artifacts import ArtifactStore, LocalArtifacts
from api.core.store import StoreBase
from api.diagnosis.service import DiagnosisStore
from api.evaluation.service import EvaluationStore
from api.histograms.service import HistogramStore
from api.imports.service import ImportStore
from api.metrics.service import MetricStore
from api.mlflow.experiments import ExperimentStore
from api.mlflow.service import MlflowStore
from api.people.projects import ProjectStore
from api.people.service import PeopleStore
from api.runs.access import RunAccess
from api.runs.lifecycle import RunLifecycle
from api.runs.service import RunStore
from api.streams.reads import StreamReads
from api.studies.answers import StudyAnswers
from api.webhooks.service import WebhookStore
from api.weights.service import WeightStore

__all__ = ["TrackingStore"]
DEFAULT_BUDGETS = Budgets(run_bytes=256 << 20, team_bytes=4 << 30)  # api.core.config's


class TrackingStore(StoreBase):
    """people, projects -> access -> runs, lifecycle, metrics, histograms, evaluations, weights ->
    diagnosis (reads metrics, evaluations) -> webhooks (people, access) -> studies (runs,
    lifecycle, metrics) -> mlflow (projects, runs, lifecycle, metrics) -> streams."""

    def __init__(
        self,
        engine: Engine,
        default_project: str = "default",
        max_run_bytes: int = 1 << 30,
        artifacts: ArtifactStore | None = None,
        checkpoint_budgets: Budgets = DEFAULT_BUDGETS,
    ) -> None:
        super().__init__(engine)
        self.people = PeopleStore(engine)
        self.projects = ProjectStore(engine, default_project)
        self.access = RunAccess(engine)
        self.runs = RunStore(self.access, self.projects)
        self.lifecycle = RunLifecycle(self.access)
        self.metrics = MetricStore(self.access)
        self.histograms = HistogramStore(self.access)
        self.evaluations = EvaluationStore(self.access)
        self.weights = WeightStore(self.access, max_run_bytes)
        kept = artifacts or LocalArtifacts(Path(".fitlens/artifacts"))
        self.checkpoints = CheckpointStore(self.access, kept, checkpoint_budgets)
        self.runs.on_run_deleted(self.checkpoints.forget_run)
        self.diagnosis = DiagnosisStore(self.access, self.metrics, self.evaluations)
        # The one place a run's diagnosis is wired to its data: every write of metrics, events,
        # status or heartbeat calls it in its own transaction, under the run's lock.
        self.access.on_run_data_changed(self.diagnosis.refresh_diagnosis)
        # ... and the one wire back: a status post's answer carries the diagnosis's onset.
        self.lifecycle.on_status_answer(self.diagnosis.status_news)
        # Webhooks hear of a run's end and divergence (after its diagnosis: the body carries
        # the final one) and of its onset; they queue deliveries, api.webhooks.sender sends.
        self.webhooks = WebhookStore(self.people, self.access)
        self.access.on_run_data_changed(self.webhooks.run_changed)
        self.diagnosis.on_onset(self.webhooks.onset_found)
        self.studies = StudyAnswers(self.projects, self.runs, self.lifecycle, self.metrics)
        # MLflow's tracking API: its experiments are projects, its runs client runs.
        self.experiments = ExperimentStore(self.projects)
        self.mlflow = MlflowStore(self.experiments, self.runs, self.lifecycle, self.metrics)
        # An uploaded TensorBoard file, written through the stores of the data it holds.
        self.imports = ImportStore(self.runs, self.lifecycle, self.metrics, self.histograms)
        self.streams = StreamReads(engine)
