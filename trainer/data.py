"""Data sets as whole tensors on the training device.

Everything fits in memory (digits, MNIST, CIFAR-10 are at most a few hundred MB as float32), so
the training loop indexes device tensors instead of iterating a DataLoader: no per-item Python,
no host-to-device copy per batch. torchvision's real dataset classes do the file reading; we take
their raw ``data``/``targets`` arrays and skip the per-item PIL transforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from trainer.config import get_settings
from trainer.dataspec import DataSpec, FoldSpec, SyntheticSpec
from trainer.spec import JobSpec


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


@dataclass(frozen=True)
class _Raw:
    x: np.ndarray  # (n, *shape), any numeric dtype
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str] | None


def fold_indices(
    y: np.ndarray, folds: FoldSpec, classification: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of fold ``folds.index`` of ``folds.k``: the k validation folds
    are disjoint and together cover every example. Stratified (scikit-learn's StratifiedKFold)
    when asked, or by default when classifying and every class has at least k examples."""
    stratified = folds.stratified
    if stratified is None:
        stratified = classification and int(np.unique(y, return_counts=True)[1].min()) >= folds.k
    splitter = (StratifiedKFold if stratified else KFold)(
        n_splits=folds.k, shuffle=True, random_state=folds.seed
    )
    if len(y) < folds.k:
        raise ValueError(f"dataset.folds.k: {folds.k} folds of {len(y)} examples")
    train_idx, val_idx = list(splitter.split(np.zeros(len(y)), y))[folds.index]
    return train_idx, val_idx


def load_data(spec: JobSpec, device: torch.device) -> DataBundle:
    data = spec.dataset
    raw = _load_raw(data.model_dump_json(), spec.task, spec.seed)
    classification = spec.task == "classification"
    x_train, y_train, x_val, y_val = _split(raw, spec)
    keep = _training_subset(len(y_train), spec)
    if keep is not None:
        x_train, y_train = x_train[keep], y_train[keep]

    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    xt, xv = _normalize(xt, xv, data.normalize)

    if classification:
        n_classes = len(raw.class_names) if raw.class_names else int(raw.y.max()) + 1
        yt = torch.as_tensor(y_train, dtype=torch.int64, device=device)
        yv = torch.as_tensor(y_val, dtype=torch.int64, device=device)
        return DataBundle(
            xt,
            yt,
            xv,
            yv,
            tuple(xt.shape[1:]),
            n_classes,
            raw.class_names or [str(i) for i in range(n_classes)],
        )
    mean, std = float(np.mean(y_train)), float(np.std(y_train)) or 1.0
    yt = torch.as_tensor((y_train - mean) / std, dtype=torch.float32, device=device).view(-1, 1)
    yv = torch.as_tensor((y_val - mean) / std, dtype=torch.float32, device=device).view(-1, 1)
    return DataBundle(xt, yt, xv, yv, tuple(xt.shape[1:]), None, None, mean, std)


def _split(raw: _Raw, spec: JobSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): the official test set as validation, one fold of
    ``folds``, or a seeded split (stratified when every class can be)."""
    data = spec.dataset
    if data.use_official_test:
        assert raw.x_test is not None and raw.y_test is not None
        return raw.x, raw.y, raw.x_test, raw.y_test
    classification = spec.task == "classification"
    if data.folds is not None:
        train_idx, val_idx = fold_indices(raw.y, data.folds, classification)
    else:
        stratify = classification and _stratifiable(raw.y, data.val_fraction)
        train_idx, val_idx = train_test_split(
            np.arange(len(raw.y)),
            test_size=data.val_fraction,
            random_state=spec.seed % 2**32,
            stratify=raw.y if stratify else None,
        )
    return raw.x[train_idx], raw.y[train_idx], raw.x[val_idx], raw.y[val_idx]


def _training_subset(n_train: int, spec: JobSpec) -> np.ndarray | None:
    """The training examples kept (sorted indices) by ``train_fraction`` and then
    ``train_subset`` (a learning curve's sizes), drawn with the run's seed; None: all."""
    data = spec.dataset
    keep = np.arange(n_train)
    if data.train_fraction is not None:
        drawn = np.random.default_rng(spec.seed).permutation(len(keep))
        keep = keep[np.sort(drawn[: max(1, round(data.train_fraction * len(keep)))])]
    if data.train_subset is not None:
        if data.train_subset > len(keep):
            raise ValueError(
                f"dataset.train_subset: {data.train_subset} is more than the "
                f"{len(keep)} training examples"
            )
        drawn = np.random.default_rng(spec.seed).permutation(len(keep))
        keep = keep[np.sort(drawn[: data.train_subset])]
    return keep if len(keep) < n_train else None


def _stratifiable(y: np.ndarray, val_fraction: float) -> bool:
    counts = np.bincount(y.astype(np.int64))
    counts = counts[counts > 0]
    n_val = math.ceil(len(y) * val_fraction)
    return bool(counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts))


def _normalize(
    x_train: torch.Tensor, x_val: torch.Tensor, how: str
) -> tuple[torch.Tensor, torch.Tensor]:
    # Statistics come from the training split only, so validation stays unseen.
    if how == "none":
        return x_train, x_val
    if how == "standard":
        mean, std = x_train.mean(), x_train.std().clamp_min(1e-8)
        return (x_train - mean) / std, (x_val - mean) / std
    lo, hi = x_train.min(), x_train.max()
    span = (hi - lo).clamp_min(1e-8)
    x_train, x_val = (x_train - lo) / span, (x_val - lo) / span
    if how == "symmetric":
        return x_train * 2 - 1, x_val * 2 - 1
    return x_train, x_val


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
