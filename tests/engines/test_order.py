"""The per-epoch batch order: a function of (seed, epoch) alone, the same in NumPy and in TensorFlow."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from beanstrain.engines.order import epoch_permutation, epoch_permutation_tf

SEEDS = (0, 1, 7, 12345, 2**31 - 1)
EPOCHS = (0, 1, 2, 99, 4999, 10**6, 2**31 - 1)
SIZES = (1, 2, 3, 10, 97, 1000, 60_000)


def test_permutation_depends_only_on_seed_and_epoch():
    first = epoch_permutation(3, 7, 100)
    assert sorted(first) == list(range(100))
    np.testing.assert_array_equal(first, epoch_permutation(3, 7, 100))
    assert not np.array_equal(first, epoch_permutation(3, 8, 100))
    assert not np.array_equal(first, epoch_permutation(4, 7, 100))


@pytest.mark.parametrize("seed, epoch", list(itertools.product(SEEDS, EPOCHS)))
def test_numpy_and_tensorflow_give_the_same_order(seed, epoch):
    for size in SIZES:
        np.testing.assert_array_equal(epoch_permutation(seed, epoch, size),
                                      epoch_permutation_tf(seed, epoch, size).numpy())


def test_the_same_order_when_the_epoch_is_a_tensor_inside_a_graph():
    """As the compiled loop and fit's tf.data pipeline call it: int32 and int64 tensors, in a tf.function."""
    from beanstrain.devices import load_tensorflow

    tf = load_tensorflow()
    in_graph = tf.function(lambda epoch: epoch_permutation_tf(5, epoch, 500), jit_compile=True)
    for epoch in (0, 3, 4096):
        expected = epoch_permutation(5, epoch, 500)
        np.testing.assert_array_equal(in_graph(tf.constant(epoch, tf.int32)).numpy(), expected)
        np.testing.assert_array_equal(in_graph(tf.constant(epoch, tf.int64)).numpy(), expected)
