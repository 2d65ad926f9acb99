"""How a data set is split: a test split held out first (a fraction, or the official one),
then validation (a fraction, the official test split, or one fold of k), then the training
subset. Indices only, in numpy: trainer.data turns them into device tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from trainer.dataspec import FoldSpec
from trainer.spec import JobSpec

# The test split does not depend on the run's seed: every run of a study, whatever its seed or
# fold, is scored on the same held-out examples, and none of them ever trains or selects on it.
TEST_SPLIT_SEED = 0


@dataclass(frozen=True)
class Arrays:
    x: np.ndarray  # (n, *shape), any numeric dtype
    y: np.ndarray
    index: np.ndarray  # each example's position in the data set (or official split) it is from


@dataclass(frozen=True)
class Splits:
    train: Arrays
    val: Arrays
    test: Arrays | None


def split(
    x: np.ndarray,
    y: np.ndarray,
    official_test: tuple[np.ndarray, np.ndarray] | None,
    spec: JobSpec,
) -> Splits:
    """The run's train, validation and (when the spec asks for one) test splits."""
    data, classification = spec.dataset, spec.task == "classification"
    pool = Arrays(x, y, np.arange(len(y)))
    official = None
    if official_test is not None:
        official = Arrays(*official_test, np.arange(len(official_test[1])))
    test: Arrays | None = None
    if data.test_fraction == "official":
        test = official
    elif data.test_fraction is not None:
        test_idx, rest_idx = _held_out(y, data.test_fraction, TEST_SPLIT_SEED, classification)
        test, pool = _take(pool, test_idx), _take(pool, rest_idx)
    if data.use_official_test:
        assert official is not None
        train, val = pool, official
    else:
        if data.folds is not None:
            train_idx, val_idx = fold_indices(pool.y, data.folds, classification)
        else:
            val_idx, train_idx = _held_out(
                pool.y, data.val_fraction, spec.seed % 2**32, classification
            )
        train, val = _take(pool, train_idx), _take(pool, val_idx)
    keep = training_subset(len(train.y), spec)
    if keep is not None:
        train = _take(train, keep)
    if data.label_noise and classification:
        train = Arrays(
            train.x, noisy_labels(train.y, data.label_noise, data.label_noise_seed), train.index
        )
    return Splits(train, val, test)


def noisy_labels(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """``y`` with round(fraction * n) labels, chosen at random, replaced by classes drawn
    uniformly from those ``y`` holds (a replaced label may come out as it was)."""
    rng = np.random.default_rng(seed)
    out = y.copy()
    chosen = rng.permutation(len(y))[: round(fraction * len(y))]
    classes = np.unique(y)
    out[chosen] = rng.choice(classes, size=len(chosen))
    return out


def _take(arrays: Arrays, idx: np.ndarray) -> Arrays:
    return Arrays(arrays.x[idx], arrays.y[idx], arrays.index[idx])


def _held_out(
    y: np.ndarray, fraction: float, seed: int, classification: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(held-out, rest) indices: a seeded split, stratified when every class can be."""
    stratify = classification and _stratifiable(y, fraction)
    rest, held = train_test_split(
        np.arange(len(y)),
        test_size=fraction,
        random_state=seed,
        stratify=y if stratify else None,
    )
    return held, rest


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


def training_subset(n_train: int, spec: JobSpec) -> np.ndarray | None:
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


def _stratifiable(y: np.ndarray, fraction: float) -> bool:
    counts = np.bincount(y.astype(np.int64))
    counts = counts[counts > 0]
    n_held = math.ceil(len(y) * fraction)
    return bool(counts.min() >= 2 and n_held >= len(counts) and len(y) - n_held >= len(counts))
