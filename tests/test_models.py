"""The network registry: every network builds for its inputs, and matches SPEC.md's Networks table layer by layer.

The table below is SPEC's, transcribed by hand: each hidden layer with its
units or filters, activation, initialisers, bias, kernel, stride, padding and
pooling, then the output layer the task asks for.  A network added to the
registry fails `test_every_network_has_a_row` until its row is written here.
"""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import FEATURE_VECTORS, IMAGES, PIXEL_VECTORS
from beanstrain.errors import UsageError
from beanstrain.models import NETWORKS, build_model, check_fits, get_network, model_input_shape, model_inputs
from beanstrain.models import describe as describe_network


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_network_builds_for_its_inputs(name):
    takes = NETWORKS[name].takes
    data_shape = (2,) if takes == FEATURE_VECTORS else (28, 28, 1)
    model = build_model(name, data_shape, "binary" if takes == FEATURE_VECTORS else "multiclass", 10)
    outputs = model(np.zeros((3, *{FEATURE_VECTORS: (2,), PIXEL_VECTORS: (784,), IMAGES: (28, 28, 1)}[takes]),
                             "float32"))
    assert outputs.shape[0] == 3


def test_the_course_networks_have_the_course_shapes():
    assert [layer.units for layer in build_model("hidden2", (2,), "binary", 2).layers] == [2, 1]
    assert [layer.units for layer in build_model("deep8", (2,), "binary", 2).layers] == [8, 8, 8, 1]
    assert build_model("lenet5", (28, 28, 1), "multiclass", 10).count_params() == 44_426
    assert build_model("mlp", (784,), "multiclass", 10).count_params() == 335_114


def test_flat_networks_see_images_as_vectors():
    images = np.zeros((4, 28, 28, 1), "float32")
    assert model_input_shape("mlp", (28, 28, 1)) == (784,)
    assert model_inputs("mlp", images).shape == (4, 784)
    assert model_inputs("lenet5", images).shape == (4, 28, 28, 1)


def test_image_networks_refuse_feature_vectors():
    with pytest.raises(UsageError, match="model 'lenet5' takes 28x28 images, and beans4 gives feature vectors"):
        check_fits("lenet5", "beans4")


def test_unknown_network_names_the_closest():
    with pytest.raises(UsageError, match="unknown model 'hiden2'; did you mean 'hidden2'"):
        get_network("hiden2")


GLOROT, ZEROS = ("GlorotUniform", {}), ("Zeros", {})
# `kernel_initializer="random_normal"` is Keras's RandomNormal() with its defaults.
RANDOM_NORMAL = ("RandomNormal", {"mean": 0.0, "stddev": 0.05})


def dense(units, activation, kernel_initializer=GLOROT, use_bias=True):
    return {"class": "Dense", "units": units, "activation": activation, "use_bias": use_bias,
            "kernel_initializer": kernel_initializer, "bias_initializer": ZEROS}


def conv5x5(filters):
    return {"class": "Conv2D", "filters": filters, "kernel_size": (5, 5), "strides": (1, 1), "padding": "valid",
            "activation": "relu", "use_bias": True, "kernel_initializer": GLOROT, "bias_initializer": ZEROS}


