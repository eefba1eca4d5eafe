"""Registry of the course's networks: named descriptions of dense networks, and LeNet-5's builder.

The hidden layers are the course's (each dense network a `descriptions.Description`,
which a recipe's `hidden`, `activation`, `l1`, `l2`, `dropout` and `features` change
through `describe`); the output layer follows from the task
(`descriptions.output_layer`), so the same network fits a regression set (a linear unit),
a binary set (one sigmoid unit) or a multiclass set (softmax over the
classes).  For the course's pairings this gives exactly SPEC's tables:

    >>> model = build_model("hidden2", input_shape=(2,), task="binary", num_classes=2)
    >>> [layer.units for layer in model.layers]
    [2, 1]

Each network takes one kind of input (`Network.takes`), and a dataset fits it
when it gives that kind (`data.get_dataset(name).gives`): the toy networks take the
generated sets' feature vectors, `mlp` and `mlp512` an image set's 784-vectors,
`dense128` and `lenet5` its 28x28 images.  `check_fits` refuses any other
pair from the registries alone, before any data is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from beanstrain.data import FEATURE_VECTORS, IMAGES, PIXEL_VECTORS, get_dataset, list_datasets
from beanstrain.descriptions import (
    Description,
    activations_for,
    build_dense,
    check_hidden,
    check_rates,
    output_layer,
)
from beanstrain.devices import load_keras
from beanstrain.engines import ENGINES
from beanstrain.errors import UsageError, lookup
from beanstrain.features import check_features


@dataclass(frozen=True)
class Network:
    summary: str
    # A dense network is a named description (descriptions.Description), built by `descriptions.build_dense`;
    # a network that is not a stack of dense layers (LeNet-5) has its own builder instead.
    description: Description | None = None
    build: Callable | None = None  # (input_shape, head) -> keras.Sequential, for a network with no description
    # What it takes: FEATURE_VECTORS (the generated sets), PIXEL_VECTORS (images flattened to 784) or IMAGES.
    takes: str = FEATURE_VECTORS
    # An engine (engines.ENGINES) measured faster for this network on a CPU whatever the run's length
    # (docs/engines.md); None lets `engines.choose_engine`'s rule pick by the run's length.
    engine: str | None = None

    @property
    def biases(self) -> bool:
        """False for a network whose layers have weights only (the output layer too): every trainable
        value is then a weight, which is what training on levels (recipe key `levels`) needs."""
        return self.description.biases if self.description else True


def dense(summary: str, hidden=(), activation=(), takes: str = FEATURE_VECTORS, **settings) -> Network:
    """A named dense network: `hidden` units per layer, one activation for all of them or one each."""
    activations = (activation,) * len(hidden) if isinstance(activation, str) else tuple(activation)
    return Network(summary, Description(hidden=tuple(hidden), activation=activations, **settings), takes=takes)


def lenet5(input_shape, head):
    keras = load_keras()
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(filters=6, kernel_size=5, activation="relu", padding="valid"),
            layers.AveragePooling2D(pool_size=2),
            layers.Conv2D(filters=16, kernel_size=5, activation="relu", padding="valid"),
            layers.AveragePooling2D(pool_size=2),
            layers.Flatten(),
            layers.Dense(units=120, activation="relu"),
            layers.Dense(units=84, activation="relu"),
            head,
        ],
        name="lenet5",
    )


NETWORKS: dict[str, Network] = {
    "slope": dense("y = w * x: one weight per input, no bias (the course's first model)", biases=False),
    "neuron": dense("a single unit: sigmoid for classes, linear for regression"),
    "hidden2": dense("2 sigmoid hidden units, then the output unit (1-2-1, 2-2-1)", [2], "sigmoid"),
    "deep8": dense("3 hidden relu layers of 8 units, then the output unit", [8, 8, 8], "relu"),
    "softmax2": dense("4 relu units (random-normal init), then softmax", [4], "relu",
                      kernel_initializer="random_normal"),
    "mlp": dense("3 relu layers of 256 units, then softmax", [256, 256, 256], "relu", PIXEL_VECTORS),
    "mlp512": dense("1 relu layer of 512 units, then softmax", [512], "relu", PIXEL_VECTORS),
    # The course's network written by hand in TensorFlow: every kernel from RandomNormal (stddev 0.05), every
    # bias zero, the output layer's too.
    "mlp-sigmoid": dense("sigmoid layers of 128 and 256 units, random-normal kernels, then softmax", [128, 256],
                         "sigmoid", PIXEL_VECTORS, kernel_initializer="random_normal",
                         output_initializer="random_normal"),
    "dense128": dense("Flatten, 128 relu units, then softmax", [128], "relu", IMAGES, flatten=True),
    # The course's network for weights on levels: dense128 with no biases (the output layer has none either).
    "dense128-nobias": dense("dense128 without biases, for weights on levels", [128], "relu", IMAGES, flatten=True,
                             biases=False),
    # XLA's CPU convolutions train LeNet-5 many times slower than TensorFlow's oneDNN kernels.
    "lenet5": Network("LeNet-5: two 5x5 conv + average-pool stages, 120-84 relu, softmax", build=lenet5,
                      takes=IMAGES, engine="fit"),
}


def get_network(name: str) -> Network:
    return lookup("model", name, NETWORKS)


def fitting_datasets(name: str) -> list[str]:
    """The datasets a network can take, in `beanstrain list` order."""
    takes = get_network(name).takes
    return [dataset for dataset in list_datasets() if takes in get_dataset(dataset).gives]


def check_fits(name: str, dataset: str) -> None:
    """Refuse a network that cannot take what a dataset gives, naming what would fit; reads no data.

    >>> check_fits("hidden2", "beans4")
    >>> check_fits("hidden2", "mnist")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    beanstrain.errors.UsageError: model 'hidden2' takes feature vectors, and mnist gives 784-vectors or ...
    """
    takes, gives = get_network(name).takes, get_dataset(dataset).gives
    if takes in gives:
        return
    networks = [network for network, entry in NETWORKS.items() if entry.takes in gives]
    raise UsageError(f"model '{name}' takes {takes}, and {dataset} gives {' or '.join(gives)}; {name} fits "
                     f"{', '.join(fitting_datasets(name))}; {dataset} fits {', '.join(networks)}")


def check_engine(name: str, engine: str) -> None:
    """Refuse a network the engine cannot train, naming the networks it trains; reads no data.

    >>> check_engine("lenet5", "numpy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    beanstrain.errors.UsageError: --engine numpy trains slope, neuron, ...; lenet5 takes 28x28 images
    """
    kinds = ENGINES[engine].takes if engine in ENGINES else None
    takes = get_network(name).takes
    if kinds is not None and takes not in kinds:
        fitting = [network for network, entry in NETWORKS.items() if entry.takes in kinds]
        raise UsageError(f"--engine {engine} trains {', '.join(fitting)} (networks that take "
                         f"{' or '.join(kinds)}); {name} takes {takes}")


def set_initial_weights(model, initial, seed: int) -> None:
    """Put a recipe's initial weights into a built network, refusing ones that do not fit it.

    `initial` is "uniform" (every weight drawn from U(0, 1) with the seed, as the course's
    `np.random.rand()`) or one entry per weight array in Keras's order (kernel, bias, kernel, ...):
    a number fills the array, a (nested) list gives every value.

        >>> model = build_model("neuron", input_shape=(2,), task="binary", num_classes=2)
        >>> set_initial_weights(model, [[0.1, 0.1], 0.1], seed=0)     # W = [0.1, 0.1], b = 0.1
        >>> [weight.ravel().tolist() for weight in model.get_weights()]
        [[0.10000000149011612, 0.10000000149011612], [0.10000000149011612]]
        >>> set_initial_weights(model, [0.05], seed=0)
        Traceback (most recent call last):
        beanstrain.errors.UsageError: initial_weights gives 1 array, and neuron has 2: kernel (2, 1), bias (1,)
    """
    if initial is None:
        return
    current = model.get_weights()
    if initial == "uniform":
        generator = np.random.default_rng(seed)
        model.set_weights([generator.random(weight.shape).astype(np.float32) for weight in current])
        return
    names = [variable.path.rsplit("/", 1)[-1] for variable in model.weights]
    described = ", ".join(f"{name} {tuple(weight.shape)}" for name, weight in zip(names, current))
    if len(initial) != len(current):
        raise UsageError(f"initial_weights gives {len(initial)} array{'s' * (len(initial) != 1)}, and {model.name} "
                         f"has {len(current)}: {described}")
    arrays = []
    for name, given, weight in zip(names, initial, current):
        values = np.asarray(given, dtype=np.float32)
        if values.ndim == 0:
            values = np.full(weight.shape, values, dtype=np.float32)
        elif values.size != weight.size:
            raise UsageError(f"initial_weights gives {values.size} values for a {name} of shape "
                             f"{tuple(weight.shape)}; {model.name} has {described}")
        arrays.append(values.reshape(weight.shape))
    model.set_weights(arrays)


# A network with at most this many weights gets them printed after training, as the course prints `w=`.
HANDFUL = 9


def small_weights(model) -> dict | None:
    """A small network's trained weights by the course's names (w, b; W1, b1, ...); None for a larger one.

        >>> model = build_model("slope", input_shape=(1,), task="regression", num_classes=1)
        >>> set_initial_weights(model, [1.25], seed=0)
        >>> small_weights(model)
        {'w': 1.25}
    """
    if model.count_params() > HANDFUL:
        return None
    dense = [layer for layer in model.layers if layer.weights]
    named = {}
    for number, layer in enumerate(dense, start=1):
        suffix = str(number) if len(dense) > 1 else ""
        for weight in layer.get_weights():
            is_kernel = weight.ndim == 2
            name = ("W" if weight.size > 1 or len(dense) > 1 else "w") if is_kernel else "b"
            named[name + suffix] = weight.item() if weight.size == 1 and len(dense) == 1 else weight.tolist()
    return named


def model_input_shape(name: str, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape a network sees for a dataset's sample shape: 28x28x1 images stay images
    for the networks that take IMAGES; every other network sees flat vectors."""
    if get_network(name).takes == IMAGES:
        return data_shape
    size = 1
    for dim in data_shape:
        size *= dim
    return (size,)


def describe(name: str, hidden=None, activation=None, l1: float = 0.0, l2: float = 0.0, dropout: float = 0.0,
             features=None) -> Description | None:
    """The description of network `name` with what a recipe changes; None for a network that has none (LeNet-5).

    Keys left at None keep the network's own (its hidden layers, its activation); a new number of layers keeps
    its first activation.  Every value is checked here, in one line, before any data is read.

        >>> describe("hidden2", hidden=[3]).label(), describe("deep8", activation="tanh").label()
        ('3 sigmoid', '8-8-8 tanh')
    """
    network = get_network(name)
    changes = hidden is not None or activation is not None or l1 or l2 or dropout or features is not None
    if network.description is None:
        if changes:
            dense_ones = [other for other, entry in NETWORKS.items()
                          if entry.description and entry.takes == network.takes]
            raise UsageError(f"model '{name}' is not a stack of dense layers, so --hidden, --activation, --l1, --l2, "
                             f"--dropout and --features do not apply; they describe {', '.join(dense_ones)}")
        return None
    own = network.description
    layers = own.hidden if hidden is None else tuple(check_hidden(hidden))
    check_rates(l1, l2, dropout)
    if features is not None:
        check_features(features)
    return replace(own, hidden=layers, activation=activations_for(activation, len(layers), own.activation),
                   l1=float(l1), l2=float(l2), dropout=float(dropout),
                   features=own.features if features is None else tuple(features))


def network_name(name: str, description: Description | None) -> str:
    """The Keras network's name: the registry's for its own description, else what the description says."""
    if description is None or description == get_network(name).description:
        return name
    return "dense-" + ("-".join(map(str, description.hidden)) or "0")


def build_model(name: str, input_shape, task: str, num_classes: int, description: Description | None = None):
    """A fresh network for this input and task: `name`'s own, or the `description` of it a recipe gives."""
    network = get_network(name)
    shape = model_input_shape(name, tuple(input_shape))
    description = description or network.description
    if description is None:
        return network.build(shape, output_layer(task, num_classes, use_bias=network.biases))
    return build_dense(description, shape, task, num_classes, network_name(name, description))


def model_inputs(name: str, x):
    """Samples in the form a network takes: 28x28x1 images become 784-vectors unless it takes IMAGES."""
    if get_network(name).takes != IMAGES and x.ndim > 2:
        return x.reshape(len(x), -1)
    return x
