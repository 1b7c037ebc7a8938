"""Tests of ``mixer_sweeps.data._datasets`` on real data (digits, synthetic) and CIFAR error paths.

The network is never used: the CIFAR download test points torchvision at a closed port on
127.0.0.1.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from mixer_sweeps.data import (
    DATASETS,
    DatasetInfo,
    DatasetSplits,
    DatasetUnavailable,
    Split,
    _datasets,
    load_dataset,
)


def _row_keys(images: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in images.flatten(1).numpy()}


def _check_split(split: Split, n: int, shape: tuple[int, int, int], num_classes: int) -> None:
    assert len(split) == n
    assert split.images.shape == (n, *shape)
    assert split.images.dtype == torch.uint8
    assert split.images.is_contiguous()
    assert split.images.device.type == "cpu"
    assert split.labels.shape == (n,)
    assert split.labels.dtype == torch.int64
    if n:
        assert int(split.labels.min()) >= 0 and int(split.labels.max()) < num_classes


# ----------------------------------------------------------------------------------- registry


def test_registry_static_facts() -> None:
    assert set(DATASETS) == {"cifar10", "cifar100", "digits", "synthetic"}
    for key, info in DATASETS.items():
        assert isinstance(info, DatasetInfo)
        assert info.name == key
        assert len(info.mean) == len(info.std) == info.in_channels
        assert all(0 < m < 1 for m in info.mean) and all(0 < s < 1 for s in info.std)
    assert DATASETS["cifar100"].num_classes == 100
    assert (DATASETS["digits"].train_size, DATASETS["digits"].test_size) == (1437, 360)


def test_unknown_name_lists_known_datasets() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'") as err:
        load_dataset("mnist", val_size=10)
    for key in DATASETS:
        assert key in str(err.value)


@pytest.mark.parametrize("name", ["digits", "cifar10", "synthetic"])
def test_val_size_too_large_names_both_values(name: str) -> None:
    train_size = DATASETS[name].train_size
    with pytest.raises(ValueError) as err:
        load_dataset(name, val_size=train_size, download=False)
    assert f"val_size={train_size}" in str(err.value)
    assert f"train_size={train_size}" in str(err.value)
    with pytest.raises(ValueError, match="val_size=-1"):
        load_dataset(name, val_size=-1, download=False)


# ------------------------------------------------------------------------------------- digits


def test_digits_shapes_and_sizes() -> None:
    ds = load_dataset("digits", val_size=200, split_seed=3)
    assert isinstance(ds, DatasetSplits)
    assert ds.info is DATASETS["digits"]
    _check_split(ds.train, 1437 - 200, (1, 8, 8), 10)
    _check_split(ds.val, 200, (1, 8, 8), 10)
    _check_split(ds.test, 360, (1, 8, 8), 10)
    assert int(ds.train.images.max()) == 255 and int(ds.train.images.min()) == 0


def test_digits_pixel_scaling_matches_sklearn() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    expected = {
        np.rint(row * 255 / 16).astype(np.uint8).tobytes() + bytes([label])
        for row, label in zip(raw.data, raw.target, strict=True)
    }
    ds = load_dataset("digits", val_size=100)
    got = set()
    for split in (ds.train, ds.val, ds.test):
        for img, label in zip(split.images.flatten(1).numpy(), split.labels.numpy(), strict=True):
            got.add(img.tobytes() + bytes([int(label)]))
    assert got <= expected
    assert len(ds.train) + len(ds.val) + len(ds.test) == len(raw.target)


def test_digits_info_mean_std_match_training_images() -> None:
    ds = load_dataset("digits", val_size=0)
    x = ds.train.images.double() / 255
    assert float(x.mean()) == pytest.approx(ds.info.mean[0], abs=1e-3)
    assert float(x.std(unbiased=False)) == pytest.approx(ds.info.std[0], abs=1e-3)


def test_digits_val_is_stratified() -> None:
    ds = load_dataset("digits", val_size=300, split_seed=1)
    counts = torch.bincount(ds.val.labels, minlength=10)
    assert int(counts.min()) >= 28 and int(counts.max()) <= 32  # 300 / 10 classes, +-2
    counts = torch.bincount(ds.test.labels, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38


def test_digits_split_seed_determinism_and_independence_of_test() -> None:
    a = load_dataset("digits", val_size=150, split_seed=0)
    b = load_dataset("digits", val_size=150, split_seed=0)
    c = load_dataset("digits", val_size=150, split_seed=1)
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.val.labels, b.val.labels)
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.val.images, c.val.images)
    # the test split never depends on split_seed (nor on val_size)
    d = load_dataset("digits", val_size=10, split_seed=7)
    for other in (c, d):
        assert torch.equal(a.test.images, other.test.images)
        assert torch.equal(a.test.labels, other.test.labels)


def test_digits_splits_are_disjoint_and_cover_the_data() -> None:
    # the 1797 digits images are pairwise distinct, so a row's bytes identify its index
    ds = load_dataset("digits", val_size=250, split_seed=5)
    train, val, test = (_row_keys(s.images) for s in (ds.train, ds.val, ds.test))
    assert (len(train), len(val), len(test)) == (1437 - 250, 250, 360)
    assert not train & val and not train & test and not val & test
    full = load_dataset("digits", val_size=0, split_seed=5)
    assert train | val == _row_keys(full.train.images)
    assert test == _row_keys(full.test.images)


def test_val_size_zero_gives_empty_val() -> None:
    ds = load_dataset("digits", val_size=0)
    _check_split(ds.val, 0, (1, 8, 8), 10)
    assert len(ds.train) == 1437


def test_to_moves_every_tensor() -> None:
    ds = load_dataset("digits", val_size=50)
    moved = ds.to("cpu")
    assert isinstance(moved, DatasetSplits) and moved.info is ds.info
    for split in (moved.train, moved.val, moved.test):
        assert split.images.device.type == "cpu"
    assert torch.equal(moved.val.images, ds.val.images)
    meta = ds.to("meta")
    assert meta.train.images.device.type == "meta"
    assert meta.test.labels.device.type == "meta"
    assert len(meta.val) == 50


def test_split_validates_dtypes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Split(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        Split(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        Split(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))


# ---------------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synthetic() -> DatasetSplits:
    return load_dataset("synthetic", val_size=5000, split_seed=0)


def test_synthetic_shapes(synthetic: DatasetSplits) -> None:
    _check_split(synthetic.train, 45_000, (3, 32, 32), 10)
    _check_split(synthetic.val, 5_000, (3, 32, 32), 10)
    _check_split(synthetic.test, 10_000, (3, 32, 32), 10)
    counts = torch.bincount(synthetic.val.labels, minlength=10)
    assert int(counts.min()) >= 480 and int(counts.max()) <= 520


def test_synthetic_is_deterministic(synthetic: DatasetSplits) -> None:
    # How fast it is (about a second on two cores) is measured in benchmarks/datasets.py.
    again = load_dataset("synthetic", val_size=5000, split_seed=0)
    for a, b in ((synthetic.train, again.train), (synthetic.test, again.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_synthetic_info_mean_std(synthetic: DatasetSplits) -> None:
    x = synthetic.train.images[:10_000].double() / 255
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3), unbiased=False)
    assert mean.tolist() == pytest.approx(list(synthetic.info.mean), abs=5e-3)
    assert std.tolist() == pytest.approx(list(synthetic.info.std), abs=5e-3)


def test_synthetic_classes_are_learnable(synthetic: DatasetSplits) -> None:
    x = synthetic.train.images[:4000].flatten(1).float()
    y = synthetic.train.labels[:4000]
    means = torch.stack([x[y == c].mean(0) for c in range(10)])
    xt = synthetic.test.images[:2000].flatten(1).float()
    yt = synthetic.test.labels[:2000]
    accuracy = (torch.cdist(xt, means).argmin(1) == yt).float().mean().item()
    assert accuracy > 0.5  # chance is 0.1


# -------------------------------------------------------------------------------- CIFAR errors


def test_cifar_missing_without_download(tmp_path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("cifar10", root=root, val_size=5000, download=False)
    msg = str(err.value)
    assert str(root) in msg
    assert "cifar-10-python.tar.gz" in msg and "cifar-10-batches-py" in msg
    assert "download=False" in msg
    with pytest.raises(DatasetUnavailable, match="cifar-100-python.tar.gz"):
        load_dataset("cifar100", root=root, val_size=5000, download=False)


def test_cifar_corrupt_archive_is_reported(tmp_path) -> None:
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DatasetUnavailable, match="MD5"):
        load_dataset("cifar10", root=tmp_path, val_size=5000, download=False)


def test_cifar_fake_extracted_folder_fails_integrity(tmp_path) -> None:
    """A folder with torchvision's layout but wrong contents is not accepted."""
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
            "labels": [0, 1, 2, 3],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(
        pickle.dumps({"label_names": [str(i) for i in range(10)]})
    )
    with pytest.raises(DatasetUnavailable, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", root=tmp_path, val_size=1, download=False)


def _closed_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cifar_unreachable_download(tmp_path, monkeypatch) -> None:
    port = _closed_local_port()
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
    monkeypatch.setattr(CIFAR10, "url", url)
    monkeypatch.setattr(_datasets, "DOWNLOAD_TIMEOUT_S", 2.0)
    before = socket.getdefaulttimeout()
    start = time.perf_counter()
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("cifar10", root=tmp_path, val_size=5000, download=True)
    # Hang guard, not a speed goal: the closed port refuses at once and every socket call is
    # bounded by DOWNLOAD_TIMEOUT_S (2 s here), so only a retry loop or a hang gets near 30 s.
    assert time.perf_counter() - start < 30
    msg = str(err.value)
    assert "could not be downloaded" in msg and str(tmp_path) in msg and url in msg
    assert "cifar-10-python.tar.gz" in msg
    assert socket.getdefaulttimeout() == before  # restored
