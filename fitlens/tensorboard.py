"""TensorBoard logs as fitlens runs, read with TensorBoard's own event reader (the
``tensorboard`` package: ``pip install "fitlens[tensorboard]"``).

Each directory holding event files is a run (named by its path under the log directory);
its scalars become metrics by step, its histograms fitlens histograms. Both ways of writing
are read: ``torch.utils.tensorboard.SummaryWriter`` (and TF1) scalars and histograms, and
TF2's tensor summaries of the scalars and histograms plugins.

How a tag becomes a metric key (``metric_key``): a tag of two parts, a split and a measure in
either order (``Loss/train``, ``train/loss``, ``Accuracy/val``, ``loss/validation``), is
``<split>_<measure>`` (``train_loss``, ``val_accuracy``): the keys the diagnosis reads.
Splits: train/training, val/valid/validation/eval, test; measures: loss, acc/accuracy and
any other word. Any other tag is kept as it is, its characters outside a fitlens key's
(letters, digits, ``_ . / : -``) turned to ``_``. ``--map TAG=KEY`` overrides both.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fitlens.imported import ImportedRun

SPLITS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "test": "test",
}
MEASURES = {"acc": "accuracy", "accuracy": "accuracy", "loss": "loss"}
_NOT_KEY = re.compile(r"[^A-Za-z0-9_./:-]")


def metric_key(tag: str, mapping: Mapping[str, str] | None = None) -> str:
    """The fitlens metric key of a TensorBoard tag (the module's rule; ``mapping`` first)."""
    if mapping and tag in mapping:
        return mapping[tag]
    parts = [p.strip().lower() for p in tag.split("/")]
    if len(parts) == 2:
        for split, measure in (parts, parts[::-1]):
            if split in SPLITS and measure and measure not in SPLITS:
                word = MEASURES.get(measure, _NOT_KEY.sub("_", measure))
                return f"{SPLITS[split]}_{word}"[:100]
    return _NOT_KEY.sub("_", tag.strip())[:100] or "_"


def run_directories(logdir: Path) -> list[Path]:
    """Every directory under ``logdir`` (itself included) that holds event files."""
    from tensorboard.backend.event_processing import io_wrapper

    return sorted(Path(d) for d in io_wrapper.GetLogdirSubdirectories(str(logdir)))


def read_logdir(logdir: Path, mapping: Mapping[str, str] | None = None) -> Iterator[ImportedRun]:
    """Each run of ``logdir`` as fitlens would store it."""
    root = logdir.resolve()
    for directory in run_directories(root):
        yield read_run(root, directory, mapping)


def read_run(root: Path, directory: Path, mapping: Mapping[str, str] | None) -> ImportedRun:
    from tensorboard.backend.event_processing import event_accumulator as ea

    accumulator = ea.EventAccumulator(
        str(directory), size_guidance=ea.STORE_EVERYTHING_SIZE_GUIDANCE
    )
    accumulator.Reload()
    relative = directory.relative_to(root).as_posix()
    name = root.name if relative == "." else relative
    files = sorted(p.name for p in directory.iterdir() if "tfevents" in p.name)
    # Who the run is, across imports: its path in the log directory and its event files'
    # names (which hold the writer's host, pid and start time), not where the directory lies.
    identity = hashlib.sha256(f"{relative}|{'|'.join(files)}".encode()).hexdigest()[:20]
    run = ImportedRun(identity=f"tensorboard:{identity}", name=name[:200])
    tags = accumulator.Tags()
    for tag in tags.get("scalars", []):
        key = metric_key(tag, mapping)
        run.renamed[tag] = key
        for e in accumulator.Scalars(tag):
            run.points.append((key, e.step, float(e.value), e.wall_time))
    for tag in tags.get("histograms", []):
        for h in accumulator.Histograms(tag):
            binned = _v1_histogram(tag, h.step, h.histogram_value)
            if binned is not None:
                run.histograms.append(binned)
    for tag in tags.get("tensors", []):
        _read_tensors(accumulator, tag, run, mapping)
    return run


def _read_tensors(accumulator: Any, tag: str, run: ImportedRun, mapping: Any) -> None:
    """TF2's summaries: scalars and histograms written as tensors, told apart by plugin."""
    from tensorboard.util import tensor_util

    plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
    if plugin not in ("scalars", "histograms"):
        return
    key = metric_key(tag, mapping)
    for event in accumulator.Tensors(tag):
        array = tensor_util.make_ndarray(event.tensor_proto)
        if plugin == "scalars" and array.size == 1:
            run.renamed[tag] = key
            run.points.append((key, event.step, float(array.reshape(())), event.wall_time))
        elif plugin == "histograms" and array.ndim == 2 and array.shape[1] == 3 and len(array):
            lefts, rights, counts = array[:, 0], array[:, 1], array[:, 2]
            edges = [float(x) for x in lefts] + [float(rights[-1])]
            binned = _binned(tag, event.step, edges, [float(c) for c in counts], None)
            if binned is not None:
                run.histograms.append(binned)


def _v1_histogram(tag: str, step: int, h: Any) -> dict[str, Any] | None:
    """A HistogramProto (right bucket limits, counts, min, max, sum, sum of squares) as
    fitlens's bins: leading empty buckets dropped (PyTorch's writer stores the left edge as
    an empty bucket's limit), else the first starts at the values' min; the last (which
    TensorFlow may close at DBL_MAX) ends at their max."""
    rights = [float(x) for x in h.bucket_limit]
    counts = [float(c) for c in h.bucket]
    if not rights or len(rights) != len(counts) or h.num <= 0:
        return None
    low, high = float(h.min), float(h.max)
    # The last bucket ends at the values' max when that is inside it (TensorFlow may close it
    # at DBL_MAX); the first starts at their min (its own left limit is not stored).
    if len(rights) > 1 and rights[-2] < high < rights[-1]:
        rights[-1] = high
    left = None
    while len(counts) > 1 and counts[0] == 0:  # an empty bucket's limit is the next's start
        left = rights.pop(0)
        counts.pop(0)
    if left is None:
        width = rights[1] - rights[0] if len(rights) > 1 else max(abs(rights[0]), 1.0)
        left = low if low < rights[0] else rights[0] - width
    summary = {"min": low, "max": high}
    mean = h.sum / h.num
    variance = max(h.sum_squares / h.num - mean * mean, 0.0)
    summary |= {"mean": mean, "std": math.sqrt(variance), "l2": math.sqrt(h.sum_squares)}
    return _binned(tag, step, [left, *rights], counts, summary)


def _binned(
    tag: str, step: int, edges: list[float], counts: list[float], summary: dict[str, float] | None
) -> dict[str, Any] | None:
    """The API's histogram shape, or None for bins it cannot hold (not increasing, too many)."""
    pairs = [(e, c) for e, c in zip(edges[1:], counts, strict=True)]
    kept_edges, kept_counts = [edges[0]], []
    for edge, count in pairs:  # drop empty buckets of zero width (TF1's can repeat a limit)
        if edge > kept_edges[-1]:
            kept_edges.append(edge)
            kept_counts.append(count)
        elif kept_counts:
            kept_counts[-1] += count
    if not kept_counts or len(kept_counts) > 4096 or step < 0:
        return None
    if not all(math.isfinite(e) for e in kept_edges):
        return None
    body: dict[str, Any] = {
        "param": tag[:200],
        "step": int(step),
        "edges": kept_edges,
        "counts": kept_counts,
        "numel": int(sum(kept_counts)),
    }
    return body | ({k: v for k, v in summary.items() if math.isfinite(v)} if summary else {})
