"""What a job trains on: the data set, its split (a validation fraction, the official test split,
or one fold of k), and how much of it. Part of the job spec (trainer.spec), free of torch."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "synthetic", "diabetes"]
CLASSIFICATION_DATASETS: frozenset[str] = frozenset({"digits", "mnist", "fashion_mnist", "cifar10"})
REGRESSION_DATASETS: frozenset[str] = frozenset({"diabetes"})
# Datasets with an official held-out test split that can serve as the validation set.
OFFICIAL_TEST_SPLIT: frozenset[str] = frozenset({"mnist", "fashion_mnist", "cifar10"})
TORCHVISION_DATASETS = OFFICIAL_TEST_SPLIT
# Per-example shape of the image data sets (digits are 8x8 grey images).
IMAGE_SHAPES: dict[str, list[int]] = {
    "digits": [1, 8, 8],
    "mnist": [1, 28, 28],
    "fashion_mnist": [1, 28, 28],
    "cifar10": [3, 32, 32],
}
# Examples in each data set (training and official test splits together), and the features of
# one tabular example: enough to size a job before any data is read.
DATASET_SIZES: dict[str, int] = {
    "digits": 1797,
    "diabetes": 442,
    "mnist": 70_000,
    "fashion_mnist": 70_000,
    "cifar10": 60_000,
}
TABULAR_SHAPES: dict[str, list[int]] = {"diabetes": [10]}
# Classes of each classification data set (synthetic data say theirs in their spec).
DATASET_CLASSES: dict[str, int] = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10}

Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class Strict(BaseModel):
    # Unknown keys are errors: a typo such as "dropuot" must not silently train without dropout.
    # Every number must be finite: Infinity in a weight decay or an init std only fails later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SyntheticSpec(Strict):
    """Seeded random data (scikit-learn's make_classification / make_regression)."""

    n_samples: PositiveInt = 2000
    # Per-sample shape: [features] for an MLP, [channels, height, width] for a CNN.
    shape: list[PositiveInt] = Field(default_factory=lambda: [64], min_length=1, max_length=3)
    n_classes: Annotated[int, Field(ge=2, le=1000)] = 10
    n_informative: PositiveInt | None = None
    class_sep: Annotated[float, Field(gt=0)] = 1.0
    # Fraction of labels flipped at random: caps the reachable accuracy, like real label noise.
    label_noise: Probability = 0.0
    # Regression only: std of the gaussian noise added to the target.
    noise: Annotated[float, Field(ge=0)] = 0.0


# A folder *inside* the trainer's data directory: relative, plain names, no "..". A spec comes
# from a user and must not reach anywhere else on the worker's disk (checked again, after
# resolving links, where the data is read).
DataDir = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        # Each part starts with a letter, digit, "_" or "-": so no "..", ".", or hidden folder.
        pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$",
        description="a folder inside the worker's data directory (FITLENS_DATA_DIR)",
    ),
]


class FoldSpec(Strict):
    """k-fold cross-validation: validate on fold ``index`` of ``k``, train on the others. The
    folds split the whole data set but its test split (``test_fraction``; an official test
    split is not used otherwise), shuffled by ``seed`` (not the run's seed: every
    configuration of a study sees the same folds)."""

    k: Annotated[int, Field(ge=2, le=50)] = 5
    index: Annotated[int, Field(ge=0, le=49)] = 0
    # Keep each class's share in every fold (classification only); None: when classifying.
    stratified: bool | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0

    @model_validator(mode="after")
    def _check(self) -> FoldSpec:
        if self.index >= self.k:
            raise ValueError(f"index: {self.index} is not a fold of {self.k} (0 to {self.k - 1})")
        return self


class AugmentationSpec(Strict):
    """Random shifts, rotations and scaling of the training images (never validation or test),
    drawn afresh for every example each epoch, on the device, with their own seed."""

    shift: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1  # up to this share of a side
    rotate: Annotated[float, Field(ge=0.0, le=180.0)] = 10.0  # up to this many degrees
    scale: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1  # zoom by up to 1 +- this
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


