"""Registry of datasets: the course's toy generators and the image sets.

Every toy generator is a plain function `(samples, rng, noise) -> (x, y)` of
float32 arrays, vectorised from the course's one-point-at-a-time loops with
the same distributions.  `load_dataset` turns a name into a `Dataset` with a
train split and a test split:

    >>> data = load_dataset("beans4", samples=100, noise=0.0, seed=0)
    >>> data.x_train.shape, data.task
    ((100, 2), 'binary')

Test data for a generated set is a fresh draw of the same size from the same
generator, seeded from the run's seed, so train and test never share points.
Image sets (`mnist`, `fashion-mnist`) are read from files by
`beanstrain.data.images`; this module only scales them.

Each entry says what it gives a network (`dataset_gives`), so a network that
cannot take it is refused before any data is read, and a generated set says
what drawing it costs, so a draw that cannot fit in memory is refused too:

    >>> dataset_gives("beans4"), dataset_gives("mnist")
    (('feature vectors',), ('784-vectors', '28x28 images'))
    >>> draw_bytes("beans4", samples=1_000_000)
    54000000
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from beanstrain.errors import UsageError, lookup

# The task decides the network's output layer, the default loss and whether
# accuracy means anything.
REGRESSION, BINARY, MULTICLASS = "regression", "binary", "multiclass"

# Seed streams: the train draw and the test draw of a generated set must be
# independent but both follow from the one --seed the user gives.
TRAIN_STREAM, TEST_STREAM = 0, 1

# What a dataset gives a network; each network takes one of these (models.Network.takes).
FEATURE_VECTORS = "feature vectors"  # a few numbers per sample: the generated sets
PIXEL_VECTORS = "784-vectors"  # an image's 28x28 pixels in one row
IMAGES = "28x28 images"  # an image as it is, (28, 28, 1)


@dataclass(frozen=True)
class ToySet:
    """A generated dataset: its formula, task and what --noise does."""

    generate: Callable[[int, np.random.Generator, float], tuple[np.ndarray, np.ndarray]]
    task: str
    summary: str
    noise_help: str
    # Peak bytes per sample that `load_dataset` needs: the train draw kept as float32 while the test
    # draw makes its float64 intermediates.  Measured with tracemalloc; tests/test_preflight.py
    # checks every figure against a real draw.
    draw_bytes: int
    default_samples: int = 100
    num_classes: int = 2
    gives: tuple[str, ...] = (FEATURE_VECTORS,)


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


def _sorted_uniform(rng: np.random.Generator, samples: int, high: float) -> np.ndarray:
    # The course sorts 1-D inputs so that its prediction curves draw left to right.
    return np.sort(rng.uniform(0.0, high, samples))


def _label_flip(rng: np.random.Generator, labels: np.ndarray, noise: float) -> np.ndarray:
    """Flip each binary label with probability `noise` (0 keeps the course's clean labels)."""
    if noise <= 0:
        return labels
    flips = rng.uniform(0.0, 1.0, labels.shape) < noise
    return np.where(flips, 1.0 - labels, labels)


def _as_float32(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.astype(np.float32), y.astype(np.float32)


def beans1(samples, rng, noise):
    """Size -> toxicity, linear: y = 1.2x + U(0,1)/10; --noise scales that spread (default 0.1)."""
    x = _sorted_uniform(rng, samples, 1.0)
    spread = noise if noise > 0 else 0.1
    y = 1.2 * x + rng.uniform(0.0, 1.0, samples) * spread
    return _as_float32(x[:, None], y)


def beans2(samples, rng, noise):
    """y = 0.7x + (0.5 - U(0,1))/5 + 0.5; --noise replaces the 1/5 spread."""
    x = _sorted_uniform(rng, samples, 1.0)
    spread = noise if noise > 0 else 0.2
    y = 0.7 * x + (0.5 - rng.uniform(0.0, 1.0, samples)) * spread + 0.5
    return _as_float32(x[:, None], y)


def beans0(samples, rng, noise):
    """Toxic when 0.7x + (0.5 - U(0,1))/50 + 0.5 > 0.8, x ~ U(0,1) sorted."""
    x = _sorted_uniform(rng, samples, 1.0)
    score = 0.7 * x + (0.5 - rng.uniform(0.0, 1.0, samples)) / 50 + 0.5
    y = _label_flip(rng, (score > 0.8).astype(np.float64), noise)
    return _as_float32(x[:, None], y)


def beans3(samples, rng, noise):
    """Toxic inside the band 0.8 < 0.7x + (0.5 - U(0,1))/50 + 0.5 < 1.4, x ~ U(0,2) sorted."""
    x = _sorted_uniform(rng, samples, 2.0)
    score = 0.7 * x + (0.5 - rng.uniform(0.0, 1.0, samples)) / 50 + 0.5
    y = _label_flip(rng, ((score > 0.8) & (score < 1.4)).astype(np.float64), noise)
    return _as_float32(x[:, None], y)


def beans7(samples, rng, noise):
    """Two features, toxic when x0 - 0.5*x1 - 0.1 > 0 (a straight line)."""
    x = rng.uniform(0.0, 2.0, (samples, 2))
    y = _label_flip(rng, (x[:, 0] - 0.5 * x[:, 1] - 0.1 > 0).astype(np.float64), noise)
    return _as_float32(x, y)


def beans4(samples, rng, noise):
    """Two features, toxic inside the disc (x0-1)^2 + (x1-0.3)^2 < 0.5."""
    x = rng.uniform(0.0, 2.0, (samples, 2))
    inside = (x[:, 0] - 1.0) ** 2 + (x[:, 1] - 0.3) ** 2 < 0.5
    y = _label_flip(rng, inside.astype(np.float64), noise)
    return _as_float32(x, y)


def spiral(samples, rng, noise):
    """Two interleaved spirals (TensorFlow Playground); --noise is the point jitter (default 0.1)."""
    per_class = samples // 2
    jitter = noise if noise > 0 else 0.1
    step = np.arange(per_class) / per_class
    radius = 5.0 * step
    points, labels = [], []
    for delta, label in ((0.0, 1.0), (math.pi, 0.0)):
        angle = 1.75 * step * 2 * math.pi + delta
        offsets = rng.uniform(-jitter, jitter, (per_class, 2))
        points.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1) + offsets)
        labels.append(np.full(per_class, label))
    return _as_float32(np.concatenate(points), np.concatenate(labels))


