"""What a training run emits, as plain pydantic models (no torch).

The trainer builds these; reporters serialise them (JSON lines for the CLI, HTTP for the worker).
Non-finite floats are written as the strings "NaN", "Infinity" and "-Infinity", so the JSON stays
valid and the values survive the round trip (pydantic reads those strings back as floats).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# One JSON encoding for non-finite numbers across the project.
JSON_CONFIG = ConfigDict(ser_json_inf_nan="strings", frozen=True)


class _Event(BaseModel):
    model_config = JSON_CONFIG


class ParamHistogram(_Event):
    """Distribution of one parameter tensor at one step (the trainer's: an epoch), explicit
    bins plus summary numbers: the fields, and their names, of the API's histogram."""

    param: str
    step: int
    edges: list[float]  # len(counts) + 1 bin edges, ascending
    counts: list[int]
    numel: int
    mean: float
    std: float
    min: float
    max: float
    l1: float  # sum |w|
    l2: float  # sqrt(sum w^2)
    near_zero: float  # fraction of |w| below the spec's near_zero threshold
    # Values no bin can hold, counted apart (a diverged parameter); the bins span the rest.
    nan_count: int = 0
    posinf_count: int = 0
    neginf_count: int = 0


class LRChange(_Event):
    epoch: int
    old_lr: float
    new_lr: float
    reason: str


class Baseline(_Event):
    """What a model that learnt nothing scores on the validation split (trainer.baseline)."""

    n_val: int
    n_classes: int | None = None
    val_loss: float
    val_accuracy: float | None = None  # always answering the most frequent class


class RunStarted(_Event):
    event: Literal["run_started"] = "run_started"
    spec_hash: str
    task: str
    device: str
    device_name: str
    epochs: int
    n_train: int
    n_val: int
    n_classes: int | None
    class_names: list[str] | None
    input_shape: list[int]
    n_parameters: int
    baseline: Baseline | None = None
    # SHA-256 of the data set and of each split (trainer.data.fingerprints).
    fingerprints: dict[str, str] = Field(default_factory=dict)


class ClassReport(_Event):
    label: str
    precision: float
    recall: float  # the share of the class's examples classified right: its accuracy
    f1: float
    support: int
    loss: float | None = None  # the mean loss over the class's examples (None: it has none)


class ROCCurve(_Event):
    label: str
    fpr: list[float]
    tpr: list[float]
    auc: float


class PRCurve(_Event):
    """One class's precision-recall curve against the rest, from recall 0 to 1."""

    label: str
    precision: list[float]
    recall: list[float]
    average_precision: float


class Misclassified(_Event):
    """A validation example the model got wrong (the most confident mistakes first)."""

    index: int  # the example's position in the data set it was drawn from
    true: str
    predicted: str
    confidence: float  # the probability the model gave its (wrong) answer
    # Image data: the example itself, scaled to [0, 1], rows of pixels per channel.
    image: list[list[list[float]]] | None = None


class Predictions(_Event):
    """Regression: actual against predicted targets (in the target's units), a bounded
    sample of the validation split, and their residuals (predicted - actual)."""

    index: list[int]
    actual: list[float]
    predicted: list[float]
    residual: list[float]


class WeightMatrix(_Event):
    """A linear layer's weights, average-pooled to at most 64x64, for a heat-map (seed 003)."""

    param: str
    shape: list[int]  # the layer's real (out_features, in_features)
    values: list[list[float]]


SnapshotWhy = Literal["first", "every", "last", "best", "onset"]


class WeightSnapshot(_Event):
    """One weight tensor at one epoch, its values packed (base64 of little-endian, row-major
    ``dtype``): whole, or average-pooled to ``shape`` from ``full_shape`` (``method``)."""

    event: Literal["weight_snapshot"] = "weight_snapshot"
    param: str
    epoch: int
    shape: list[int]  # of the values sent
    full_shape: list[int]  # the tensor's own
    dtype: Literal["float32", "float16"]
    why: list[SnapshotWhy]
    method: str  # "whole", or how it was downsampled
    data: str


class Evaluation(_Event):
    event: Literal["evaluation"] = "evaluation"
    epoch: int  # whose weights were evaluated
    # Which split was scored; final: the end-of-run evaluation (of the weights the run keeps),
    # else one of the per-class evaluations made while training (trainer.spec.EvaluationSpec).
    split: Literal["train", "val", "test"] = "val"
    final: bool = True
    best_epoch: int | None = None  # None: no epoch had a finite validation loss
    best_val_loss: float | None = None
    # A diverged run: the last epoch whose losses were all finite (None: not even the first).
    last_finite_epoch: int | None = None
    loss: float | None = None  # the split's mean loss
    labels: list[str] | None = None
    confusion_matrix: list[list[int]] | None = None  # rows: true class, columns: predicted
    per_class: list[ClassReport] | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    roc: list[ROCCurve] | None = None
    macro_auc: float | None = None
    pr: list[PRCurve] | None = None
    macro_average_precision: float | None = None
    misclassified: list[Misclassified] | None = None
    rmse: float | None = None
    mae: float | None = None
    r2: float | None = None
    predictions: Predictions | None = None
    weight_matrices: list[WeightMatrix] = Field(default_factory=list)


class EpochEnd(_Event):
    event: Literal["epoch"] = "epoch"
    epoch: int  # 1-based
    epochs: int
    # e.g. train_loss, val_loss, train_accuracy, val_accuracy, gap, lr, epoch_seconds, ...
    metrics: dict[str, float]
    histograms: list[ParamHistogram] = Field(default_factory=list)
    lr_changes: list[LRChange] = Field(default_factory=list)
    eta_seconds: float
    # At the epochs the spec evaluates per class: the training and validation splits'.
    evaluations: list[Evaluation] = Field(default_factory=list)
    snapshots: list[WeightSnapshot] = Field(default_factory=list)
    # The per-batch training loss (train_loss_batch): (step, value), the step counting batches
    # since the run began, each value the mean of a run of consecutive batches.
    batch_losses: list[tuple[int, float]] = Field(default_factory=list)


CheckpointName = Literal["best", "last", "onset"]


class Checkpoint(_Event):
    """A state_dict as torch.save writes it, base64-packed, with its size and SHA-256."""

    event: Literal["checkpoint"] = "checkpoint"
    name: CheckpointName
    epoch: int
    why: str
    size: int
    sha256: str
    data: str


class RunEnded(_Event):
    event: Literal["run_ended"] = "run_ended"
    # completed: ran every epoch; early_stopped: the stopping rule fired; cancelled: asked to stop;
    # diverged: a loss became NaN or infinite (training stops there: it cannot recover).
    status: Literal["completed", "early_stopped", "cancelled", "diverged"]
    epochs_run: int
    best_epoch: int
    reason: str
    seconds: float
    # After an early stop with restore_best: the epoch whose weights were restored (and
    # evaluated); None when the last epoch's weights were kept.
    restored_epoch: int | None = None
    steps: int = 0  # optimizer steps taken (a learning curve's budget compares sizes by them)
    # The best epoch's weights (and the last epoch's, when the run ended before its last).
    snapshots: list[WeightSnapshot] = Field(default_factory=list)
    checkpoints: list[Checkpoint] = Field(default_factory=list)


Event = Annotated[RunStarted | EpochEnd | Evaluation | RunEnded, Field(discriminator="event")]


class EventEnvelope(BaseModel):
    """Parses any one event, e.g. a line of the CLI's JSON-lines output."""

    event: Event
