"""Recognising a run that trained without learning: one warning line for each dead end found.

    >>> evidence = Evidence(losses=[0.4572, 0.5, 0.5], outputs=np.ones((4, 1)), targets=np.array([0, 1, 0, 1]),
    ...                     accuracy_kind="binary", test_accuracy=0.5, learning_rate=1e6, output_activation="sigmoid")
    >>> warnings = dead_ends(evidence, relu_check=lambda: ([], 0))
    >>> len(warnings)
    3
    >>> print(warnings[0])  # doctest: +NORMALIZE_WHITESPACE
    predictions constant over the test set (spread 0 of 1); likely cause: a learning rate far too high
    (1e+06): the outputs are pinned at 0 or 1, where the sigmoid has no gradient; try one 100 to 10000
    times lower

`beanstrain fit --dataset spiral --model deep8 --learning-rate 1e6` ends with
no NaN (the divergence check never fires) and a loss sitting at 0.5 from the
second epoch on.  Three symptoms give such a run away, each tested with its
own threshold below: predictions (nearly) constant over the test set, a final
loss no lower than the first epoch's, and test accuracy at the rate of always
guessing the majority class.  Each warning names the likely cause (a learning
rate far too high, far too low, dead relu units, or simply too little
training) and what to try.  The run still finishes: `eval --min-accuracy` is
the gate, these are advice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Outputs spanning at most this fraction of the targets' range (1 for probabilities) are "constant".
CONSTANT_SPREAD = 0.01
# A final training loss at or above (1 - LOSS_STALL) times the first epoch's is "no lower": it fell by 1% or less.
LOSS_STALL = 0.01
# Test accuracy at or below the majority class's share plus this margin is "at the majority class's rate".
MAJORITY_MARGIN = 0.01
# A sigmoid or softmax output this close to 0 or 1 has (in float32) no gradient left.
SATURATED = 1e-6
# Dead relu units are looked for on at most this many training samples, in slices of PROBE_SLICE.
PROBE_SAMPLES, PROBE_SLICE = 10_000, 2048


@dataclass
class Evidence:
    """What a finished run shows: its training losses per epoch and its outputs on the test set."""

    losses: list[float]
    outputs: np.ndarray  # the network's outputs on the test set, (samples, units)
    targets: np.ndarray  # the test targets as the loss sees them (0/1, one-hot or class numbers)
    accuracy_kind: str | None  # "binary", "categorical", "sparse", or None for regression
    test_accuracy: float | None
    learning_rate: float
    output_activation: str | None  # "sigmoid", "softmax", or None (a linear output)
    level_mapping: str | None = None  # a run on levels: its mapping from level to weight (engines.levels)


@dataclass
class DeadLayer:
    name: str  # "layer 2": its place in the network, counted from 1
    dead: int  # units whose output is 0 on every sample probed
    units: int


# --- the three symptoms -------------------------------------------------------------------------------


def constant_spread(outputs: np.ndarray, scale: float) -> float | None:
    """The outputs' largest spread (max - min over the test set, over each output unit), when it is at most
    CONSTANT_SPREAD of `scale`; None when the predictions do vary.

        >>> constant_spread(np.array([[0.25], [0.2578125]]), scale=1.0)
        0.0078125
    """
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if len(outputs) < 2 or scale <= 0:
        return None
    spread = float(np.ptp(outputs, axis=0).max())
    return spread if spread <= CONSTANT_SPREAD * scale else None


def loss_stalled(losses: list[float]) -> tuple[float, float] | None:
    """(first epoch's loss, final loss) when the final one is no lower (fell by LOSS_STALL or less); else None.

        >>> loss_stalled([0.4572, 0.5, 0.5])
        (0.4572, 0.5)
    """
    if len(losses) < 2 or not losses[0] > 0:
        return None
    first, final = float(losses[0]), float(losses[-1])
    return (first, final) if final >= first * (1 - LOSS_STALL) else None


def majority_rate(accuracy: float, labels: np.ndarray) -> tuple[int, float] | None:
    """(majority class, its share of `labels`) when `accuracy` is at most that share plus MAJORITY_MARGIN.

        >>> majority_rate(0.5, np.array([0, 1, 1, 0]))
        (0, 0.5)
    """
    labels = np.asarray(labels).ravel()
    if not len(labels):
        return None
    classes, counts = np.unique(labels, return_counts=True)
    share = float(counts.max()) / len(labels)
    return (int(classes[counts.argmax()]), share) if accuracy <= share + MAJORITY_MARGIN else None


def class_labels(targets: np.ndarray, accuracy_kind: str) -> np.ndarray:
    """The class number of each target, however the loss encodes it."""
    targets = np.asarray(targets)
    if accuracy_kind == "categorical":
        return targets.argmax(axis=-1)
    return targets.round().astype(np.int64).ravel()


# --- the likely cause ---------------------------------------------------------------------------------


def dead_relu_layers(model, x: np.ndarray) -> list[DeadLayer]:
    """Every relu layer of a Sequential network with the number of its units that output 0 on every one of
    the (first PROBE_SAMPLES) training samples `x`: a dead unit passes no gradient and never recovers.
    A convolution's unit is a channel, dead when it is 0 at every position."""
    relu_layers = [index for index, layer in enumerate(model.layers) if _is_relu(layer)]
    if not relu_layers:
        return []
    x = np.asarray(x, dtype=np.float32)[:PROBE_SAMPLES]
    peaks: dict[int, np.ndarray] = {}
    for start in range(0, len(x), PROBE_SLICE):
        values = x[start:start + PROBE_SLICE]
        for index, layer in enumerate(model.layers[:relu_layers[-1] + 1]):
            values = layer(values, training=False)
            if index in relu_layers:
                array = np.asarray(values)
                peak = array.reshape(-1, array.shape[-1]).max(axis=0)
                peaks[index] = peak if index not in peaks else np.maximum(peaks[index], peak)
    return [DeadLayer(f"layer {index + 1}", int(np.sum(peaks[index] <= 0)), len(peaks[index]))
            for index in relu_layers]


def _is_relu(layer) -> bool:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "") == "relu" or type(layer).__name__ == "ReLU"


