"""Small MNIST-format files for tests, written under tmp_path: IDX (plain or gzipped) and Keras .npz.

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())                 # a test passes its tmp_path
    >>> splits = blob_splits(train=300, test=100)        # learnable: one bright blob per class
    >>> write_npz(folder / "mnist.npz", splits).name
    'mnist.npz'
    >>> sorted(path.name for path in write_idx_folder(folder / "idx", splits, gz=True).iterdir())[:2]
    ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']

`isolate_image_data` makes sure a test never finds the real datasets or
tries a download: Keras's cache and HOME point into tmp_path,
$BEANSTRAIN_DATA is unset, the system folders are emptied and the download
raises.
"""

from __future__ import annotations

import dataclasses
import gzip
import struct

import numpy as np

from beanstrain.data import DATASETS, list_datasets, locate
from beanstrain.data.formats import IDX_FILES, NPZ_KEYS

SPLIT_ORDER = [("train", "images"), ("train", "labels"), ("test", "images"), ("test", "labels")]


def random_splits(seed=0, train=50, test=20):
    """x_train, y_train, x_test, y_test of random uint8 pixels and labels 0-9 (nothing to learn)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (train, 28, 28), dtype=np.uint8), rng.integers(0, 10, train, dtype=np.uint8),
            rng.integers(0, 256, (test, 28, 28), dtype=np.uint8), rng.integers(0, 10, test, dtype=np.uint8))


def blob_images(labels, rng):
    """One bright 6x6 square per image, its place set by the label (a 4x3 grid of places), on faint noise."""
    pictures = rng.integers(0, 40, (len(labels), 28, 28)).astype(np.uint8)
    for picture, label in zip(pictures, labels):
        row, column = divmod(int(label), 3)
        top, left = 2 + row * 6 + rng.integers(-1, 2), 3 + column * 8 + rng.integers(-1, 2)
        picture[top:top + 6, left:left + 6] = rng.integers(200, 256, (6, 6))
    return pictures


def blob_splits(seed=0, train=300, test=100):
    """Learnable splits: each class is a bright blob in its own place, so a network separates them quickly."""
    rng = np.random.default_rng(seed)
    y_train = np.arange(train, dtype=np.uint8) % 10
    y_test = rng.integers(0, 10, test, dtype=np.uint8)
    rng.shuffle(y_train)
    return blob_images(y_train, rng), y_train, blob_images(y_test, rng), y_test


def idx_bytes(array, magic=None, dimensions=None):
    """The IDX encoding of a uint8 array; `magic`/`dimensions` override the header to corrupt it."""
    magic = 0x0800 | array.ndim if magic is None else magic
    dimensions = array.shape if dimensions is None else dimensions
    return struct.pack(">I", magic) + struct.pack(f">{len(dimensions)}I", *dimensions) + array.tobytes()


def write_file(path, data, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_folder(folder, splits, gz=False):
    """The four IDX files of `splits` in `folder`, named like the original distribution."""
    for array, key in zip(splits, SPLIT_ORDER):
        base = IDX_FILES[key]
        write_file(folder / (base + ".gz" if gz else base), idx_bytes(array), gz)
    return folder


def write_npz(path, splits, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **dict(zip(NPZ_KEYS, splits)), **extra)
    return path


def isolate_image_data(tmp_path, monkeypatch):
    """No real caches, system folders or network: a test sees only the files it writes."""
    monkeypatch.delenv("BEANSTRAIN_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, entry in list_datasets("image").items():
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(entry, system_dirs=()))

    def no_network(name):
        raise OSError("no network in tests")
    monkeypatch.setattr(locate, "keras_download", no_network)
