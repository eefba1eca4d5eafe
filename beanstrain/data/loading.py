"""Loading a registered dataset as train and test arrays ready for a network.

    >>> data = load_dataset("beans4", samples=100, noise=0.0, seed=0)
    >>> data.x_train.shape, data.task
    ((100, 2), 'binary')
    >>> draw_bytes("beans4", samples=1_000_000)
    54000000

A generated set's test data is a fresh draw of the same size from the same
generator, seeded from the run's seed, so train and test never share points.
An image set is read by `beanstrain.data.locate`; this module only scales its
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain.data import memory, points_file
from beanstrain.data.locate import load_images
from beanstrain.data.registry import ImageSet, get_dataset, is_image_dataset
from beanstrain.errors import UsageError

# Seed streams: the train draw and the test draw of a generated set must be
# independent but both follow from the one --seed the user gives.
TRAIN_STREAM, TEST_STREAM = 0, 1


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays ready for a network, and what kind of task they are."""

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str = "generated"
    class_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4


def generate(name: str, samples: int, noise: float, seed: int, stream: int = TRAIN_STREAM):
    """One draw of a generated set: `(x, y)` float32, reproducible from `(seed, stream)`.

    >>> x, y = generate("spiral", samples=200, noise=0.0, seed=7)
    >>> x.shape, y.shape, float(y.mean())
    ((200, 2), (200,), 0.5)
    """
    entry = get_dataset(name, "toy")
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    return entry.generate(samples, rng, noise)


def load_dataset(name: str, samples: int | None = None, noise: float = 0.0, seed: int = 0,
                 data_path: str | None = None, test_fraction: float = 0.5) -> Dataset:
    """Train and test splits of any registered dataset, or of a CSV file of points, as float32 arrays.

    A CSV file's rows are split into train and test by `test_fraction`, drawn from the seed.

    Image pixels are scaled to [0, 1] and given a channel axis, (N, 28, 28, 1);
    networks that want 784-vectors flatten them themselves.
    """
    entry = get_dataset(name)
    if entry.kind == "image":
        return _load_image_dataset(entry, data_path)
    if entry.kind == "points":
        table = points_file.read_points(name)
        train, test = points_file.split_rows(len(table.x), test_fraction, seed)
        return Dataset(Path(name).stem, entry.task, table.x[train], table.y[train], table.x[test], table.y[test],
                       entry.num_classes, source=name, class_names=entry.class_names)
    samples = samples or entry.default_samples
    x_train, y_train = generate(name, samples, noise, seed, TRAIN_STREAM)
    x_test, y_test = generate(name, samples, noise, seed, TEST_STREAM)
    return Dataset(name, entry.task, x_train, y_train, x_test, y_test, entry.num_classes)


def _scale_images(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    return images.astype(np.float32)[..., None]


def _load_image_dataset(entry: ImageSet, data_path: str | None) -> Dataset:
    images = load_images(entry.name, data_path)
    return Dataset(
        entry.name, entry.task,
        _scale_images(images.x_train), images.y_train.astype(np.int64),
        _scale_images(images.x_test), images.y_test.astype(np.int64),
        num_classes=entry.num_classes, source=images.source, class_names=entry.class_names,
    )


def check_samples(name: str, samples: int | None) -> None:
    """Refuse a sample count too small to give both classes a point, or too large to draw in memory."""
    if samples is None or is_image_dataset(name) or points_file.looks_like_path(name):
        return
    if samples < 4:
        raise UsageError(f"--samples must be at least 4 for {name}, got {samples}")
    needed, available = draw_bytes(name, samples), memory.available_memory()
    if available is not None and needed > available:
        raise UsageError(f"--samples {samples} for {name} needs about {memory.format_bytes(needed)} of memory to draw "
                         f"its train and test sets, and this machine has {memory.format_bytes(available)} available; "
                         "use fewer --samples")


def draw_bytes(name: str, samples: int) -> int:
    """Bytes `load_dataset` needs at its peak to draw `samples` train and as many test points of a generated set."""
    return samples * get_dataset(name, "toy").draw_bytes
