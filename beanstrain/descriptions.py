"""Networks from a description: hidden layers and their units, activation, L1/L2, dropout and input features.

    beanstrain fit beans4-hidden2 --hidden 3
    beanstrain fit --dataset spiral --model deep8 --hidden 8,8,8,8 --activation tanh --l2 0.001 --dropout 0.1

    >>> description = Description(hidden=(3,), activation=("tanh",))
    >>> model = build_dense(description, (2,), "binary", 2, name="dense-3")
    >>> [(layer.units, layer.activation.__name__) for layer in model.layers]
    [(3, 'tanh'), (1, 'sigmoid')]

Every dense network of the registry (`models.NETWORKS`) is a named `Description`, and `build_dense`
is the one builder that makes them all, so `--model hidden2` and `--hidden 2 --activation sigmoid`
give the same network, weight for weight from the same seed.  The output layer follows from the
task (`output_layer`), as it always has.  The numpy engine reads the built Keras network back
(`engines/numpy_net.read_layers`), so whatever a description gives, every engine trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from beanstrain.data.memory import available_memory, format_bytes
from beanstrain.devices import load_keras
from beanstrain.errors import UsageError, unknown_name
from beanstrain.features import features_layer
from beanstrain.tasks import BINARY, REGRESSION

# The hidden layers' activations: the Playground's four, which the numpy engine differentiates by hand.
ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")
# Bytes one weight of a network needs while it trains: the weight, its gradient, two optimizer slots (Adam's).
BYTES_PER_WEIGHT = 16


@dataclass(frozen=True)
class Description:
    """A dense network: its hidden layers, their activations and initialiser, and what surrounds them."""

    hidden: tuple[int, ...] = ()  # units per hidden layer; () is the output unit(s) alone
    activation: tuple[str, ...] = ()  # one per hidden layer
    kernel_initializer: str = "glorot_uniform"  # the hidden layers' kernels (Keras's default)
    output_initializer: str = "glorot_uniform"  # the output layer's kernel
    biases: bool = True  # False: no layer has a bias (every trainable value is a weight)
    flatten: bool = False  # a Flatten layer first: the network takes 28x28 images
    l1: float = 0.0  # Keras's L1 penalty rate on every kernel (hidden and output)
    l2: float = 0.0  # Keras's L2 penalty rate on every kernel
    dropout: float = 0.0  # the rate of a Dropout layer after each hidden layer; 0: none
    features: tuple[str, ...] = ()  # input features (features.FEATURES) computed first; (): the data as it is

    def label(self) -> str:
        """The network as a person says it: "3 tanh", "8-8-8 relu", "2 sigmoid, L2 0.001"."""
        if not self.hidden:
            text = "no hidden layer"
        else:
            widths = "-".join(str(units) for units in self.hidden)
            kinds = self.activation[0] if len(set(self.activation)) == 1 else "/".join(self.activation)
            text = f"{widths} {kinds}"
        extras = [f"L1 {self.l1:g}"] * bool(self.l1) + [f"L2 {self.l2:g}"] * bool(self.l2)
        extras += [f"dropout {self.dropout:g}"] * bool(self.dropout)
        return ", ".join([text, *extras])


def parse_hidden(text: str) -> list[int]:
    """`--hidden 8,8,8` as [8, 8, 8]; "0" or "" is no hidden layer.  Layers may also be joined by ':'
    (how `sweep --set hidden=4,8:8` lists several networks).

    >>> parse_hidden("8,8,8"), parse_hidden("0"), parse_hidden("8:8")
    ([8, 8, 8], [], [8, 8])
    """
    words = [word.strip() for word in text.replace(":", ",").split(",")]
    if words == [""]:
        return []
    try:
        units = [int(word) for word in words]
    except ValueError:
        raise UsageError(f"--hidden {text}: give the units of each hidden layer as whole numbers, such as 3 or "
                         "8,8,8 (0 for no hidden layer)") from None
    return check_hidden(units, text)


def check_hidden(units, text: str | None = None) -> list[int]:
    """Units per hidden layer, each a positive integer; [0] alone means no hidden layer."""
    given = text if text is not None else ",".join(map(str, units)) if isinstance(units, list) else repr(units)
    if not isinstance(units, list) or not all(isinstance(unit, int) and not isinstance(unit, bool) for unit in units):
        raise UsageError(f"hidden must be a list of whole numbers of units, such as [8, 8, 8]; got {units!r}")
    if units == [0]:
        return []
    if any(unit < 1 for unit in units):
        raise UsageError(f"--hidden {given}: every hidden layer needs at least one unit (0 alone means no hidden "
                         "layer)")
    return units


def check_rates(l1, l2, dropout) -> None:
    for name, value in (("l1", l1), ("l2", l2)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise UsageError(f"--{name} must be a finite number >= 0 (the penalty's rate), got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise UsageError(f"--dropout must be a rate in [0, 1), the fraction of units dropped, got {dropout!r}")


def activations_for(activation, layers: int, default: tuple[str, ...]) -> tuple[str, ...]:
    """One activation per hidden layer: a name for all, a list of one per layer, or the network's own.

    >>> activations_for("tanh", 2, ()), activations_for(None, 3, ("relu",) * 2), activations_for(None, 1, ())
    (('tanh', 'tanh'), ('relu', 'relu', 'relu'), ('sigmoid',))
    """
    if activation is None:
        if len(default) == layers:
            return tuple(default)
        # A network of another depth keeps its first hidden activation; the course's hidden unit is a sigmoid.
        return (default[0] if default else "sigmoid",) * layers
    names = [activation] if isinstance(activation, str) else activation
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise UsageError(f"activation must be a name or a list of names ({', '.join(ACTIVATIONS)}), got {activation!r}")
    for name in names:
        if name not in ACTIVATIONS:
            raise unknown_name("activation", name, ACTIVATIONS)
    if len(names) == 1:
        return (names[0],) * layers
    if len(names) != layers:
        raise UsageError(f"activation lists {len(names)} activations ({', '.join(names)}) for {layers} hidden "
                         f"layer{'s' * (layers != 1)}; give one for all, or one per layer")
    return tuple(names)


def count_weights(description: Description, inputs: int, outputs: int) -> int:
    """The trainable values of the network: each layer's kernel and bias."""
    widths = [len(description.features) or inputs, *description.hidden, outputs]
    return sum(below * above + above * description.biases for below, above in zip(widths, widths[1:]))


