"""Losses, optimizers and accuracy: names a user types, checked against the task.

    >>> check_loss("binary_crossentropy", "binary")
    >>> loss = make_loss("mse")            # a keras.losses.Loss
    >>> optimizer = make_optimizer("sgd", learning_rate=0.05)

Targets are stored the natural way for each dataset (0/1 for binary sets,
class numbers for images, one-hot for `gender`); `encode_targets` converts
them to what the chosen loss expects.
"""

from __future__ import annotations

import math

import numpy as np

from beanstrain.devices import load_keras
from beanstrain.engines.registry import ENGINES
from beanstrain.engines.rules import RULES, make_rule
from beanstrain.errors import UsageError, lookup
from beanstrain.tasks import BINARY, MULTICLASS, REGRESSION, TASKS

# Loss name -> (Keras loss class, tasks it fits).  The classes reduce to the
# batch mean, as `compile(loss="mse")` does.
LOSSES = {
    "mse": ("MeanSquaredError", TASKS),
    "mae": ("MeanAbsoluteError", (REGRESSION, BINARY)),
    "binary_crossentropy": ("BinaryCrossentropy", (BINARY,)),
    "categorical_crossentropy": ("CategoricalCrossentropy", (MULTICLASS,)),
    "sparse_categorical_crossentropy": ("SparseCategoricalCrossentropy", (MULTICLASS,)),
}
LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae"}

DEFAULT_LOSS = {REGRESSION: "mse", BINARY: "binary_crossentropy", MULTICLASS: "categorical_crossentropy"}

# Optimizer name -> Keras class name.  Without --learning-rate each keeps
# Keras's own default rate, as the course's `optimizer="sgd"` does.  Under an
# engine whose registry entry takes "rules", --optimizer names one of
# `engines.rules.RULES` instead (`sgd` there is the same step, by hand).
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}


def canonical_loss(name: str) -> str:
    name = LOSS_ALIASES.get(name, name)
    lookup("loss", name, LOSSES)
    return name


def check_loss(name: str, task: str) -> None:
    """Refuse a loss that does not fit the task (e.g. cross-entropy on a regression set)."""
    _, tasks = LOSSES[canonical_loss(name)]
    if task not in tasks:
        fitting = ", ".join(loss for loss, (_, fits) in LOSSES.items() if task in fits)
        raise UsageError(f"loss '{name}' does not fit a {task} dataset (use one of: {fitting})")


def optimizer_names(engine: str) -> dict:
    """The names --optimizer takes under an engine: Keras's optimizers, or the hand-written rules.

    >>> sorted(optimizer_names("numpy")), sorted(optimizer_names("compiled"))
    (['rosenblatt', 'sgd', 'sign'], ['adam', 'rmsprop', 'sgd'])
    """
    return RULES if engine in ENGINES and ENGINES[engine].optimizers == "rules" else OPTIMIZERS


def check_optimizer(name: str, engine: str = "auto") -> None:
    """An optimizer the engine has; one line naming the engines that have it otherwise.

    >>> check_optimizer("rosenblatt", "compiled")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    beanstrain.errors.UsageError: optimizer 'rosenblatt' is an update rule of --engine numpy; the Keras engines take ...
    """
    names = optimizer_names(engine)
    if name in names:
        return
    others = [other for other in ENGINES if name in optimizer_names(other)]
    if not others:
        lookup("optimizer", name, {**OPTIMIZERS, **optimizer_names("numpy")})
    if names is OPTIMIZERS:
        raise UsageError(f"optimizer '{name}' is an update rule of --engine {' or '.join(others)}; "
                         f"the Keras engines take {', '.join(OPTIMIZERS)}")
    raise UsageError(f"optimizer '{name}' is Keras's, for the Keras engines; --engine {engine} takes the "
                     f"update rules {', '.join(names)}")


def engine_for_rule(requested: str, optimizer: str) -> str:
    """`auto` with an update rule that only a hand-written engine has (`rosenblatt`, `sign`) means that
    engine; anything else is left to `engines.choose_engine`.

        >>> engine_for_rule("auto", "rosenblatt"), engine_for_rule("auto", "sgd"), engine_for_rule("fit", "sign")
        ('numpy', 'auto', 'fit')
    """
    if requested != "auto":
        return requested
    having = [name for name in ENGINES if optimizer in optimizer_names(name)]
    if having and all(ENGINES[name].optimizers == "rules" for name in having):
        return having[0]
    return requested


def check_learning_rate(rate) -> None:
    if rate is None:
        return
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        raise UsageError(f"learning rate must be a positive finite number, got {rate!r}")


def make_loss(name: str):
    loss_class = getattr(load_keras().losses, LOSSES[canonical_loss(name)][0])
    return loss_class()


def make_optimizer(name: str, learning_rate: float | None, engine: str = "auto"):
    """A Keras optimizer, or under an engine that takes rules, an `engines.rules.Rule`."""
    if optimizer_names(engine) is not OPTIMIZERS:
        return make_rule(name, learning_rate)
    keras = load_keras()
    optimizer_class = getattr(keras.optimizers, lookup("optimizer", name, OPTIMIZERS))
    return optimizer_class() if learning_rate is None else optimizer_class(learning_rate=learning_rate)


def accuracy_kind(task: str, loss: str) -> str | None:
    """How accuracy is counted: 'binary' (p > 0.5 matches 0/1), 'categorical'
    (argmax matches the one-hot target), 'sparse' (argmax matches the class
    number), or None for regression, where accuracy means nothing."""
    if task == REGRESSION:
        return None
    if task == BINARY:
        return "binary"
    return "sparse" if canonical_loss(loss) == "sparse_categorical_crossentropy" else "categorical"


def make_accuracy_metric(task: str, loss: str):
    """The Keras metric that counts exactly what the compiled loop's accuracy counts."""
    metrics = load_keras().metrics
    kind = accuracy_kind(task, loss)
    if kind is None:
        return None
    metric_class = {
        "binary": metrics.BinaryAccuracy,
        "categorical": metrics.CategoricalAccuracy,
        "sparse": metrics.SparseCategoricalAccuracy,
    }[kind]
    return metric_class(name="accuracy")


def count_correct(accuracy: str | None, y_true: np.ndarray, y_pred: np.ndarray) -> int:
    """How many predictions are right, counted as Keras's accuracy metrics count them.

    >>> import numpy as np
    >>> count_correct("binary", np.array([[1.0], [0.0]]), np.array([[0.7], [0.6]]))
    1
    >>> count_correct("sparse", np.array([2.0, 0.0]), np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]))
    2
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if accuracy is None:
        return 0
    if accuracy == "binary":
        hits = (y_pred > 0.5).astype(y_true.dtype) == y_true
    elif accuracy == "sparse":
        hits = y_pred.argmax(axis=-1).astype(y_true.dtype) == y_true.reshape(-1)
    else:
        hits = y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)
    return int(hits.sum())


def encode_targets(y: np.ndarray, task: str, loss: str, num_classes: int) -> np.ndarray:
    """Targets in the form the loss expects, always float32.

    Binary and regression targets become a column, (N, 1), matching the single
    output unit; multiclass targets are one-hot except for the sparse loss,
    which wants class numbers.
    """
    if task != MULTICLASS:
        return y.astype(np.float32).reshape(len(y), 1)
    labels = y.argmax(axis=1) if y.ndim == 2 else y.astype(np.int64)
    if canonical_loss(loss) == "sparse_categorical_crossentropy":
        return labels.astype(np.float32)
    return np.eye(num_classes, dtype=np.float32)[labels]
