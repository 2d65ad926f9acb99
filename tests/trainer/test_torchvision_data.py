"""The real torchvision loaders, fed tiny files written in the data sets' own on-disk formats."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.trainer.conftest import run
from trainer import config, data


@pytest.fixture(autouse=True)
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The worker's data directory (FITLENS_DATA_DIR) for one test; specs name folders in it."""
    monkeypatch.setenv("FITLENS_DATA_DIR", str(tmp_path))
    config.get_settings.cache_clear()
    data._load_raw.cache_clear()
    yield tmp_path
    config.get_settings.cache_clear()
    data._load_raw.cache_clear()


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as in yann.lecun.com/exdb/mnist: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian
    int32 sizes, then the raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str, n_train: int, n_test: int) -> None:
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28))
        # Each class lights up its own band of rows, so the task is learnable.
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 3, :] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_format_loader_trains_on_its_official_split(
    tmp_path: Path, name: str, folder: str
) -> None:
    write_mnist(tmp_path, folder, n_train=200, n_test=50)
    result, rec = run(
        {
            "dataset": {
                "name": name,
                "use_official_test": True,
                "normalize": "unit",
            },
            "model": {"hidden": [32]},
            "optimizer": {"lr": 1e-2},
            "epochs": 5,
            "batch_size": 32,
        }
    )
    assert rec.started is not None
    assert (rec.started.n_train, rec.started.n_val) == (200, 50)
    assert rec.started.input_shape == [1, 28, 28]
    assert len(rec.started.class_names or []) == 10
    assert result.history[-1]["val_accuracy"] > 0.9


def test_mnist_split_by_fraction_and_as_cnn(tmp_path: Path) -> None:
    write_mnist(tmp_path / "sets" / "digits-28", "MNIST", n_train=100, n_test=20)
    _, rec = run(
        {
            "dataset": {"name": "mnist", "data_dir": "sets/digits-28", "val_fraction": 0.2},
            "model": {"kind": "cnn", "channels": [4, 8]},
            "epochs": 1,
        }
    )
    assert rec.started is not None and (rec.started.n_train, rec.started.n_val) == (80, 20)


def test_missing_files_name_the_dataset_and_the_folder_but_no_worker_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dataset\.name: mnist not found") as caught:
        run({"dataset": {"name": "mnist", "data_dir": "nowhere"}, "epochs": 1})
    assert "'nowhere'" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)  # the user learns nothing of the worker's disk


def test_a_link_in_the_data_directory_does_not_lead_out_of_it(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    write_mnist(outside, "MNIST", n_train=20, n_test=10)
    (tmp_path / "escape").symlink_to(outside)
    with pytest.raises(ValueError, match=r"dataset\.data_dir: 'escape' leads outside"):
        run({"dataset": {"name": "mnist", "data_dir": "escape"}, "epochs": 1})
    with pytest.raises(ValueError, match="data_dir"):  # and the spec itself refuses these
        run({"dataset": {"name": "mnist", "data_dir": str(outside)}, "epochs": 1})


def test_cifar10_python_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.cifar as cifar

    # torchvision checks the md5 of the real 170 MB archive's files; ours are tiny stand-ins in
    # the same format, so keep only its existence check. Reading and decoding stay real.
    monkeypatch.setattr(cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]

    def batch(n: int) -> dict:
        labels = [int(i % 10) for i in range(n)]
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        return {"data": data, "labels": labels}

    for i in range(1, 6):
        (base / f"data_batch_{i}").write_bytes(pickle.dumps(batch(20)))
    (base / "test_batch").write_bytes(pickle.dumps(batch(30)))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))

    _, rec = run(
        {
            "dataset": {"name": "cifar10", "use_official_test": True},
            "model": {"kind": "cnn", "channels": [4]},
            "epochs": 1,
        }
    )
    assert rec.started is not None
    assert (rec.started.n_train, rec.started.n_val) == (100, 30)
    assert rec.started.input_shape == [3, 32, 32]
    assert rec.started.class_names == names


def test_seed003s_fc1_on_mnist_files_is_kept_whole_and_shows_28x28_units(tmp_path: Path) -> None:
    """Seed 003's 784-128-64-10 MLP, N(0, 0.01): its 128 x 784 fc1 (100,352 values) is kept
    whole at epochs 1 and 3, and each unit reads as a 28 x 28 image."""
    import base64
    import json as json_module

    from api.weights.schemas import SnapshotInfo
    from api.weights.service import _images
    from trainer.spec import JobSpec

    write_mnist(tmp_path, "MNIST", n_train=100, n_test=20)
    spec = {
        "dataset": {"name": "mnist", "use_official_test": True, "normalize": "unit"},
        "model": {"hidden": [128, 64], "init": {"scheme": "normal", "std": 0.01}},
        "optimizer": {"name": "sgd", "lr": 0.01},
        "epochs": 3,
    }
    _, rec = run(spec)
    fc1 = {s.epoch: s for e in rec.epochs for s in e.snapshots if s.param == "fc1.weight"}
    assert sorted(fc1) == [1, 2, 3]
    last = fc1[3]
    assert last.shape == [128, 784] and last.method == "whole" and last.dtype == "float32"
    values = np.frombuffer(base64.b64decode(last.data), dtype="<f4").reshape(128, 784)
    assert 0.005 < values.std() < 0.02  # still about N(0, 0.01) after 3 epochs of SGD
    info = SnapshotInfo(**{**json_module.loads(last.model_dump_json()), "full_shape": last.shape})
    images = _images(info, values, JobSpec.model_validate(spec), None)
    assert images.tile_shape == [28, 28] and len(images.tiles) == 128
    assert np.ravel(images.tiles[7].values) == pytest.approx(values[7])
