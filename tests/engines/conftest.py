"""Fixtures for the engine tests: twin networks that start from the same weights."""

from __future__ import annotations

import pytest

from beanstrain.devices import load_keras
from beanstrain.models import build_model


@pytest.fixture
def twins():
    """`twins(name, input_shape, task, classes)`: two networks with identical initial weights."""
    keras = load_keras()

    def build(name, input_shape, task, classes, seed=0):
        keras.utils.set_random_seed(seed)
        first = build_model(name, input_shape, task, classes)
        second = build_model(name, input_shape, task, classes)
        second.set_weights(first.get_weights())
        return first, second

    return build