def circle(samples, rng, noise):
    """A disc of class 1 inside a ring of class 0, shifted by (+1, +1); --noise moves labels near the edge."""
    outer = 1.0
    half = samples // 2
    radius = np.concatenate(
        [rng.uniform(0.0, 0.5 * outer, half), rng.uniform(0.7 * outer, outer, samples - half)]
    )
    angle = rng.uniform(0.0, 2 * math.pi, samples)
    points = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    offset = rng.uniform(-outer, outer, (samples, 2)) * noise
    labels = (np.linalg.norm(points + offset, axis=1) < 0.5 * outer).astype(np.float64)
    return _as_float32(points + 1.0, labels)


def xor(samples, rng, noise):
    """Playground XOR: points in [-5,5]^2 pushed 0.3 off the axes, class 1 when x0*x1 >= 0.

    As in the Playground, --noise jitters the point used for the label, not the
    stored point, so noise shows up as mislabelled points near the axes.
    """
    points = rng.uniform(-5.0, 5.0, (samples, 2))
    points = points + np.where(points > 0, 0.3, -0.3)
    jittered = points + rng.uniform(-5.0, 5.0, (samples, 2)) * noise
    labels = (jittered[:, 0] * jittered[:, 1] >= 0).astype(np.float64)
    return _as_float32(points, labels)


