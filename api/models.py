"""Every table, from every domain, registered on SQLModel.metadata: what Alembic compares the
migrations with. The tables themselves live with their domain (``api/<domain>/models.py``)."""

from __future__ import annotations

from api.checkpoints.models import RunCheckpoint
from api.core.lease import Lease
from api.diagnosis.models import RunDiagnosis
from api.evaluation.models import Evaluation
from api.histograms.models import Histogram
from api.metrics.models import MetricBlock, MetricSeries
from api.mlflow.models import MlflowTag
from api.people.models import ApiToken, Invitation, Membership, Project, Team, User
from api.runs.models import Run, RunEvent, RunTag
from api.studies.models import Study
from api.webhooks.models import Webhook, WebhookDelivery
from api.weights.models import WeightSnapshot

__all__ = [
    "ApiToken",
    "Evaluation",
    "Histogram",
    "Invitation",
    "Lease",
    "Membership",
    "MetricBlock",
    "MetricSeries",
    "MlflowTag",
    "Project",
    "Run",
    "RunCheckpoint",
    "RunDiagnosis",
    "RunEvent",
    "RunTag",
    "Study",
    "Team",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WeightSnapshot",
]
