"""What the run endpoints take and answer: jobs, runs, status reports and events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from api.core.schemas import In, Step, Text
from api.runs.models import RunStatus, Verdict
from trainer.spec import JobSpec

Tag = Annotated[Text, Field(min_length=1, max_length=100, pattern=r"^[^,\s][^,]*$")]


class JobCreate(In):
    spec: JobSpec = Field(default_factory=JobSpec)
    project: Text = Field(default="", max_length=200, description="empty: the default project")
    team: Text | None = Field(
        default=None,
        max_length=100,
        description="team of a new project; needed only when you write to several teams",
    )
    name: Text | None = Field(default=None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    notes: Text = Field(default="", max_length=10_000)


ParamValue = (
    Annotated[str, Field(max_length=1000)]
    | bool
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | None
)
ParamKey = Annotated[Text, Field(min_length=1, max_length=100)]


EnvironmentKey = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_.]+$")]
# What a run ran with: python, torch, fitlens, git_commit, device... (at most 32 entries).
Environment = dict[EnvironmentKey, Annotated[Text, Field(max_length=200)]]


class RunStart(In):
    """A run the user trains in their own loop and logs with the Python client (no spec)."""

    project: Text = Field(default="", max_length=200, description="empty: the default project")
    team: Text | None = Field(default=None, max_length=100)
    name: Text | None = Field(default=None, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    notes: Text = Field(default="", max_length=10_000)
    # Free-form, flat; numbers named like spec columns (lr, epochs, batch_size, dropout,
    # weight_decay, l1, l2, seed) are also filterable with ``where``.
    params: dict[ParamKey, ParamValue] = Field(default_factory=dict, max_length=200)
    epochs: int | None = Field(default=None, ge=0, le=10_000_000, description="for progress")
    environment: Environment | None = Field(default=None, max_length=32)


class RunPatch(In):
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    # A client run's params, merged into those it has (e.g. hyperparameters known late).
    params: dict[ParamKey, ParamValue] | None = Field(default=None, max_length=200)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    notes: Text | None = Field(default=None, max_length=10_000)


class Progress(BaseModel):
    epoch: int
    epochs: int


class RunLinks(BaseModel):
    self: str
    curves: str
    histograms: str
    evaluation: str
    events: str
    metrics_csv: str


class ClassOnsetOut(BaseModel):
    """One class's overfitting (api.diagnosis.per_class)."""

    label: str
    onset_epoch: int | None  # its validation loss climbed after this epoch; None: no onset
    best_epoch: int | None
    gap: float | None  # its validation minus training loss at the last evaluated epoch


class DiagnosisOut(BaseModel):
    """What a run's curves say, with the numbers behind it (rules: docs/api.md, "Diagnosis")."""

    # NaN and infinities survive storage as JSON (as the API writes them: strings).
    model_config = ConfigDict(ser_json_inf_nan="strings")

    verdict: Verdict
    why: str
    epochs: int  # epochs with both a train_loss and a val_loss
    best_epoch: int | None  # lowest val_loss
    min_val_loss: float | None
    onset_epoch: int | None  # overfitting began after this epoch
    gap_at_best: float | None  # val_loss - train_loss
    final_gap: float | None
    gap_slope: float | None  # per epoch, over the last epochs
    early_stopped: bool
    stop_reason: str | None
    restored_epoch: int | None  # whose weights were restored after an early stop
    evaluated_epoch: int | None  # whose weights the evaluation used: restored, else last
    diverged_epoch: int | None
    at_best: dict[str, float]  # every metric at the best epoch
    at_evaluated: dict[str, float]  # ... at the evaluated epoch
    final: dict[str, float]  # ... at the last epoch
    # val - test accuracy, test - val loss at the evaluated epoch: what selecting on
    # validation flattered (empty without a test split).
    optimism: dict[str, float] = Field(default_factory=dict)
    per_class: list[ClassOnsetOut] = Field(default_factory=list)  # onset and gap per class
    # Label-noise controls: the first epoch training accuracy reached 90% with validation at
    # chance (how fast the network memorizes noise).
    memorized_epoch: int | None = None
    rules: dict[str, float]  # the rules it was made with (defaults unless you asked)


class HeartbeatOut(BaseModel):
    """How often the run's reporter (a worker, or the Python client) must beat: the server
    judges a running run lost after ``timeout_s`` of silence; beating every ``interval_s``
    (a third of it) rides out two lost beats."""

    interval_s: float
    timeout_s: float