def gauss(samples, rng, noise):
    """Playground Gaussians: class 1 around (2,2), class 0 around (-2,-2), variance 0.5 + 7*noise."""
    half = samples // 2
    spread = math.sqrt(0.5 + 7.0 * noise)
    positive = rng.normal((2.0, 2.0), spread, (half, 2))
    negative = rng.normal((-2.0, -2.0), spread, (samples - half, 2))
    labels = np.concatenate([np.ones(half), np.zeros(samples - half)])
    return _as_float32(np.concatenate([positive, negative]), labels)


def gender(samples, rng, noise):
    """Weight, height, age ~ N(0,1); the first half ("male", class 1) shifted by (+1, +1, -1); one-hot targets."""
    features = rng.normal(0.0, 1.0 + noise, (samples, 3))
    half = samples // 2
    features[:half] += (1.0, 1.0, -1.0)
    labels = np.concatenate([np.ones(half, dtype=int), np.zeros(samples - half, dtype=int)])
    return _as_float32(features, np.eye(2)[labels])


TOY_DATASETS: dict[str, ToySet] = {
    "beans1": ToySet(beans1, REGRESSION, "1-D regression: toxicity = 1.2*size + noise",
                     "spread of the uniform noise added to y (0 = the course's 0.1)", draw_bytes=32),
    "beans2": ToySet(beans2, REGRESSION, "1-D regression: toxicity = 0.7*size + 0.5 + noise",
                     "spread of the centred uniform noise (0 = the course's 0.2)", draw_bytes=40),
    "beans0": ToySet(beans0, BINARY, "1-D binary: toxic above one size threshold",
                     "probability of flipping each label", draw_bytes=49),
    "beans3": ToySet(beans3, BINARY, "1-D binary: toxic inside a band of sizes (needs a hidden layer)",
                     "probability of flipping each label", draw_bytes=49),
    "beans7": ToySet(beans7, BINARY, "2-D binary: classes split by a straight line",
                     "probability of flipping each label", draw_bytes=53),
    "beans4": ToySet(beans4, BINARY, "2-D binary: toxic inside a disc (needs 2 hidden units)",
                     "probability of flipping each label", draw_bytes=54),
    "spiral": ToySet(spiral, BINARY, "2-D binary: two interleaved spirals",
                     "half-width of the uniform jitter of each point (0 = the course's 0.1)", draw_bytes=92),
    "circle": ToySet(circle, BINARY, "2-D binary: a disc inside a ring",
                     "label noise: offset, as a fraction of the radius, before the in-disc test",
                     draw_bytes=108),
    "xor": ToySet(xor, BINARY, "2-D binary: Playground XOR of the quadrants",
                  "label noise: the point used for the label is jittered by U(-5,5)*noise", draw_bytes=64),
    "gauss": ToySet(gauss, BINARY, "2-D binary: two Gaussian clouds",
                    "widens the clouds: variance = 0.5 + 7*noise (Playground range 0-0.5)", draw_bytes=64),
    "gender": ToySet(gender, MULTICLASS, "3 features (weight, height, age) -> 2 classes, one-hot",
                     "adds to the features' standard deviation", draw_bytes=88, default_samples=1000),
}


def list_datasets() -> dict[str, tuple[str, str]]:
    """Every dataset name -> (task, one-line summary), without loading anything heavy."""
    from beanstrain.data.images import IMAGE_DATASETS

    listing = {name: (entry.task, entry.summary) for name, entry in TOY_DATASETS.items()}
    listing.update({name: (MULTICLASS, entry.summary) for name, entry in IMAGE_DATASETS.items()})
    return listing


def dataset_task(name: str) -> str:
    """The task of a dataset, for choosing losses before any data is read."""
    return lookup("dataset", name, {n: task for n, (task, _) in list_datasets().items()})


def dataset_gives(name: str) -> tuple[str, ...]:
    """What a dataset gives a network (FEATURE_VECTORS, PIXEL_VECTORS, IMAGES), before any data is read."""
    from beanstrain.images import IMAGE_DATASETS

    return lookup("dataset", name, {**TOY_DATASETS, **IMAGE_DATASETS}).gives