AVERAGE_POOL_2 = {"class": "AveragePooling2D", "pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
FLATTEN = {"class": "Flatten"}

# SPEC's "layers" column without the output layer, which follows the task.
HIDDEN_LAYERS = {
    "slope": [],
    "neuron": [],
    "hidden2": [dense(2, "sigmoid")],
    "deep8": [dense(8, "relu")] * 3,
    "mlp": [dense(256, "relu")] * 3,
    "mlp512": [dense(512, "relu")],
    "mlp-sigmoid": [dense(128, "sigmoid", kernel_initializer=RANDOM_NORMAL),
                    dense(256, "sigmoid", kernel_initializer=RANDOM_NORMAL)],
    "dense128": [FLATTEN, dense(128, "relu")],
    "dense128-nobias": [FLATTEN, dense(128, "relu", use_bias=False)],
    "lenet5": [conv5x5(6), AVERAGE_POOL_2, conv5x5(16), AVERAGE_POOL_2, FLATTEN, dense(120, "relu"),
               dense(84, "relu")],
    "softmax2": [dense(4, "relu", kernel_initializer=RANDOM_NORMAL)],
}

# SPEC's "used with" column: (input shape the dataset gives, task, classes), and the parameter
# count worked out by hand from the layer sizes.
MNIST = (28, 28, 1)
COURSE_USES = {
    "slope": [((1,), "regression", 1, 1), ((1,), "binary", 2, 1)],  # y = w * x: one weight
    "neuron": [((1,), "binary", 2, 1 + 1), ((2,), "binary", 2, 2 + 1), ((1,), "regression", 2, 1 + 1)],
    "hidden2": [((1,), "binary", 2, 7), ((2,), "binary", 2, 2 * 2 + 2 + 2 + 1)],  # 1-2-1: the course's 7
    "deep8": [((2,), "binary", 2, (2 * 8 + 8) + 2 * (8 * 8 + 8) + (8 + 1))],
    "mlp": [(MNIST, "multiclass", 10, (784 * 256 + 256) + 2 * (256 * 256 + 256) + (256 * 10 + 10))],
    "mlp512": [(MNIST, "multiclass", 10, (784 * 512 + 512) + (512 * 10 + 10))],
    "mlp-sigmoid": [(MNIST, "multiclass", 10, (784 * 128 + 128) + (128 * 256 + 256) + (256 * 10 + 10))],
    "dense128": [(MNIST, "multiclass", 10, (784 * 128 + 128) + (128 * 10 + 10))],
    "dense128-nobias": [(MNIST, "multiclass", 10, 784 * 128 + 128 * 10)],  # the course's levels experiment
    # conv 6 x (5*5*1 + 1); conv 16 x (5*5*6 + 1); 4*4*16 -> 120 -> 84 -> 10
    "lenet5": [(MNIST, "multiclass", 10, 6 * 26 + 16 * 151 + (256 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10))],
    "softmax2": [((3,), "multiclass", 2, (3 * 4 + 4) + (4 * 2 + 2))],
}
# What the network sees: flat networks take images as 784-vectors.
MODEL_INPUT = {"mlp": (784,), "mlp512": (784,), "mlp-sigmoid": (784,)}
# The course's hand-written network draws its output layer's kernel from RandomNormal() too.
OUTPUT_INITIALIZER = {"mlp-sigmoid": RANDOM_NORMAL}


def output_layer(task, classes, use_bias=True):
    if task == "regression":
        return dense(1, "linear", use_bias=use_bias)
    return dense(1, "sigmoid", use_bias=use_bias) if task == "binary" else dense(classes, "softmax", use_bias=use_bias)


DESCRIBED_KEYS = ("units", "filters", "kernel_size", "strides", "padding", "pool_size", "activation", "use_bias",
                  "kernel_initializer", "bias_initializer")
INITIALIZER_KEYS = ("mean", "stddev", "minval", "maxval", "scale", "mode", "distribution", "value")


def describe(layer) -> dict:
    """A built layer in the table's terms: its class and every setting above that it has."""
    config = layer.get_config()
    described = {"class": type(layer).__name__}
    for key in DESCRIBED_KEYS:
        if key in config:
            value = config[key]
            if isinstance(value, dict):  # a serialized initializer
                value = (value["class_name"],
                         {name: setting for name, setting in value["config"].items() if name in INITIALIZER_KEYS})
            described[key] = value
    return described


def test_every_network_has_a_row():
    assert set(NETWORKS) == set(HIDDEN_LAYERS) == set(COURSE_USES)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_matches_the_table_layer_by_layer(name):
    for input_shape, task, classes, parameters in COURSE_USES[name]:
        model = build_model(name, input_shape, task, classes)
        output = {**output_layer(task, classes, use_bias=NETWORKS[name].biases),
                  "kernel_initializer": OUTPUT_INITIALIZER.get(name, GLOROT)}
        assert [describe(layer) for layer in model.layers] == HIDDEN_LAYERS[name] + [output]
        assert model.input_shape == (None, *MODEL_INPUT.get(name, input_shape))
        assert model.count_params() == parameters


@pytest.mark.parametrize("task, classes", [("regression", 2), ("binary", 2), ("multiclass", 3)])
def test_the_output_layer_follows_the_task(task, classes):
    model = build_model("deep8", (2,), task, classes)
    assert describe(model.layers[-1]) == output_layer(task, classes)
    assert model.output_shape == (None, 1 if task != "multiclass" else classes)


KERAS_INITIALIZERS = {"GlorotUniform": "glorot_uniform", "RandomNormal": "random_normal"}


def oracle_model(name, input_shape, task, classes, seed):
    """The network written out in plain Keras from the table above, its output layer made first as the
    course's builders made it, with the seed set as a run sets it."""
    import keras

    keras.utils.set_random_seed(seed)
    output = output_layer(task, classes, use_bias=NETWORKS[name].biases)
    head = keras.layers.Dense(units=output["units"], activation=output["activation"], use_bias=output["use_bias"],
                              kernel_initializer=KERAS_INITIALIZERS[OUTPUT_INITIALIZER.get(name, GLOROT)[0]])
    stack = [keras.Input(shape=MODEL_INPUT.get(name, input_shape))]
    for row in HIDDEN_LAYERS[name]:
        if row["class"] == "Flatten":
            stack.append(keras.layers.Flatten())
        else:
            stack.append(keras.layers.Dense(units=row["units"], activation=row["activation"], use_bias=row["use_bias"],
                                            kernel_initializer=KERAS_INITIALIZERS[row["kernel_initializer"][0]]))
    return keras.Sequential([*stack, head])


DESCRIBED = sorted(name for name, network in NETWORKS.items() if network.description)


@pytest.mark.parametrize("name", DESCRIBED)
def test_every_named_dense_network_is_its_description_weight_for_weight(name):
    """The registry's network, the same network described key by key (hidden, activation), and the table's
    network written in plain Keras: the same layers and the same weights from the same seed."""
    import keras

    own = NETWORKS[name].description
    input_shape, task, classes, _ = COURSE_USES[name][0]
    described = describe_network(name, hidden=list(own.hidden) or [0], activation=list(own.activation) or None)
    assert described == own
    built = []
    for description in (None, described):
        keras.utils.set_random_seed(11)
        built.append(build_model(name, input_shape, task, classes, description=description))
    oracle = oracle_model(name, input_shape, task, classes, seed=11)
    for model in built:
        assert model.name == name
        assert [describe(layer) for layer in model.layers] == [describe(layer) for layer in oracle.layers]
        for mine, expected in zip(model.get_weights(), oracle.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, expected)


def test_a_description_changes_the_network_and_keeps_the_rest():
    model = build_model("hidden2", (2,), "binary", 2, description=describe_network("hidden2", hidden=[3]))
    assert [(layer.units, layer.activation.__name__) for layer in model.layers] == [(3, "sigmoid"), (1, "sigmoid")]
    deep = describe_network("deep8", hidden=[4, 4], activation=["tanh", "relu"], l1=0.01, l2=0.001, dropout=0.2,
                            features=["x1", "x2", "x1*x2"])
    model = build_model("deep8", (2,), "regression", 1, description=deep)
    assert [type(layer).__name__ for layer in model.layers] == ["Features", "Dense", "Dropout", "Dense", "Dropout",
                                                                "Dense"]
    assert model.name == "dense-4-4" and deep.label() == "4-4 tanh/relu, L1 0.01, L2 0.001, dropout 0.2"
    dense_layers = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert all(layer.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.001} for layer in dense_layers)
    assert dense_layers[0].kernel.shape == (3, 4)  # three features in
    assert model(np.zeros((5, 2), "float32")).shape == (5, 1)


@pytest.mark.parametrize("settings, message", [
    ({"hidden": [0, 3]}, "every hidden layer needs at least one unit"),
    ({"hidden": [-1]}, "every hidden layer needs at least one unit"),
    ({"hidden": ["a"]}, "hidden must be a list of whole numbers"),
    ({"activation": "sigmod"}, "unknown activation 'sigmod'; did you mean 'sigmoid'"),
    ({"hidden": [2], "activation": ["tanh", "relu"]}, "activation lists 2 activations .* for 1 hidden layer;"),
    ({"l2": -1.0}, "--l2 must be a finite number >= 0"),
    ({"l1": float("nan")}, "--l1 must be a finite number >= 0"),
    ({"dropout": 1.5}, r"--dropout must be a rate in \[0, 1\)"),
    ({"features": ["x3"]}, "unknown feature 'x3'"),
])
def test_a_bad_description_is_refused_in_one_line(settings, message):
    with pytest.raises(UsageError, match=message):
        describe_network("hidden2", **settings)


def test_lenet5_is_not_described():
    with pytest.raises(UsageError, match="model 'lenet5' is not a stack of dense layers.*dense128, dense128-nobias"):
        describe_network("lenet5", hidden=[3])