class RunOut(BaseModel):
    id: int
    project: str
    team_id: int  # the team that owns the project: what the caller's role on it is
    name: str
    created_by: str | None  # who submitted it
    status: RunStatus
    spec: dict[str, Any]
    spec_hash: str
    tags: list[str]
    notes: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_host: str | None
    device: str | None
    progress: Progress
    failure_reason: str | None
    attempt: int
    revision: int
    # When the run was last handed to the queue (null: not yet; the API keeps trying).
    enqueued_at: datetime | None = None
    # Versions and hardware of the attempt: python, torch, fitlens, git commit, device, ...
    environment: dict[str, str] | None = None
    # The first epoch with a non-finite loss, when the run diverged.
    diverged_epoch: int | None = None
    # What its curves say so far (null until an epoch has both losses).
    diagnosis: DiagnosisOut | None = None
    # A study's member: the study, its configuration and replicate, and the overrides the study
    # applied to its spec (dotted path -> value).
    study_id: int | None = None
    study_config: int | None = None
    study_replicate: int | None = None
    overrides: dict[str, Any] | None = None
    # "worker" (trained from its spec by a worker) or "client" (logged from the user's own
    # loop, with its params and no spec).
    source: str = "worker"
    params: dict[str, Any] | None = None
    links: RunLinks | None = None
    # Answered by POST /jobs, POST /runs and GET /runs/{id}: the reporter's pace (no setting on
    # one side can silently break the other).
    heartbeat: HeartbeatOut | None = None


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


def with_links(run: RunOut, prefix: str, heartbeat_timeout: float | None = None) -> RunOut:
    """The run with the addresses of what it holds (``prefix``: the API's, e.g. /api/v1), and
    with ``heartbeat_timeout`` the pace its reporter must keep."""
    base = f"{prefix}/runs/{run.id}"
    beat = None
    if heartbeat_timeout is not None:
        beat = HeartbeatOut(interval_s=heartbeat_timeout / 3, timeout_s=heartbeat_timeout)
    return run.model_copy(
        update={
            "heartbeat": beat,
            "links": RunLinks(
                self=base,
                curves=f"{base}/curves",
                histograms=f"{base}/histograms",
                evaluation=f"{base}/evaluation",
                events=f"{base}/events",
                metrics_csv=f"{base}/metrics.csv",
            ),
        }
    )


# ---- what workers report ----


MAX_REASON = 10_000


def _storable_reason(value: object) -> object:
    # How a run ended must always be recordable: NULs dropped, long reasons cut, never a 422
    # that would leave the run without its real cause.
    if isinstance(value, str):
        value = value.replace("\x00", "")
        if len(value) > MAX_REASON:
            value = value[: MAX_REASON - 1] + "…"
    return value


class StatusUpdate(In):
    status: Literal["running", "heartbeat", "succeeded", "failed"]
    worker_host: Text | None = Field(default=None, max_length=200)
    device: Text | None = Field(default=None, max_length=200)
    epoch: int | None = Field(default=None, ge=0, le=1_000_000)
    epochs: int | None = Field(default=None, ge=0, le=1_000_000)
    reason: Annotated[Text | None, BeforeValidator(_storable_reason)] = Field(
        default=None, max_length=MAX_REASON
    )
    # With "running": what the attempt runs on (python, torch, fitlens, git_commit, device...).
    environment: Environment | None = Field(default=None, max_length=32)
    # The attempt a worker got from its "running" post; later posts name it (stale ones: 409).
    attempt: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _reason_for_failure(self) -> StatusUpdate:
        if self.status == "failed" and not self.reason:
            raise ValueError("reason: a failed run needs a reason")
        return self


class StatusOut(BaseModel):
    id: int
    status: RunStatus
    attempt: int
    revision: int
    # The stored diagnosis's onset of overfitting, if it found one: a reporter whose run stops
    # at the onset (spec diagnosis.stop_on, the client's stop_on) learns it here.
    onset_epoch: int | None = None


# ---- events ----


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    # A free-form payload is stored as JSON and served back: keep it shallow enough to read.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise ValueError(f"nested more than {MAX_PAYLOAD_DEPTH} levels deep")
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return value


MAX_PAYLOAD_DEPTH = 16


class EventIn(In):
    # lr_change: payload old_lr, new_lr, reason; diverged: the first epoch with a non-finite
    # loss (payload: the reason), which also marks the run (RunOut.diverged_epoch);
    # early_stopped: the last epoch trained (payload: reason, restored_epoch when the best
    # epoch's weights were restored), which the diagnosis reports; baseline (step 0): what a
    # model that learnt nothing scores on the validation split (payload: n_val, val_loss,
    # val_accuracy, n_classes), the diagnosis's bar for "not learning"; trained (step: the
    # epochs run): the optimizer steps taken (payload: steps, epochs), a learning curve's
    # steps_trained; data (step 0): SHA-256 fingerprints of the data set and of each split
    # (payload: dataset, train, val, test, n_train, n_val).
    kind: Literal["lr_change", "diverged", "early_stopped", "baseline", "trained", "data"]
    step: Step
    payload: Annotated[dict[str, Any], AfterValidator(_shallow)] = Field(default_factory=dict)


class EventBatch(In):
    events: list[EventIn] = Field(max_length=1000)


class EventOut(BaseModel):
    kind: str
    step: int | None
    payload: dict[str, Any]
    created_at: datetime
