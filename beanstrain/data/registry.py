"""Every dataset beanstrain trains on, in one registry: the course's generated sets and the image sets.

    >>> get_dataset("beans4").task, get_dataset("mnist").kind
    ('binary', 'image')
    >>> sorted(list_datasets("image"))
    ['fashion-mnist', 'mnist']

A generated set (`ToySet`) is a formula in `beanstrain.data.toy`; an image set
(`ImageSet`) is read from MNIST-format files by `beanstrain.data.locate`.  A
new dataset is an entry in `DATASETS`; `beanstrain.data.loading` turns an
entry into arrays.  This module reads no data (but the CSV file a dataset name
can be, `PointsSet`) and imports nothing that imports it.

Each entry says what it gives a network (`gives`), so a network that cannot
take it is refused before any data is read, and a generated set says what
drawing it costs (`draw_bytes`, bytes per sample), so a draw that cannot fit
in memory is refused too:

    >>> get_dataset("beans4").gives, get_dataset("mnist").gives
    (('feature vectors',), ('784-vectors', '28x28 images'))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from beanstrain.data import points_file, toy
from beanstrain.errors import lookup
from beanstrain.tasks import BINARY, MULTICLASS, REGRESSION

# What a dataset gives a network; each network takes one of these (models.Network.takes).
FEATURE_VECTORS = "feature vectors"  # a few numbers per sample: the generated sets
PIXEL_VECTORS = "784-vectors"  # an image's 28x28 pixels in one row
IMAGES = "28x28 images"  # an image as it is, (28, 28, 1)

@dataclass(frozen=True)
class ToySet:
    """A generated dataset: its formula `(samples, rng, noise) -> (x, y)`, its task and its size."""

    kind: ClassVar[str] = "toy"
    generate: Callable[[int, np.random.Generator, float], tuple[np.ndarray, np.ndarray]]
    task: str
    summary: str
    # Peak bytes per sample that `load_dataset` needs: the train draw kept as float32 while the test
    # draw makes its float64 intermediates.  Measured with tracemalloc; tests/test_preflight.py
    # checks every number against a real draw.
    draw_bytes: int
    default_samples: int = 100
    num_classes: int = 2
    inputs: int = 2  # numbers per sample: 1 for the 1-D sets, 3 for gender
    class_names: tuple[str, ...] = ()  # each class's name, by number, where the set has names
    gives: tuple[str, ...] = (FEATURE_VECTORS,)


@dataclass(frozen=True)
class ImageSet:
    """An MNIST-format image set: what it is and where copies of it live."""

    kind: ClassVar[str] = "image"
    task: ClassVar[str] = MULTICLASS
    num_classes: ClassVar[int] = 10
    name: str
    summary: str
    class_names: tuple[str, ...]
    keras_file: str  # its name in Keras's cache: an .npz file or a folder of gzipped IDX files
    system_dirs: tuple[str, ...] = ()
    gives: tuple[str, ...] = (PIXEL_VECTORS, IMAGES)  # what a network can take from it
    inputs: ClassVar[int] = 28 * 28


@dataclass(frozen=True)
class PointsSet:
    """A CSV file of a person's own points (`beanstrain.data.points_file`), standing in for a generated set."""

    kind: ClassVar[str] = "points"
    path: str
    task: str
    inputs: int
    num_classes: int
    class_names: tuple[str, ...]
    gives: tuple[str, ...] = (FEATURE_VECTORS,)

    @property
    def summary(self) -> str:
        return f"the points in {self.path}"


DATASETS: dict[str, ToySet | ImageSet] = {
    "beans1": ToySet(toy.beans1, REGRESSION, "1-D regression: toxicity = 1.2*size + noise", draw_bytes=32,
                     inputs=1),
    "beans2": ToySet(toy.beans2, REGRESSION, "1-D regression: toxicity = 0.7*size + 0.5 + noise", draw_bytes=40,
                     inputs=1),
    "beans0": ToySet(toy.beans0, BINARY, "1-D binary: toxic above one size threshold", draw_bytes=49,
                     inputs=1),
    "beans3": ToySet(toy.beans3, BINARY, "1-D binary: toxic inside a band of sizes (needs a hidden layer)",
                     draw_bytes=49, inputs=1),
    "beans7": ToySet(toy.beans7, BINARY, "2-D binary: classes split by a straight line", draw_bytes=53),
    "beans4": ToySet(toy.beans4, BINARY, "2-D binary: toxic inside a disc (needs 2 hidden units)", draw_bytes=54),
    "spiral": ToySet(toy.spiral, BINARY, "2-D binary: two interleaved spirals", draw_bytes=92),
    "circle": ToySet(toy.circle, BINARY, "2-D binary: a disc inside a ring", draw_bytes=108),
    "xor": ToySet(toy.xor, BINARY, "2-D binary: Playground XOR of the quadrants", draw_bytes=64),
    "gauss": ToySet(toy.gauss, BINARY, "2-D binary: two Gaussian clouds", draw_bytes=64),
    "gender": ToySet(toy.gender, MULTICLASS, "3 features (weight, height, age) -> 2 classes, one-hot", draw_bytes=88,
                     default_samples=1000, inputs=3, class_names=("female", "male")),
    "mnist": ImageSet(
        name="mnist",
        summary="28x28 grey handwritten digits, 60,000 train / 10,000 test",
        class_names=tuple(str(digit) for digit in range(10)),
        keras_file="mnist.npz",
    ),
    "fashion-mnist": ImageSet(
        name="fashion-mnist",
        summary="28x28 grey photos of clothes in 10 classes, 60,000 train / 10,000 test",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        keras_file="fashion-mnist",
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


def list_datasets(kind: str | None = None) -> dict[str, ToySet | ImageSet]:
    """Every dataset (of one kind, "toy" or "image", when given) by name, without reading any data."""
    return {name: entry for name, entry in DATASETS.items() if kind in (None, entry.kind)}


def get_dataset(name: str, kind: str | None = None) -> ToySet | ImageSet | PointsSet:
    """The registry entry of `name`, or a `UsageError` naming the closest one (of that kind).

    A name with a suffix or a folder (`points.csv`) is a CSV file of points: it is read to say what it gives."""
    if name not in DATASETS and kind in (None, "points") and points_file.looks_like_path(name):
        table = points_file.read_points(name)
        return PointsSet(name, table.task, table.x.shape[1], table.num_classes, table.class_names)
    return lookup("dataset", name, list_datasets(kind))


def is_image_dataset(name: str) -> bool:
    return name in list_datasets("image")
