"""The course's generated datasets and the TensorFlow Playground's, one formula each.

    >>> import numpy as np
    >>> x, y = beans4(samples=100, rng=np.random.default_rng(0), noise=0.0)
    >>> x.shape, x.dtype, sorted(set(y.tolist()))
    ((100, 2), dtype('float32'), [0.0, 1.0])

Every generator is a plain function `(samples, rng, noise) -> (x, y)` of
float32 arrays, vectorised from the course's one-point-at-a-time loops with
the same distributions; its docstring says what --noise does.  The registry
of them (`beanstrain.data.DATASETS`) names each and gives its task.
"""

from __future__ import annotations

import math

import numpy as np


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
