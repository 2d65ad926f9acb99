"""Errors in the shape MLflow's client reads (``{"error_code", "message"}``), so its own
handling works: ``get_experiment_by_name`` answers None on RESOURCE_DOES_NOT_EXIST, retries on
TEMPORARILY_UNAVAILABLE, and every other error is an ``MlflowException`` naming its code."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.core.errors import SafeJSONResponse
from api.core.schemas import ErrorItem

PREFIX = "/mlflow"

# The API's statuses as MLflow's error codes (mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS);
# 422 (invalid input) is MLflow's 400. 409 (the run is finished or deleted) keeps its status.
CODES: dict[int, tuple[str, int]] = {
    400: ("INVALID_PARAMETER_VALUE", 400),
    401: ("UNAUTHENTICATED", 401),
    403: ("PERMISSION_DENIED", 403),
    404: ("RESOURCE_DOES_NOT_EXIST", 404),
    405: ("ENDPOINT_NOT_FOUND", 405),
    408: ("DEADLINE_EXCEEDED", 408),
    409: ("INVALID_STATE", 409),
    413: ("RESOURCE_LIMIT_EXCEEDED", 413),
    422: ("INVALID_PARAMETER_VALUE", 400),
    429: ("REQUEST_LIMIT_EXCEEDED", 429),
    501: ("NOT_IMPLEMENTED", 501),
    503: ("TEMPORARILY_UNAVAILABLE", 503),
}


class MlflowErrorBody(BaseModel):
    """Every error of /mlflow: MLflow's shape (``errors``: the fields at fault, when known)."""

    error_code: str
    message: str
    errors: list[ErrorItem] | None = None


# The statuses an MLflow-protocol endpoint answers an error with (for its OpenAPI).
ERROR_STATUSES = {
    "400": "INVALID_PARAMETER_VALUE (bad input, named), or RESOURCE_ALREADY_EXISTS",
    "401": "UNAUTHENTICATED: missing, unknown, revoked or expired token",
    "403": "PERMISSION_DENIED: your role does not allow this",
    "404": "RESOURCE_DOES_NOT_EXIST: not found, or not yours to see",
    "408": "DEADLINE_EXCEEDED: the body did not arrive in time",
    "409": "INVALID_STATE: the run is finished, or not one MLflow's client created",
    "413": "RESOURCE_LIMIT_EXCEEDED: body over the size limit",
    "501": "NOT_IMPLEMENTED",
    "503": "TEMPORARILY_UNAVAILABLE: the database is away; retry",
}


class MlflowError(Exception):
    """An error with MLflow's own code (e.g. RESOURCE_ALREADY_EXISTS), answered as it is."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def mlflow_error(
    status: int, message: str, errors: list[dict[str, str]] | None = None
) -> SafeJSONResponse:
    """The API's error (status, message) in MLflow's shape; ``errors`` (the fields at fault)
    are kept beside, which MLflow's client ignores."""
    code, http_status = CODES.get(status, ("INTERNAL_ERROR", status))
    body: dict[str, Any] = {"error_code": code, "message": message}
    if errors:
        body["errors"] = errors
    return SafeJSONResponse(status_code=http_status, content=body)


def coded_error(exc: MlflowError) -> SafeJSONResponse:
    return SafeJSONResponse(
        status_code=exc.status, content={"error_code": exc.code, "message": str(exc)}
    )


# What of MLflow's API fitlens does not answer (each is NOT_IMPLEMENTED, 501; README's table).
NOT_IMPLEMENTED: dict[str, str] = {
    "artifacts": "artifacts (mlflow-artifacts, runs' artifact lists, presigned URLs): fitlens "
    "keeps checkpoints through its own API",
    "registered-models": "the model registry (registered models, versions, aliases)",
    "model-versions": "the model registry (registered models, versions, aliases)",
    "logged-models": "logged models (MLflow 3's model entities), log-model, log-inputs/outputs",
    "traces": "traces, assessments and GenAI evaluation",
    "experiment-tags": "experiment tags (set-experiment-tag, delete-experiment-tag)",
    "experiment-lifecycle": "deleting, restoring or renaming an experiment (a fitlens project)",
    "restore-run": "restoring a deleted run: fitlens deletes a run for good",
    "get-history-bulk-interval": "metrics/get-history-bulk-interval (MLflow's UI's sampler)",
}
