"""The Playground's input features: new inputs computed from a 1-D or 2-D set's own, before the network.

    beanstrain fit spiral-features
    beanstrain fit --dataset spiral --model deep8 --features x1,x2,x1^2,x2^2,x1*x2,sin(x1),sin(x2)

    >>> import numpy as np
    >>> apply_features(("x1", "x1*x2", "x2^2"), np.array([[2.0, 3.0]]))
    array([[2., 6., 9.]])

Each name is looked up in one fixed table, `FEATURES`; nothing a person types is ever evaluated.
The same table computes a feature in NumPy (the numpy engine, the pictures' replay) and in
Keras (`features_layer`, the first layer of a network with features, so `model.keras`, `eval`,
`predict` and every picture apply them again to whatever inputs they are given).
"""

from __future__ import annotations

import functools

import numpy as np

from beanstrain.devices import load_keras
from beanstrain.errors import UsageError, did_you_mean

# name -> (x1, x2, ops) -> one column; `ops` is NumPy or keras.ops, which both have square, sin and concatenate.
FEATURES = {
    "x1": lambda x1, x2, ops: x1,
    "x2": lambda x1, x2, ops: x2,
    "x1^2": lambda x1, x2, ops: ops.square(x1),
    "x2^2": lambda x1, x2, ops: ops.square(x2),
    "x1*x2": lambda x1, x2, ops: x1 * x2,
    "sin(x1)": lambda x1, x2, ops: ops.sin(x1),
    "sin(x2)": lambda x1, x2, ops: ops.sin(x2),
}
# The data as it is: what a run without --features sees.
PLAIN = {1: ("x1",), 2: ("x1", "x2")}


def parse_features(text: str) -> list[str]:
    """`--features x1,x2,x1^2` as a list of names, each checked against the table.

    >>> parse_features("x1, sin(x2)")
    ['x1', 'sin(x2)']
    """
    names = [name.strip() for name in text.split(",")]
    check_features(names)
    return names


def check_features(names, inputs: int | None = None, dataset: str = "") -> None:
    """Refuse an unknown name (with the closest one), a repeated or an empty list, and x2 on a 1-D set.

    >>> check_features(["x3"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    beanstrain.errors.UsageError: --features: unknown feature 'x3'; did you mean 'x2'? (the features: x1, x2, ...)
    """
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise UsageError(f"--features must be a list of names ({', '.join(FEATURES)}), got {names!r}")
    for name in names:
        if name not in FEATURES:
            raise UsageError(f"--features: unknown feature '{name}'{did_you_mean(name, list(FEATURES))} "
                             f"(the features: {', '.join(FEATURES)})")
    if len(set(names)) != len(names):
        raise UsageError(f"--features: a feature is given twice in {','.join(names)}")
    if inputs is not None and inputs not in PLAIN:
        raise UsageError(f"--features are for the 1-D and 2-D sets; {dataset} has {inputs} inputs")
    if inputs == 1 and any("x2" in name for name in names):
        raise UsageError(f"--features: {dataset} has one input, x1; {', '.join(n for n in names if 'x2' in n)} "
                         "need a second")


def apply_features(names, x, ops=np):
    """The feature columns of inputs `x` (samples, 1 or 2), in the order named, with NumPy or keras.ops."""
    x1 = x[:, 0:1]
    x2 = x[:, 1:2] if x.shape[-1] > 1 else None
    return ops.concatenate([FEATURES[name](x1, x2, ops) for name in names], axis=-1)


@functools.cache
def features_layer():
    """The Keras layer class that computes features, registered so `model.keras` loads it in safe mode."""
    keras = load_keras()

    @keras.saving.register_keras_serializable(package="beanstrain")
    class Features(keras.layers.Layer):
        """The input features named in `names` (from `FEATURES`), computed from a 1-D or 2-D input."""

        def __init__(self, names, **kwargs):
            super().__init__(**kwargs)
            check_features(list(names))  # a model file's names are looked up too, never evaluated
            self.names = tuple(names)

        def call(self, inputs):
            return apply_features(self.names, inputs, keras.ops)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], len(self.names))

        def get_config(self):
            return {**super().get_config(), "names": list(self.names)}

    return Features


def model_features(model) -> tuple[str, ...]:
    """The features a Keras network computes first, or () when it takes the data as it is."""
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ == "Features":
            return tuple(layer.names)
    return ()
