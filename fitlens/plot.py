"""One-line matplotlib figures for notebooks (``pip install 'fitlens[plot]'``):

from fitlens import plot
plot.curves(run)                      # train/val loss, best epoch and onset marked
plot.histogram_heatmap(run, "fc1.weight")
plot.histogram_overlay([a, b], "fc1.weight", step=30)
plot.confusion(run)
plot.weights(run, "fc1.weight", epoch=10)                # seed 003: the whole matrix
plot.weights(run, "fc1.weight", epoch=10, diff_from=1)   # how it changed
plot.weight_images(run, "fc1.weight", epoch=10)          # each unit as an input image
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fitlens.runs import Run


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    return ax


def curves(run: Run, keys: Sequence[str] = ("train_loss", "val_loss"), ax: Any = None) -> Any:
    """The curves over epochs (non-finite points are gaps), with the best epoch and the
    overfitting onset of the run's diagnosis marked."""
    ax = _axes(ax)
    frame = run.curves(list(keys))
    for key in frame.columns:
        ax.plot(frame.index, frame[key], label=key, linestyle="--" if "train" in key else "-")
    d = run.refresh().diagnosis or {}
    if d.get("best_epoch"):
        ax.axvline(d["best_epoch"], color="green", linestyle=":", label=f"best {d['best_epoch']}")
    if d.get("onset_epoch"):
        ax.axvline(
            d["onset_epoch"], color="orange", linestyle=":", label=f"onset {d['onset_epoch']}"
        )
    ax.set(xlabel="epoch", ylabel="value", title=f"run {run.id}: {run.name}")
    ax.legend()
    return ax


def histogram_heatmap(run: Run, param: str, bins: int = 48, ax: Any = None) -> Any:
    """A parameter's histograms over epochs (epoch x value), colour = log10(1 + count)."""
    import numpy as np

    ax = _axes(ax)
    edges, counts, steps = run.histograms(param, shared_bins=bins)
    x = np.append(steps - 0.5, steps[-1] + 0.5)  # a cell per epoch, centred on it
    image = ax.pcolormesh(x, edges, np.log10(1 + counts.T), shading="flat", cmap="Blues")
    ax.figure.colorbar(image, ax=ax, label="log10(1 + count)")
    ax.set(xlabel="epoch", ylabel=f"{param} value", title=f"run {run.id}: {param}")
    return ax


def histogram_overlay(
    runs: Sequence[Run], param: str, step: int, bins: int = 48, ax: Any = None
) -> Any:
    """One parameter of several runs at one epoch, on shared bins (e.g. no reg. vs L1 vs L2)."""
    ax = _axes(ax)
    client = runs[0].client
    data = client.get(
        "/histograms/overlay",
        runs=",".join(str(r.id) for r in runs),
        param=param,
        step=step,
        bins=bins,
    )
    edges = data["edges"]
    for r in data["runs"]:
        ax.stairs(r["counts"], edges, label=f"{r['run_id']} {r['name']}", fill=True, alpha=0.4)
    ax.set(xlabel=f"{param} value", ylabel="count", title=f"{param} at epoch {step}")
    ax.legend()
    return ax


def confusion(run: Run, ax: Any = None) -> Any:
    """The evaluation's confusion matrix (rows: true class, columns: predicted)."""
    import numpy as np

    ax = _axes(ax)
    ev = run.evaluation()
    matrix = np.array(ev["confusion_matrix"])
    ax.imshow(matrix, cmap="Blues")
    labels = ev["labels"]
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=f"run {run.id}",
    )
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
    return ax


def weights(run: Run, param: str, epoch: int, diff_from: int | None = None, ax: Any = None) -> Any:
    """A weight matrix as an image (rows: units, columns: inputs), seed 003's ``imshow``; with
    ``diff_from`` its change since that epoch, on a scale centred on zero."""
    ax = _axes(ax)
    values = run.weights(param, epoch, diff_from)
    matrix = values.reshape(values.shape[0], -1)
    top = float(abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-top, vmax=top)
    ax.figure.colorbar(image, ax=ax, label="change" if diff_from is not None else "weight")
    since = f" - epoch {diff_from}" if diff_from is not None else ""
    ax.set(xlabel="input", ylabel="unit", title=f"run {run.id}: {param}, epoch {epoch}{since}")
    return ax


def weight_images(
    run: Run, param: str, epoch: int, columns: int = 16, input_shape: Sequence[int] | None = None
) -> Any:
    """Each unit's (class's, filter's) weights as an image of the input's shape, in a grid."""
    import matplotlib.pyplot as plt

    images, indices, kind = run.weight_images(param, epoch, input_shape)
    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 0.8), squeeze=False)
    top = float(abs(images).max()) or 1.0
    for ax, image, index in zip(axes.flat, images, indices, strict=False):
        ax.imshow(image, cmap="RdBu_r", vmin=-top, vmax=top)
        ax.set_title(str(index), fontsize=6)
    for ax in axes.flat:
        ax.axis("off")
    figure.suptitle(f"run {run.id}: {param} {kind}, epoch {epoch}")
    return figure
