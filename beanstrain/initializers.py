"""A network's initial weights drawn in NumPy, so the same seed gives the same network on every backend.

    >>> from beanstrain.models import build_model
    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> first = draw_initial_weights(model, seed=0)
    >>> [weight.shape for weight in first], float(abs(first[0]).max()) <= (6 / 4) ** 0.5
    ([(2, 2), (2,), (2, 1), (1,)], True)
    >>> all((a == b).all() for a, b in zip(first, draw_initial_weights(model, seed=0)))
    True

Keras draws each layer's weights with its backend's own random numbers, which
differ between TensorFlow, JAX and PyTorch even under one seed.  Here each
weight array follows the same distribution its Keras initializer names
(`VarianceScaling` and its Glorot, He and LeCun forms, `RandomNormal`,
`RandomUniform`, `TruncatedNormal`, `Zeros`, `Ones`, `Constant`), drawn from one
NumPy stream of the run's seed, in the order of `model.weights`.
"""

from __future__ import annotations

import math

import numpy as np

from beanstrain.errors import RunError

# A stream of the run's seed of its own: the data draws use streams 0 and 1, the levels stream 2.
WEIGHTS_STREAM = 3
# Keras's truncated normal keeps draws within two standard deviations; this rescales its spread to the
# asked-for one (the standard deviation of a unit normal truncated at +-2).
TRUNCATED_STDDEV = 0.87962566103423978


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Fan-in and fan-out as Keras computes them: a kernel's inputs and outputs, times its receptive field."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _truncated(generator: np.random.Generator, shape, mean: float, stddev: float) -> np.ndarray:
    values = generator.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():  # redraw the tails, as a truncated normal does
        values[outside] = generator.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return mean + stddev * values


def draw(initializer, shape: tuple[int, ...], generator: np.random.Generator) -> np.ndarray:
    """One array drawn as the Keras `initializer` would draw it, from `generator`."""
    kind = type(initializer).__name__
    config = initializer.get_config() if hasattr(initializer, "get_config") else {}
    if kind == "Zeros":
        return np.zeros(shape)
    if kind == "Ones":
        return np.ones(shape)
    if kind == "Constant":
        return np.full(shape, config.get("value", 0.0))
    if kind == "RandomNormal":
        return generator.normal(config.get("mean", 0.0), config.get("stddev", 0.05), shape)
    if kind == "RandomUniform":
        return generator.uniform(config.get("minval", -0.05), config.get("maxval", 0.05), shape)
    if kind == "TruncatedNormal":
        return _truncated(generator, shape, config.get("mean", 0.0), config.get("stddev", 0.05))
    scale, mode, distribution = (getattr(initializer, name, None) for name in ("scale", "mode", "distribution"))
    if None not in (scale, mode, distribution):  # VarianceScaling and its forms: Glorot, He, LeCun
        fan_in, fan_out = fans(shape)
        count = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2)
        variance = scale / max(1.0, count)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return generator.uniform(-limit, limit, shape)
        if distribution == "truncated_normal":
            return _truncated(generator, shape, 0.0, math.sqrt(variance) / TRUNCATED_STDDEV)
        return generator.normal(0.0, math.sqrt(variance), shape)
    raise RunError(f"the initializer {kind} has no NumPy twin, so its weights would differ between backends")


def draw_initial_weights(model, seed: int) -> list[np.ndarray]:
    """Every weight array of `model`, in `model.weights` order, drawn from the run's seed."""
    generator = np.random.default_rng(np.random.SeedSequence([seed, WEIGHTS_STREAM]))
    arrays = []
    for layer in model.layers:
        for variable in layer.weights:
            name = variable.path.rsplit("/", 1)[-1]
            initializer = getattr(layer, f"{name}_initializer", None)
            if initializer is None:
                raise RunError(f"layer {layer.name} has a weight {name} with no initializer to draw it from")
            arrays.append(draw(initializer, tuple(variable.shape), generator).astype(np.float32))
    return arrays