def check_size(description: Description, inputs: int, outputs: int) -> None:
    """Refuse a network whose weights would not fit in the memory this process can still allocate."""
    weights = count_weights(description, inputs, outputs)
    needed, available = weights * BYTES_PER_WEIGHT, available_memory()
    if available is not None and needed > available:
        widths = ",".join(map(str, description.hidden))
        raise UsageError(f"--hidden {widths}: a network of {weights:,} weights needs about {format_bytes(needed)} "
                         f"to train, and {format_bytes(available)} of memory is available; use fewer units")


def output_layer(task: str, num_classes: int, use_bias: bool = True, kernel_initializer: str = "glorot_uniform",
                 kernel_regularizer=None):
    """The output unit(s) a task needs: linear, sigmoid, or softmax over the classes.

    Under a mixed precision policy the output stays float32, as Keras's guide advises: a softmax or
    sigmoid in 16 bits rounds probabilities near 0 and 1 to them."""
    keras = load_keras()
    units, activation = {REGRESSION: (1, None), BINARY: (1, "sigmoid")}.get(task, (num_classes, "softmax"))
    dtype = {"dtype": "float32"} if keras.config.dtype_policy().name.startswith("mixed") else {}
    return keras.layers.Dense(units=units, activation=activation, use_bias=use_bias,
                              kernel_initializer=kernel_initializer, kernel_regularizer=kernel_regularizer,
                              name="output", **dtype)


def build_dense(description: Description, input_shape, task: str, num_classes: int, name: str):
    """The Keras network a description gives: [features], [Flatten], each hidden Dense [+ Dropout], the output."""
    keras = load_keras()
    layers = keras.layers

    def regularizer():
        if description.l1 or description.l2:
            return keras.regularizers.L1L2(l1=description.l1, l2=description.l2)
        return None

    # The output layer is made first, as the course's networks always made it: each initialiser takes its
    # seed when it is made, so the order is what gives the same weights from the same seed.
    head = output_layer(task, num_classes, description.biases, description.output_initializer, regularizer())
    stack = [keras.Input(shape=input_shape)]
    if description.features:
        stack.append(features_layer()(names=description.features, name="features"))
    if description.flatten:
        stack.append(layers.Flatten())
    for units, activation in zip(description.hidden, description.activation):
        stack.append(layers.Dense(units=units, activation=activation, use_bias=description.biases,
                                  kernel_initializer=description.kernel_initializer,
                                  kernel_regularizer=regularizer()))
        if description.dropout:
            stack.append(layers.Dropout(rate=description.dropout))
    return keras.Sequential([*stack, head], name=name)
