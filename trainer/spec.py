"""The training-job spec: what a user submits, validated once, shared by api, worker and trainer.

This module must stay free of torch (and of anything heavy): the API imports it to validate
specs without a deep-learning stack installed. Every error pydantic raises names the field
(`loc`), so a 422 from the API can point at e.g. ``optimizer.lr``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from trainer.dataspec import (
    CLASSIFICATION_DATASETS,
    DATASET_SIZES,
    IMAGE_SHAPES,
    REGRESSION_DATASETS,
    TABULAR_SHAPES,
    DataSpec,
    PositiveInt,
    Probability,
    SyntheticSpec,
)
from trainer.dataspec import Strict as _Strict

Task = Literal["classification", "regression"]
Activation = Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu"]
Metric = Literal[
    "val_loss", "train_loss", "val_accuracy", "train_accuracy", "val_rmse", "val_mae", "gap"
]

# The trainer's no-grad passes (validation, evaluation) score this many examples at once.
EVAL_BATCH = 8192
ACCURACY_METRICS = frozenset({"val_accuracy", "train_accuracy"})
REGRESSION_METRICS = frozenset({"val_rmse", "val_mae"})
# Metrics where larger is better; the rest are minimised.
MAXIMISED_METRICS = ACCURACY_METRICS


class InitSpec(_Strict):
    # normal: N(0, std) weights and zero biases, as in seed 003.
    scheme: Literal["default", "normal", "xavier_uniform", "kaiming_normal"] = "default"
    std: Annotated[float, Field(gt=0)] = 0.01


class MLPSpec(_Strict):
    kind: Literal["mlp"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [128], max_length=16)
    activation: Activation = "relu"
    # Dropout after each hidden layer, and on the input as in seed 001.
    dropout: Probability = 0.0
    input_dropout: Probability = 0.0
    init: InitSpec = Field(default_factory=InitSpec)


class CNNSpec(_Strict):
    kind: Literal["cnn"] = "cnn"
    # Each conv block: 3x3 conv (same padding), activation, 2x2 max-pool.
    channels: list[PositiveInt] = Field(
        default_factory=lambda: [16, 32], min_length=1, max_length=6
    )
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64], max_length=8)
    activation: Activation = "relu"
    dropout: Probability = 0.0
    init: InitSpec = Field(default_factory=InitSpec)


def _model_kind(value: object) -> str | None:
    # "kind" may be left out: a model spec without one is an MLP.
    if isinstance(value, dict):
        return value.get("kind", "mlp")
    return getattr(value, "kind", None)


ModelSpec = Annotated[
    Annotated[MLPSpec, Tag("mlp")] | Annotated[CNNSpec, Tag("cnn")],
    Discriminator(_model_kind),
]


class OptimizerSpec(_Strict):
    name: Literal["sgd", "adam", "adamw"] = "adam"
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = 1e-3
    # The optimizer's own decay (seed 004: SGD(weight_decay=5e-4)); distinct from
    # regularization.l2, which is a penalty term added to the loss (seed 001).
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    nesterov: bool = False

    @model_validator(mode="after")
    def _check(self) -> OptimizerSpec:
        if self.name != "sgd" and (self.momentum or self.nesterov):
            raise ValueError(f"momentum: only sgd takes momentum/nesterov, not {self.name}")
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov: needs momentum > 0")
        return self


class RegularizationSpec(_Strict):
    # lambda * sum|w| and lambda * sum w^2 added to the training loss (seed 001 uses 1e-4 / 1e-2).
    l1: Annotated[float, Field(ge=0.0)] = 0.0
    l2: Annotated[float, Field(ge=0.0)] = 0.0
    # Seed 001 penalises every parameter, biases included; "weights" skips biases.
    apply_to: Literal["all", "weights"] = "all"
    # squared: lambda * sum w^2 (the textbook L2, weight decay's twin); norm: lambda * ||w||_2 per
    # parameter tensor, unsquared, as seed 001 writes it (torch.norm(p, 2)): its gradient does
    # not shrink with the weights, and at seed 001's lambda = 1e-2 the two forms disagree.
    l2_form: Literal["squared", "norm"] = "squared"


class NoSchedule(_Strict):
    kind: Literal["none"] = "none"


class ReduceOnPlateauSpec(_Strict):
    """torch.optim.lr_scheduler.ReduceLROnPlateau, defaults from seed 001."""

    kind: Literal["reduce_on_plateau"] = "reduce_on_plateau"
    monitor: Metric = "val_loss"
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    patience: Annotated[int, Field(ge=0)] = 0
    threshold: Annotated[float, Field(ge=0.0)] = 1e-3
    threshold_mode: Literal["abs", "rel"] = "abs"
    min_lr: Annotated[float, Field(ge=0.0)] = 1e-5
    cooldown: Annotated[int, Field(ge=0)] = 0


class StepSpec(_Strict):
    kind: Literal["step"] = "step"
    step_size: PositiveInt = 10
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class CosineSpec(_Strict):
    kind: Literal["cosine"] = "cosine"
    # Period in epochs; None means the run's epoch count.
    t_max: PositiveInt | None = None
    eta_min: Annotated[float, Field(ge=0.0)] = 0.0


LRScheduleSpec = Annotated[
    NoSchedule | ReduceOnPlateauSpec | StepSpec | CosineSpec, Field(discriminator="kind")
]


class EarlyStoppingSpec(_Strict):
    monitor: Metric = "val_loss"
    patience: Annotated[int, Field(ge=0)] = 5
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0
    # Evaluate (confusion matrix, ROC, ...) the best epoch's weights rather than the last.
    restore_best: bool = True


HistogramPart = Literal["weight", "bias", "grad", "update"]


def _weights_and_biases() -> list[HistogramPart]:
    return ["weight", "bias"]


class HistogramSpec(_Strict):
    enabled: bool = True
    bins: Annotated[int, Field(ge=2, le=1024)] = 64
    # weight, bias: which tensors; grad, update: also their last batch's gradient and the
    # epoch's update (W_t - W_(t-1)), as "grad/<name>" and "update/<name>".
    include: list[HistogramPart] = Field(default_factory=_weights_and_biases, min_length=1)
    every: PositiveInt = 1
    # |w| below this counts as "near zero": the sparsity L1 is expected to produce.
    near_zero: Annotated[float, Field(gt=0.0)] = 1e-3

    @model_validator(mode="after")
    def _tensors(self) -> HistogramSpec:
        if not {"weight", "bias"} & set(self.include):
            raise ValueError("include: name weight or bias too (grad and update are theirs)")
        return self


class SnapshotSpec(_Strict):
    """Weight matrices over epochs (api: ``GET /runs/{id}/weights``): the first epoch, every
    ``every`` epochs, the last and the best, of each weight tensor (or of ``params``)."""

    enabled: bool = True
    # None: about five times over the run.
    every: PositiveInt | None = None
    params: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=64
    )
    # Values kept per tensor: a 128x784 fc1 (100,352) stays whole; a larger one is average-
    # pooled down to fit (the answer says from what to what).
    max_values: Annotated[int, Field(ge=16, le=1 << 20)] = 131_072
    dtype: Literal["float32", "float16"] = "float32"

    def epochs(self, epochs: int) -> frozenset[int]:
        """The epochs snapshotted on schedule (the best and an early last one come on top)."""
        if not self.enabled:
            return frozenset()
        every = self.every or max(1, math.ceil(epochs / 5))
        return frozenset({1, *range(every, epochs + 1, every), epochs})


def _best_last_and_onset() -> list[Literal["best", "last", "onset"]]:
    return ["best", "last", "onset"]


class CheckpointSpec(_Strict):
    """Which state_dicts the run keeps (api: ``GET /runs/{id}/checkpoints``): the best epoch's
    (lowest val_loss), the last trained epoch's, and the onset's (when the API's diagnosis
    finds one while the run trains: a worker's or a client's run); [] keeps none."""

    keep: list[Literal["best", "last", "onset"]] = Field(
        default_factory=_best_last_and_onset, max_length=3
    )


class EvaluationSpec(_Strict):
    """The per-class evaluation of the training and validation splits while training (api:
    ``GET /runs/{id}/per_class``), from the outputs each epoch scores anyway."""

    enabled: bool = True
    # Every this many epochs, and always at the last; None: about ten times over the run.
    every: PositiveInt | None = None
    # Points of the per-batch training loss (train_loss_batch) kept per epoch, each the mean of
    # a run of consecutive batches; 0: none.
    batch_points: Annotated[int, Field(ge=0, le=1000)] = 10

    def epochs(self, epochs: int) -> frozenset[int]:
        """The epochs evaluated per class while training."""
        if not self.enabled:
            return frozenset()
        every = self.every or max(1, math.ceil(epochs / 10))
        return frozenset({*range(every, epochs + 1, every), epochs})


class DiagnosisSpec(_Strict):
    """Ending a run when the API's diagnosis finds the onset of overfitting: the worker learns
    it from the answers to its heartbeats and ends the run as early stopping does, the best
    epoch's weights restored."""

    stop_on: Literal["onset"] | None = None
    # Epochs to go on training once the onset is known (0: stop at once).
    patience: Annotated[int, Field(ge=0, le=1000)] = 0


