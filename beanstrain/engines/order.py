"""The order in which an epoch visits the training set: a function of (seed, epoch) alone.

    >>> epoch_permutation(seed=0, epoch=0, size=8)
    array([0, 7, 5, 1, 2, 6, 4, 3])
    >>> sorted(epoch_permutation(seed=3, epoch=7, size=100)) == list(range(100))
    True

Every engine feeds its epochs in this order, so the compiled loop, Keras
`fit` and a resumed run all see the same batches.  It is written twice:
`epoch_permutation` in NumPy for code outside a TensorFlow graph, and
`epoch_permutation_tf` for the compiled loop's graph and fit's `tf.data`
pipeline; a test checks the two give the same order.

Integer hashing rather than TensorFlow's random ops, because XLA's stateless
generators do not reproduce the plain kernels.  The hash is a bijection of
32-bit integers, so no two samples tie.
"""

from __future__ import annotations

import numpy as np

MASK32 = 0xFFFFFFFF
SEED_MULTIPLIER, EPOCH_MULTIPLIER = 0x9E3779B1, 0x85EBCA77
MIX_MULTIPLIER = 0x45D9F3B


def _mix32(values: np.ndarray) -> np.ndarray:
    """A bijective 32-bit integer hash (murmur-style finaliser) of uint64 values below 2**32."""
    for _ in range(2):
        values = values ^ (values >> np.uint64(16))
        values = (values * np.uint64(MIX_MULTIPLIER)) & np.uint64(MASK32)
    return values ^ (values >> np.uint64(16))


def epoch_permutation(seed: int, epoch: int, size: int) -> np.ndarray:
    """The indices of the training set in the order epoch `epoch` visits them."""
    key = _mix32(np.array([(int(seed) * SEED_MULTIPLIER + int(epoch) * EPOCH_MULTIPLIER) & MASK32], dtype=np.uint64))
    return np.argsort(_mix32(np.arange(size, dtype=np.uint64) ^ key))


def _mix32_tf(values):
    """`_mix32` in TensorFlow, held in int64 so no step overflows."""
    import tensorflow as tf

    for _ in range(2):
        values = tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 16))
        values = (values * MIX_MULTIPLIER) & MASK32
    return tf.bitwise.bitwise_xor(values, tf.bitwise.right_shift(values, 16))


def epoch_permutation_tf(seed, epoch, size: int):
    """`epoch_permutation` as TensorFlow ops, for graphs: `epoch` may be a tensor.

    >>> from beanstrain.devices import load_tensorflow
    >>> epoch_permutation_tf(seed=0, epoch=load_tensorflow().constant(0), size=8).numpy()
    array([0, 7, 5, 1, 2, 6, 4, 3], dtype=int32)
    """
    # A plain import: this runs inside graphs that tf.data traces with AutoGraph, and the engines
    # have loaded TensorFlow (devices.load_tensorflow) before they build one.
    import tensorflow as tf

    # int64 products may wrap past 2**63; their low 32 bits, all the mask keeps, are still exact.
    key = _mix32_tf((tf.cast(seed, tf.int64) * SEED_MULTIPLIER + tf.cast(epoch, tf.int64) * EPOCH_MULTIPLIER)
                    & MASK32)
    indices = tf.range(size, dtype=tf.int64)
    return tf.argsort(_mix32_tf(tf.bitwise.bitwise_xor(indices, key)))
