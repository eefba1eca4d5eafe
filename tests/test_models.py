"""The network registry: every network builds, with the output layer its task needs."""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import FEATURE_VECTORS, IMAGES, PIXEL_VECTORS
from beanstrain.errors import UsageError
from beanstrain.models import NETWORKS, build_model, check_fits, get_network, model_input_shape, model_inputs


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_network_builds_for_its_inputs(name):
    takes = NETWORKS[name].takes
    data_shape = (2,) if takes == FEATURE_VECTORS else (28, 28, 1)
    model = build_model(name, data_shape, "binary" if takes == FEATURE_VECTORS else "multiclass", 10)
    outputs = model(np.zeros((3, *{FEATURE_VECTORS: (2,), PIXEL_VECTORS: (784,), IMAGES: (28, 28, 1)}[takes]),
                             "float32"))
    assert outputs.shape[0] == 3


@pytest.mark.parametrize("task, classes, units, activation", [
    ("regression", 2, 1, "linear"), ("binary", 2, 1, "sigmoid"), ("multiclass", 10, 10, "softmax"),
])
def test_the_output_layer_follows_the_task(task, classes, units, activation):
    output = build_model("deep8", (2,), task, classes).layers[-1]
    assert (output.units, output.activation.__name__) == (units, activation)


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
