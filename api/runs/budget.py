"""How big a job this server takes: a 422 before a worker would be handed more than it can
hold (FITLENS_MAX_MODEL_PARAMETERS, _DATA_ELEMENTS, _ACTIVATION_ELEMENTS) or the job would
write more than a run may store (FITLENS_MAX_RUN_STORAGE_MB); a team's runs together are held
to FITLENS_MAX_TEAM_STORAGE_MB (api.runs.service)."""

from __future__ import annotations

import math

from api.core.config import Settings
from api.core.exceptions import Invalid
from trainer.spec import CNNSpec, JobSpec

# What stored rows cost, rounded up: a histogram's edges and counts as JSON text (measured: 21.4
# characters a float32 edge, 7.8 a count below 5,000), plus the row and its index; an epoch's
# metric points (about 16 keys with their rollups); the evaluation (confusion matrix, ROC,
# per-class table) and one 64x64 weight heat-map per linear layer.
HISTOGRAM_BYTES_PER_BIN = 30
HISTOGRAM_ROW_BYTES = 200
METRICS_BYTES_PER_EPOCH = 1_600
WEIGHT_METRICS_BYTES_PER_LAYER = 300  # three keys of trainer.weights, 100 bytes a point
EVALUATION_BYTES = 100_000
HEATMAP_BYTES = 64 * 64 * 20
MiB = 1 << 20


def storage_estimate(spec: JobSpec) -> int:
    """The most bytes the job's run will store, from its spec alone: histograms (tensors x
    bins x logged epochs), metric points per epoch, events, the evaluation."""
    model = spec.model
    linear = len(model.hidden) + 1
    layers = linear + (len(model.channels) if isinstance(model, CNNSpec) else 0)
    histograms = 0
    include = set(spec.histograms.include)
    if spec.histograms.enabled:
        logged = math.ceil(spec.epochs / spec.histograms.every) + 1
        # weight, bias pick the tensors; grad and update add a histogram to each.
        tensors = (
            layers * len(include & {"weight", "bias"}) * (1 + len(include - {"weight", "bias"}))
        )
        per_row = HISTOGRAM_BYTES_PER_BIN * spec.histograms.bins + HISTOGRAM_ROW_BYTES
        histograms = logged * tensors * per_row
    evaluation = EVALUATION_BYTES + linear * HEATMAP_BYTES
    movement = spec.epochs * layers * WEIGHT_METRICS_BYTES_PER_LAYER  # norm, drift, update ratio
    metrics = spec.epochs * METRICS_BYTES_PER_EPOCH
    return histograms + metrics + movement + evaluation + snapshot_estimate(spec)


def snapshot_estimate(spec: JobSpec) -> int:
    """The most bytes the run's weight snapshots take: every parameter (biases counted, to
    be safe) at each scheduled epoch, the best and an early last one."""
    snapshots = spec.snapshots
    if not snapshots.enabled:
        return 0
    itemsize = 2 if snapshots.dtype == "float16" else 4
    return (len(snapshots.epochs(spec.epochs)) + 2) * spec.resources().parameters * itemsize


def check_budget(spec: JobSpec, settings: Settings) -> None:
    """A 422 for a job bigger than this server lets one worker hold, or one run store
    (FITLENS_MAX_*)."""
    needs = spec.resources()
    field = "spec.dataset.synthetic.n_samples" if spec.dataset.synthetic else "spec.dataset"
    for need, limit, what, where, setting in (
        (
            needs.parameters,
            settings.max_model_parameters,
            "parameters",
            "spec.model",
            "MODEL_PARAMETERS",
        ),
        (needs.data_elements, settings.max_data_elements, "data elements", field, "DATA_ELEMENTS"),
        (
            needs.activation_elements,
            settings.max_activation_elements,
            "activation elements",
            "spec.batch_size",
            "ACTIVATION_ELEMENTS",
        ),
    ):
        if need > limit:
            raise Invalid(
                where,
                f"the job needs {need:,} {what}; this server allows at most {limit:,} "
                f"(FITLENS_MAX_{setting})",
            )
    stored = storage_estimate(spec)
    snapshots = snapshot_estimate(spec)
    if snapshots > settings.max_run_storage_mb * MiB:
        raise Invalid(
            "spec.snapshots",
            f"weight snapshots would store up to {snapshots / MiB:,.0f} MiB (parameters x "
            f"epochs kept); this server's budget is {settings.max_run_storage_mb:,} MiB a run "
            "(FITLENS_MAX_RUN_STORAGE_MB): snapshots.every, snapshots.params, or float16",
        )
    if stored > settings.max_run_storage_mb * MiB:
        raise Invalid(
            "spec.histograms",
            f"the run would store up to {stored / MiB:,.0f} MiB (histograms: tensors x bins x "
            f"epochs / every); this server's budget is {settings.max_run_storage_mb:,} MiB a "
            "run (FITLENS_MAX_RUN_STORAGE_MB): fewer bins, histograms.every, or fewer epochs",
        )


def check_team_budget(used: int, budget_mb: int | None, field: str = "spec") -> None:
    """A 422 when a team's runs, the new ones included, would store more than its budget."""
    if budget_mb is not None and used > budget_mb * MiB:
        raise Invalid(
            field,
            f"this team's runs would store up to {used / MiB:,.0f} MiB; its budget is "
            f"{budget_mb:,} MiB (FITLENS_MAX_TEAM_STORAGE_MB): delete runs or ask for less",
        )