@dataclass(frozen=True)
class Resources:
    parameters: int
    data_elements: int
    activation_elements: int


class JobSpec(_Strict):
    """A complete, validated description of one training run. ``JobSpec()`` trains a digits MLP."""

    task: Task = "classification"
    dataset: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=MLPSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    # None picks the task's usual loss: cross_entropy, or mse for regression.
    loss: Literal["cross_entropy", "mse", "l1"] | None = None
    regularization: RegularizationSpec = Field(default_factory=RegularizationSpec)
    lr_schedule: LRScheduleSpec = Field(default_factory=NoSchedule)
    early_stopping: EarlyStoppingSpec | None = None
    epochs: Annotated[int, Field(gt=0, le=10_000)] = 20
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 64
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    histograms: HistogramSpec = Field(default_factory=HistogramSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    snapshots: SnapshotSpec = Field(default_factory=SnapshotSpec)
    checkpoints: CheckpointSpec = Field(default_factory=CheckpointSpec)
    diagnosis: DiagnosisSpec = Field(default_factory=DiagnosisSpec)
    # How train loss/accuracy are measured: "eval_pass" re-scores the training set in eval mode
    # after each epoch, so dropout does not inflate train loss and the gap is honest;
    # "running" is the mean over the epoch's batches (what the seeds print). Both are reported;
    # this picks which one is called train_loss.
    train_metrics: Literal["eval_pass", "running"] = "eval_pass"

    @model_validator(mode="after")
    def _check(self) -> JobSpec:
        classification = self.task == "classification"
        name = self.dataset.name
        if not classification and name in CLASSIFICATION_DATASETS:
            raise ValueError(f"task: regression needs a regression dataset, not {name!r}")
        if classification and name in REGRESSION_DATASETS:
            raise ValueError(f"task: {name!r} is a regression dataset")
        folds = self.dataset.folds
        if folds is not None and folds.stratified and not classification:
            raise ValueError("dataset.folds.stratified: only classification folds are stratified")
        loss = self.resolved_loss
        if classification and loss != "cross_entropy":
            raise ValueError(f"loss: classification uses cross_entropy, not {loss}")
        if not classification and loss == "cross_entropy":
            raise ValueError("loss: regression uses mse or l1, not cross_entropy")
        monitors: list[tuple[str, str]] = []
        if self.early_stopping:
            monitors.append(("early_stopping.monitor", self.early_stopping.monitor))
        if isinstance(self.lr_schedule, ReduceOnPlateauSpec):
            monitors.append(("lr_schedule.monitor", self.lr_schedule.monitor))
        for where, metric in monitors:
            if not classification and metric in ACCURACY_METRICS:
                raise ValueError(f"{where}: regression has no {metric}")
            if classification and metric in REGRESSION_METRICS:
                raise ValueError(f"{where}: classification has no {metric}")
        if self.dataset.augmentation is not None and len(self.input_shape() or []) != 3:
            raise ValueError(
                "dataset.augmentation: only image data ([channels, height, width]) is "
                f"augmented; dataset {name!r} gives {self.input_shape()}"
            )
        if isinstance(self.model, CNNSpec):
            shape = self.input_shape()
            if shape is None or len(shape) != 3:
                raise ValueError(
                    "model: a cnn needs image data ([channels, height, width]); "
                    f"dataset {name!r} gives {shape}"
                )
            smallest = min(shape[1:]) >> len(self.model.channels)
            if smallest < 1:
                raise ValueError(
                    f"model.channels: {len(self.model.channels)} pooling blocks shrink a "
                    f"{shape[1]}x{shape[2]} image to nothing"
                )
        return self

    def resources(self) -> Resources:
        """What the job will hold in memory, from the spec alone (the API checks it against its
        budget before accepting a job): parameters, data set elements, and activations (a
        training batch keeps every layer's outputs for the backward pass; a no-grad pass of
        EVAL_BATCH examples holds its widest layer)."""
        shape = self.input_shape() or TABULAR_SHAPES.get(self.dataset.name, [1])
        synthetic = self.dataset.synthetic or SyntheticSpec()
        if self.dataset.name == "synthetic":
            n_examples, n_classes = synthetic.n_samples, synthetic.n_classes
        else:
            n_examples, n_classes = DATASET_SIZES[self.dataset.name], 10
        outputs = n_classes if self.task == "classification" else 1
        parameters, layers = 0, []  # layers: elements each layer outputs, per example
        if isinstance(self.model, CNNSpec):
            channels, height, width = shape
            for out in self.model.channels:
                parameters += channels * out * 9 + out
                layers.append(out * height * width)
                channels, height, width = out, height // 2, width // 2
            features = channels * height * width
        else:
            features = math.prod(shape)
        for width_out in [*self.model.hidden, outputs]:
            parameters += features * width_out + width_out
            layers.append(width_out)
            features = width_out
        batch = min(self.batch_size, self.dataset.train_subset or n_examples, n_examples)
        train = batch * (math.prod(shape) + sum(layers))
        evaluate = min(EVAL_BATCH, n_examples) * max([math.prod(shape), *layers])
        return Resources(parameters, n_examples * math.prod(shape), max(train, evaluate))

    def input_shape(self) -> list[int] | None:
        """Shape of one example, known without loading data (None for tabular real data)."""
        if self.dataset.name == "synthetic":
            synthetic = self.dataset.synthetic or SyntheticSpec()
            return list(synthetic.shape)
        return IMAGE_SHAPES.get(self.dataset.name)

    @property
    def resolved_loss(self) -> str:
        if self.loss is not None:
            return self.loss
        return "cross_entropy" if self.task == "classification" else "mse"

    def canonical_json(self) -> str:
        """Every field spelled out, keys sorted: equal specs give equal text."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """Stable identity of the experiment, so repeats of the same spec can be found."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()