def is_image_dataset(name: str) -> bool:
    from beanstrain.data.images import IMAGE_DATASETS

    return name in IMAGE_DATASETS


def generate(name: str, samples: int, noise: float, seed: int, stream: int = TRAIN_STREAM):
    """One draw of a toy set: `(x, y)` float32, reproducible from `(seed, stream)`.

    >>> x, y = generate("spiral", samples=200, noise=0.0, seed=7)
    """
    entry = lookup("dataset", name, TOY_DATASETS)
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    return entry.generate(samples, rng, noise)


def load_dataset(name: str, samples: int | None = None, noise: float = 0.0, seed: int = 0,
                 data_path: str | None = None) -> Dataset:
    """Train and test splits of any registered dataset, as float32 arrays.

    Image pixels are scaled to [0, 1] and given a channel axis, (N, 28, 28, 1);
    networks that want 784-vectors flatten them themselves.
    """
    if is_image_dataset(name):
        return _load_image_dataset(name, data_path)
    entry = lookup("dataset", name, TOY_DATASETS)
    samples = samples or entry.default_samples
    x_train, y_train = generate(name, samples, noise, seed, TRAIN_STREAM)
    x_test, y_test = generate(name, samples, noise, seed, TEST_STREAM)
    return Dataset(name, entry.task, x_train, y_train, x_test, y_test, entry.num_classes)


def _scale_images(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    return images.astype(np.float32)[..., None]


def _load_image_dataset(name: str, data_path: str | None) -> Dataset:
    from beanstrain.data.images import IMAGE_DATASETS, load_images

    images = load_images(name, data_path)
    return Dataset(
        name, MULTICLASS,
        _scale_images(images.x_train), images.y_train.astype(np.int64),
        _scale_images(images.x_test), images.y_test.astype(np.int64),
        num_classes=10, source=images.source, class_names=IMAGE_DATASETS[name].class_names,
    )


def check_samples(name: str, samples: int | None) -> None:
    """Refuse a sample count too small to give both classes a point, or too large to draw in memory."""
    if samples is None or is_image_dataset(name):
        return
    if samples < 4:
        raise UsageError(f"--samples must be at least 4 for {name}, got {samples}")
    needed, available = draw_bytes(name, samples), available_memory()
    if available is not None and needed > available:
        raise UsageError(f"--samples {samples} for {name} needs about {format_bytes(needed)} of memory to draw "
                         f"its train and test sets, and this machine has {format_bytes(available)} available; "
                         "use fewer --samples")


def draw_bytes(name: str, samples: int) -> int:
    """Bytes `load_dataset` needs at its peak to draw `samples` train and as many test points of a generated set."""
    return samples * lookup("dataset", name, TOY_DATASETS).draw_bytes


# Where Linux says how much memory a new allocation can get without swapping or killing anything.
MEMINFO = "/proc/meminfo"
# A cgroup v2 limit (a container's memory) can be lower than what the machine has free.
CGROUP_MEMORY = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, within any cgroup limit; None when unknown."""
    candidates = [_meminfo_available(), _cgroup_headroom()]
    if candidates[0] is None:
        try:  # not Linux: the free physical pages, where the system reports them
            candidates[0] = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    known = [value for value in candidates if value is not None and value > 0]
    return min(known) if known else None


def _meminfo_available() -> int | None:
    try:
        with open(MEMINFO, encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the figure is in kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    try:
        with open(CGROUP_MEMORY[0], encoding="ascii") as limit, open(CGROUP_MEMORY[1], encoding="ascii") as used:
            limit_text, used_text = limit.read().strip(), used.read().strip()
        return None if limit_text == "max" else int(limit_text) - int(used_text)
    except (OSError, ValueError):
        return None


def format_bytes(size: int) -> str:
    """`format_bytes(32 * 2**30)` -> '32.0 GiB'; below a GiB, in MiB."""
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"