class DataSpec(Strict):
    name: DatasetName = "digits"
    # Where torchvision data sets live, under the trainer's data directory; None: that directory.
    data_dir: DataDir | None = None
    download: bool = False
    # Fraction held out as a test split before anything else (stratified, always drawn the same
    # way: every run of a study is scored on the same examples), scored once, at the evaluated
    # epoch, never used to select; "official": the data set's official test split.
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] | Literal["official"] | None = None
    # Fraction of the (shuffled) data, but the test split, held out for validation ...
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    # ... or, for mnist / fashion_mnist / cifar10, their official test split instead.
    use_official_test: bool = False
    # ... or validate on one fold of k (cross-validation; api studies make one run per fold).
    folds: FoldSpec | None = None
    # Train on only this many examples: a small subset provokes overfitting on purpose ...
    train_subset: PositiveInt | None = None
    # ... or on this fraction of the training split (a learning curve's sizes).
    train_fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    # standard: zero mean, unit variance from the training split; unit: [0, 1];
    # symmetric: [-1, 1] as Normalize((0.5,), (0.5,)) in seed 000; none: raw values.
    normalize: Literal["standard", "unit", "symmetric", "none"] = "standard"
    synthetic: SyntheticSpec | None = None
    # A memorization control: this fraction of the training labels replaced by random classes
    # (drawn with label_noise_seed), never a validation or test label. At 1.0 nothing is
    # left to learn but the examples themselves: how fast the network memorizes noise.
    label_noise: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    label_noise_seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    # Image data only: a fix for overfitting that makes more data of the data there is.
    augmentation: AugmentationSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> DataSpec:
        if self.use_official_test and self.name not in OFFICIAL_TEST_SPLIT:
            raise ValueError(
                f"use_official_test: dataset {self.name!r} has no official test split "
                f"(only {sorted(OFFICIAL_TEST_SPLIT)})"
            )
        if self.synthetic is not None and self.name != "synthetic":
            raise ValueError("synthetic: only allowed when name is 'synthetic'")
        if self.folds is not None and self.use_official_test:
            raise ValueError(
                "folds: cross-validation splits the data itself; not with use_official_test"
            )
        if self.train_subset is not None and self.train_fraction is not None:
            raise ValueError("train_fraction: give train_subset or train_fraction, not both")
        size = DATASET_SIZES.get(self.name)
        if self.name == "synthetic":
            size = (self.synthetic or SyntheticSpec()).n_samples
        if self.train_subset is not None and size is not None and self.train_subset > size:
            raise ValueError(
                f"dataset.train_subset: {self.train_subset} is more than the {size} examples "
                "there are"
            )
        self._check_test_split(size)
        return self

    def _check_test_split(self, size: int | None) -> None:
        """A test split must leave every split at least one example per class."""
        fraction = self.test_fraction
        if fraction is None:
            return
        if fraction == "official":
            if self.name not in OFFICIAL_TEST_SPLIT:
                raise ValueError(f"test_fraction: dataset {self.name!r} has no official test split")
            if self.use_official_test:
                raise ValueError("test_fraction: the official test split already validates")
            return
        if self.train_fraction is not None and self.train_fraction + fraction > 1:
            raise ValueError(
                f"test_fraction: {fraction} with train_fraction {self.train_fraction} is over 1"
            )
        if size is None:
            return
        n_test = math.ceil(size * fraction)
        rest = size - n_test
        share = 1 / self.folds.k if self.folds else self.val_fraction
        n_val = math.ceil(rest * share)
        classes = self.n_classes()
        least, why = (classes, "one per class") if classes else (2, "the least a split scores on")
        for name, n in (("test", n_test), ("validation", n_val), ("training", rest - n_val)):
            if n < least:
                raise ValueError(
                    f"test_fraction: {fraction} of {size} examples leaves {n} for the {name} "
                    f"split, fewer than {least} ({why})"
                )
        if self.train_subset is not None and self.train_subset > rest - n_val:
            raise ValueError(
                f"test_fraction: {fraction} leaves {rest - n_val} training examples, fewer than "
                f"train_subset {self.train_subset}"
            )

    def split_sizes(self) -> tuple[int, int] | None:
        """(training, validation) examples of a run, from the spec alone, as trainer.splits
        draws them (to within an example); None where the data set's size is not known here
        or an official split validates."""
        size = DATASET_SIZES.get(self.name)
        if self.name == "synthetic":
            size = (self.synthetic or SyntheticSpec()).n_samples
        if size is None or self.use_official_test or self.test_fraction == "official":
            return None
        rest = size - (math.ceil(size * self.test_fraction) if self.test_fraction else 0)
        n_val = (
            math.ceil(rest / self.folds.k) if self.folds else math.ceil(rest * self.val_fraction)
        )
        n_train = rest - n_val
        if self.train_fraction is not None:
            n_train = max(1, round(self.train_fraction * n_train))
        if self.train_subset is not None:
            n_train = min(self.train_subset, n_train)
        return n_train, n_val

    def n_classes(self) -> int | None:
        """The data set's classes, known from the spec alone (None: regression)."""
        if self.name == "synthetic":
            return (self.synthetic or SyntheticSpec()).n_classes
        return DATASET_CLASSES.get(self.name)
