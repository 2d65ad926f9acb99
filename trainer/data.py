"""Data sets as whole tensors on the training device.

Everything fits in memory (digits, MNIST, CIFAR-10 are at most a few hundred MB as float32), so
the training loop indexes device tensors instead of iterating a DataLoader: no per-item Python,
no host-to-device copy per batch. torchvision's real dataset classes do the file reading; we take
their raw ``data``/``targets`` arrays and skip the per-item PIL transforms.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.config import get_settings
from trainer.dataspec import DataSpec, SyntheticSpec
from trainer.spec import JobSpec
from trainer.splits import Splits, split


@dataclass(frozen=True)
class DataBundle:
    x_train: torch.Tensor  # float32, (n, *input_shape), on the device
    y_train: torch.Tensor  # int64 labels (n,), or float32 standardised targets (n, 1)
    x_val: torch.Tensor
    y_val: torch.Tensor
    input_shape: tuple[int, ...]
    n_classes: int | None  # None for regression
    class_names: list[str] | None
    # Regression targets are standardised for training; these undo it for RMSE/MAE.
    target_mean: float = 0.0
    target_std: float = 1.0
    # The held-out test split (dataset.test_fraction), scored once at the evaluated epoch.
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    # Each validation example's position in the data set it came from (misclassified examples).
    val_index: np.ndarray | None = None
    # SHA-256 of the data set (its examples and labels) and of each split (its examples'
    # positions and labels as trained on): two runs that claim the same split can be checked.
    fingerprints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Raw:
    x: np.ndarray  # (n, *shape), any numeric dtype
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str] | None


def load_data(spec: JobSpec, device: torch.device) -> DataBundle:
    data = spec.dataset
    raw = _load_raw(data.model_dump_json(), spec.task, spec.seed)
    official = None if raw.x_test is None or raw.y_test is None else (raw.x_test, raw.y_test)
    splits = split(raw.x, raw.y, official, spec)
    parts = [splits.train, splits.val, *([splits.test] if splits.test else [])]
    xs = _normalize(
        [torch.as_tensor(p.x, dtype=torch.float32, device=device) for p in parts],
        data.normalize,
    )
    common: dict[str, Any] = dict(
        input_shape=tuple(xs[0].shape[1:]),
        val_index=splits.val.index,
        fingerprints=fingerprints(raw, splits),
    )
    if spec.task == "classification":
        n_classes = len(raw.class_names) if raw.class_names else int(raw.y.max()) + 1
        ys = [torch.as_tensor(p.y, dtype=torch.int64, device=device) for p in parts]
        common.update(
            n_classes=n_classes, class_names=raw.class_names or [str(i) for i in range(n_classes)]
        )
    else:
        mean = float(np.mean(splits.train.y))
        std = float(np.std(splits.train.y)) or 1.0
        ys = [
            torch.as_tensor((p.y - mean) / std, dtype=torch.float32, device=device).view(-1, 1)
            for p in parts
        ]
        common.update(n_classes=None, class_names=None, target_mean=mean, target_std=std)
    if splits.test:
        common.update(x_test=xs[2], y_test=ys[2])
    return DataBundle(x_train=xs[0], y_train=ys[0], x_val=xs[1], y_val=ys[1], **common)


def fingerprints(raw: _Raw, splits: Splits) -> dict[str, str]:
    """SHA-256 of the data set and of each split (little-endian bytes, each array's shape and
    dtype included), so the same data gives the same text on any machine."""
    whole = [raw.x, raw.y, *([raw.x_test, raw.y_test] if raw.x_test is not None else [])]
    out = {"dataset": _sha256(*whole)}
    named = [("train", splits.train), ("val", splits.val), ("test", splits.test)]
    for name, part in named:
        if part is not None:
            out[name] = _sha256(part.index.astype("<i8"), part.y)
    return out


def _sha256(*arrays: Any) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        little = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{little.shape}{little.dtype.str}".encode())
        digest.update(little.data.cast("B"))
    return digest.hexdigest()


def _normalize(xs: list[torch.Tensor], how: str) -> list[torch.Tensor]:
    """Scale every split by statistics of the first, the training split, so the others stay
    unseen."""
    if how == "none":
        return xs
    if how == "standard":
        mean, std = xs[0].mean(), xs[0].std().clamp_min(1e-8)
        return [(x - mean) / std for x in xs]
    lo, hi = xs[0].min(), xs[0].max()
    span = (hi - lo).clamp_min(1e-8)
    xs = [(x - lo) / span for x in xs]
    if how == "symmetric":
        return [x * 2 - 1 for x in xs]
    return xs


@lru_cache(maxsize=4)
def _load_raw(data_json: str, task: str, seed: int) -> _Raw:
    """Read a data set once per process; a worker running many jobs keeps it in memory."""
    data = DataSpec.model_validate_json(data_json)
    if data.name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return _Raw(
            digits.images[:, None, :, :],
            digits.target,
            None,
            None,
            [str(c) for c in digits.target_names],
        )
    if data.name == "diabetes":
        from sklearn.datasets import load_diabetes

        diabetes = load_diabetes()
        return _Raw(diabetes.data, diabetes.target, None, None, None)
    if data.name == "synthetic":
        return _synthetic(data.synthetic or SyntheticSpec(), task, seed)
    return _torchvision(data)


def _synthetic(syn: SyntheticSpec, task: str, seed: int) -> _Raw:
    from sklearn.datasets import make_classification, make_regression

    n_features = math.prod(syn.shape)
    rng = seed % 2**32
    if task == "regression":
        x, y = make_regression(
            n_samples=syn.n_samples,
            n_features=n_features,
            n_informative=min(n_features, syn.n_informative or 10),
            noise=syn.noise,
            random_state=rng,
        )
        return _Raw(x.astype(np.float32).reshape(-1, *syn.shape), y, None, None, None)
    needed = math.ceil(math.log2(syn.n_classes))
    informative = syn.n_informative or max(needed + 2, min(16, n_features))
    informative = min(informative, n_features)
    if 2**informative < syn.n_classes:
        raise ValueError(
            f"dataset.synthetic: {syn.n_classes} classes need at least {needed} "
            f"informative features, got {informative}"
        )
    x, y = make_classification(
        n_samples=syn.n_samples,
        n_features=n_features,
        n_informative=informative,
        n_redundant=0,
        n_repeated=0,
        n_classes=syn.n_classes,
        n_clusters_per_class=1,
        class_sep=syn.class_sep,
        flip_y=syn.label_noise,
        random_state=rng,
    )
    return _Raw(
        x.astype(np.float32).reshape(-1, *syn.shape),
        y,
        None,
        None,
        [str(c) for c in range(syn.n_classes)],
    )


def data_folder(data: DataSpec) -> Path:
    """Where ``data`` lives: the configured data directory, or a folder inside it. The spec's
    pattern already forbids absolute paths and ".."; resolving links here keeps a link inside
    the data directory from leading out of it."""
    root = get_settings().data_dir.resolve()
    folder = (root / data.data_dir).resolve() if data.data_dir else root
    if not folder.is_relative_to(root):
        raise ValueError(f"dataset.data_dir: {data.data_dir!r} leads outside the data directory")
    return folder


def _torchvision(data: DataSpec) -> _Raw:
    from torchvision import datasets

    root = data_folder(data)
    shown = f"data directory folder {data.data_dir!r}" if data.data_dir else "data directory"
    cls = {
        "mnist": datasets.MNIST,
        "fashion_mnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
    }[data.name]
    try:
        train = cls(root=str(root), train=True, download=data.download)
        test = cls(root=str(root), train=False, download=data.download)
    except RuntimeError as exc:  # torchvision's "Dataset not found"
        # The message goes back to the user: it names their folder, never the worker's paths.
        raise FileNotFoundError(
            f"dataset.name: {data.name} not found in the worker's {shown}; put the files there "
            "or set dataset.download=true on a machine with internet access"
        ) from exc

    def arrays(ds: object) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(ds.data)  # type: ignore[attr-defined]
        # MNIST-style: (n, 28, 28) uint8; CIFAR: (n, 32, 32, 3) uint8 -> channels first.
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return x, np.asarray(ds.targets, dtype=np.int64)  # type: ignore[attr-defined]

    x, y = arrays(train)
    x_test, y_test = arrays(test)
    return _Raw(x, y, x_test, y_test, [str(c) for c in train.classes])