def _rate(value: float) -> str:
    return f"{value:.3g}"


def likely_cause(evidence: Evidence, dead_layers: list[DeadLayer], probed: int) -> str:
    """The likeliest reason the run did not learn, and what to try, as one clause."""
    rate = _rate(evidence.learning_rate)
    if evidence.level_mapping not in (None, "linear"):
        # On a nonlinear mapping every weight moves one level an epoch along a curve, whatever the rate.
        return (f"the level mapping '{evidence.level_mapping}': each weight steps one level an epoch along its "
                "curve whatever the learning rate, and a run on it can stay near chance (the course's "
                "comparison); train level_mapping = \"linear\" beside it")
    dead = sum(layer.dead for layer in dead_layers)
    units = sum(layer.units for layer in dead_layers)
    whole = [layer.name for layer in dead_layers if layer.units and layer.dead == layer.units]
    if whole or (units and dead * 2 > units):
        where = f", all of {whole[0]}" if whole else ""
        return (f"dead relu units ({dead} of {units} output 0 on all {probed} training samples probed{where}), "
                f"usually from a learning rate far too high ({rate}); try one 10 to 1000 times lower")
    losses = evidence.losses
    outputs = np.asarray(evidence.outputs, dtype=np.float64)
    if evidence.output_activation in ("sigmoid", "softmax") and np.all(np.minimum(outputs, 1 - outputs) <= SATURATED):
        return (f"a learning rate far too high ({rate}): the outputs are pinned at 0 or 1, where the "
                f"{evidence.output_activation} has no gradient; try one 100 to 10000 times lower")
    if len(losses) > 1 and max(losses[1:]) > losses[0]:
        return (f"a learning rate far too high ({rate}): the loss rose above the first epoch's; "
                "try one 10 to 1000 times lower")
    if loss_stalled(losses):
        return (f"a learning rate far too low ({rate}): the loss barely moved; "
                "try one 10 to 1000 times higher, or more --epochs")
    return ("too little training for this network: the loss fell but the predictions did not follow the data; "
            "try more --epochs, a higher --learning-rate or a larger --model")


# --- all together ---------------------------------------------------------------------------------------


def dead_ends(evidence: Evidence, relu_check: Callable[[], tuple[list[DeadLayer], int]]) -> list[str]:
    """One warning per symptom found, each ending with the likely cause; [] for a run that learned.

    `relu_check()` returns (dead relu layers, samples probed); it is called only when a symptom was found,
    so a healthy run pays nothing for it.
    """
    symptoms = []
    scale = 1.0 if evidence.accuracy_kind else float(np.ptp(np.asarray(evidence.targets, dtype=np.float64)))
    spread = constant_spread(evidence.outputs, scale)
    if spread is not None:
        symptoms.append(f"predictions constant over the test set (spread {spread:.3g} of {scale:.3g})")
    stalled = loss_stalled(evidence.losses)
    if stalled:
        first, final = stalled
        symptoms.append(f"final loss {final:.4g} no lower than the first epoch's {first:.4g}" if final >= first else
                        f"final loss {final:.4g} only {100 * (first - final) / first:.2g}% below the first "
                        f"epoch's {first:.4g}")
    if evidence.accuracy_kind and evidence.test_accuracy is not None:
        majority = majority_rate(evidence.test_accuracy, class_labels(evidence.targets, evidence.accuracy_kind))
        if majority:
            symptoms.append(f"test accuracy {evidence.test_accuracy:.4f} no better than always answering the "
                            f"majority class {majority[0]} ({majority[1]:.4f} of the test set)")
    if not symptoms:
        return []
    cause = likely_cause(evidence, *relu_check())
    return [f"{symptom}; likely cause: {cause}" for symptom in symptoms]
