"""The hand-written engine against Keras: the same weights as the compiled loop, GradientTape's gradients."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from beanstrain.data import FEATURE_VECTORS
from beanstrain.engines import TrainData
from beanstrain.engines.numpy_engine import NumpyTrainer
from beanstrain.engines.numpy_net import Network, read_layers
from beanstrain.engines.rules import make_rule
from beanstrain.models import NETWORKS, build_model
from beanstrain.objectives import LOSSES, make_loss
from beanstrain.preparation import prepare
from beanstrain.recipes import list_recipes
from beanstrain.tasks import TASKS

# Every network the numpy engine trains, each with the dataset of its first recipe.
TOY_NETWORKS = [name for name, network in NETWORKS.items() if network.takes == FEATURE_VECTORS]



def first_recipe(network: str):
    return next(recipe for recipe in list_recipes().values() if recipe.model == network)


def trained(recipe, engine: str, epochs: int):
    """The weights after `epochs` of `sgd` at 0.05 on 40 samples, batches of 10, Keras's seeded initial weights."""
    recipe = dataclasses.replace(recipe, engine=engine, optimizer="sgd", learning_rate=0.05, epochs=epochs,
                                 samples=40, batch_size=10, initial_weights=None)
    session = prepare(recipe, "cpu", None, io.StringIO())
    trainer = session.make_trainer()
    history = trainer.run(0, epochs)
    return session.model.get_weights(), history


@pytest.mark.parametrize("network", TOY_NETWORKS)
def test_numpy_sgd_ends_where_the_compiled_loop_ends(network):
    """Same initial weights, same batch order, 100 epochs: the same weights to float32 precision."""
    recipe = first_recipe(network)
    compiled_weights, compiled_history = trained(recipe, "compiled", 100)
    numpy_weights, numpy_history = trained(recipe, "numpy", 100)
    for numpy_weight, compiled_weight in zip(numpy_weights, compiled_weights, strict=True):
        np.testing.assert_allclose(numpy_weight, compiled_weight, rtol=1e-4, atol=1e-5)
    for column in compiled_history.columns:
        np.testing.assert_allclose(numpy_history.column(column), compiled_history.column(column), rtol=1e-4,
                                   atol=1e-6)


def losses_for(task: str):
    return [loss for loss, (_, tasks) in LOSSES.items() if task in tasks]


@pytest.mark.parametrize("network", TOY_NETWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_every_layers_gradients_are_gradient_tapes(network, task):
    """Each loss that fits the task, on a random batch from random weights: the chain rule equals autodiff."""
    import tensorflow as tf

    generator = np.random.default_rng(1)
    classes = 3
    model = build_model(network, input_shape=(2,), task=task, num_classes=classes)
    model.set_weights([generator.normal(size=weight.shape).astype("float32") for weight in model.get_weights()])
    x = generator.normal(size=(7, 2)).astype("float32")
    for loss in losses_for(task):
        if task == "multiclass":
            labels = generator.integers(0, classes, size=7)
            y = labels.astype("float32") if loss.startswith("sparse") else np.eye(classes, dtype="float32")[labels]
        else:
            y = generator.random((7, 1)).astype("float32") if task == "regression" else \
                generator.integers(0, 2, size=(7, 1)).astype("float32")
        loss_fn = make_loss(loss)
        with tf.GradientTape() as tape:
            value = loss_fn(y, model(x))
        expected = tape.gradient(value, model.trainable_variables)
        found = Network(read_layers(model), loss).gradients(model.get_weights(), x, y)
        for mine, theirs in zip(found, expected, strict=True):
            np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-4, atol=1e-6, err_msg=loss)


@pytest.mark.parametrize("network", ["slope", "neuron"])
def test_rosenblatt_is_sgd_at_half_the_rate_on_a_linear_unit(network):
    """On squared error, w += rate * (y - w x) x is gradient descent on half the error."""
    generator = np.random.default_rng(2)
    x = generator.random((30, 1)).astype("float32")
    data = TrainData(x, (1.2 * x + 0.1).astype("float32"))
    weights = []
    for rule in (make_rule("rosenblatt", 0.1), make_rule("sgd", 0.05)):
        model = build_model(network, input_shape=(1,), task="regression", num_classes=1)
        model.set_weights([np.full(weight.shape, 0.05, "float32") for weight in model.get_weights()])
        NumpyTrainer(model, make_loss("mse"), rule, data, batch_size=1, seed=0, accuracy=None).run(0, 5)
        weights.append(model.get_weights())
    assert abs(weights[0][0].item() - 0.05) > 0.5  # it learned
    for rosenblatt, sgd in zip(*weights, strict=True):
        np.testing.assert_allclose(rosenblatt, sgd, rtol=1e-6)


def test_the_sign_rule_takes_fixed_steps():
    """Each step moves w by the step exactly, towards the best w, whatever the slope's size."""
    x = np.linspace(0.1, 1, 10, dtype="float32").reshape(-1, 1)
    data = TrainData(x, 1.2 * x)
    model = build_model("slope", input_shape=(1,), task="regression", num_classes=1)
    model.set_weights([np.array([[0.01]], "float32")])
    trainer = NumpyTrainer(model, make_loss("mse"), make_rule("sign", 0.01), data, batch_size=10, seed=0,
                           accuracy=None, snapshot_epochs=range(0, 200))
    trainer.run(0, 150)
    path = np.array([trainer.snapshots[epoch][0].item() for epoch in range(150)])
    np.testing.assert_allclose(path[:119], 0.01 + 0.01 * np.arange(119), atol=1e-4)
    assert abs(path[-1] - 1.2) <= 0.0101


ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear")


def described(task: str, activation: str, l1=0.0, l2=0.0, dropout=0.0, features=None):
    from beanstrain.models import describe

    description = describe("deep8", hidden=[3, 4], activation=activation, l1=l1, l2=l2, dropout=dropout,
                           features=features)
    return build_model("deep8", input_shape=(2,), task=task, num_classes=3, description=description)


def tape_gradients(model, loss_fn, x, y, masks):
    """GradientTape through the Keras layers themselves, each Dropout replaced by the given mask, plus the
    regularizers' losses Keras adds to the loss."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        values, dropped = tf.constant(x), 0
        for layer in model.layers:
            if type(layer).__name__ == "Dropout":
                values = values * masks[dropped]
                dropped += 1
            else:
                values = layer(values)
        value = loss_fn(y, values) + (tf.add_n(model.losses) if model.losses else 0.0)
    return tape.gradient(value, model.trainable_variables)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("settings", [{}, {"l1": 0.01}, {"l2": 0.02}, {"l1": 0.01, "l2": 0.02, "dropout": 0.3},
                                      {"dropout": 0.5, "features": ["x1", "x2", "x1^2", "x1*x2", "sin(x2)"]}],
                         ids=["plain", "l1", "l2", "l1-l2-dropout", "dropout-features"])
@pytest.mark.parametrize("task", TASKS)
def test_every_activation_penalty_and_dropout_gradient_is_gradient_tapes(activation, settings, task):
    """A described network of two hidden layers: the chain rule by hand equals autodiff, every loss of the task."""
    from beanstrain.features import apply_features

    generator = np.random.default_rng(3)
    model = described(task, activation, **settings)
    model.set_weights([generator.normal(size=weight.shape).astype("float32") for weight in model.get_weights()])
    x = generator.normal(size=(7, 2)).astype("float32")
    network = Network(read_layers(model), "mse")
    masks = network.dropout_masks(generator, 7, model.get_weights()) if network.has_dropout else None
    assert network.has_dropout == bool(settings.get("dropout"))
    inputs = apply_features(settings["features"], x).astype("float32") if "features" in settings else x
    for loss in losses_for(task):
        if task == "multiclass":
            labels = generator.integers(0, 3, size=7)
            y = labels.astype("float32") if loss.startswith("sparse") else np.eye(3, dtype="float32")[labels]
        else:
            y = generator.random((7, 1)).astype("float32")
        expected = tape_gradients(model, make_loss(loss), x, y, [mask for mask in masks or [] if mask is not None])
        found = Network(read_layers(model), loss).gradients(model.get_weights(), inputs, y, masks)
        for mine, theirs in zip(found, expected, strict=True):
            np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-4, atol=1e-5, err_msg=loss)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_a_described_network_with_penalties_trains_as_the_compiled_loop_does(activation):
    """L1, L2 and input features through both engines: the same weights and the same losses, penalty included."""
    recipe = dataclasses.replace(first_recipe("deep8"), hidden=[3], activation=activation, l1=0.001, l2=0.002,
                                 features=["x1", "x2", "x1*x2"])
    compiled_weights, compiled_history = trained(recipe, "compiled", 30)
    numpy_weights, numpy_history = trained(recipe, "numpy", 30)
    for numpy_weight, compiled_weight in zip(numpy_weights, compiled_weights, strict=True):
        np.testing.assert_allclose(numpy_weight, compiled_weight, rtol=1e-4, atol=1e-5)
    for column in compiled_history.columns:
        np.testing.assert_allclose(numpy_history.column(column), compiled_history.column(column), rtol=1e-4,
                                   atol=1e-6)


def test_dropout_on_the_numpy_engine_is_seeded_by_the_step():
    """The same seed drops the same units (a resumed run goes on as it would have); another seed does not."""
    recipe = dataclasses.replace(first_recipe("deep8"), dropout=0.3, seed=4)
    first, again = trained(recipe, "numpy", 5)[0], trained(recipe, "numpy", 5)[0]
    other = trained(dataclasses.replace(recipe, seed=5), "numpy", 5)[0]
    for one, two in zip(first, again, strict=True):
        np.testing.assert_array_equal(one, two)
    assert not all(np.array_equal(one, two) for one, two in zip(first, other))


@pytest.mark.parametrize("rule", ["sgd", "rosenblatt", "sign"])
def test_every_update_rule_trains_a_described_network(rule):
    """The course's rules on a described network (tanh, L2, dropout, features): the loss falls from where it began."""
    recipe = dataclasses.replace(first_recipe("deep8"), engine="numpy", optimizer=rule, learning_rate=0.01,
                                 epochs=40, samples=40, batch_size=10, hidden=[6, 3], activation="tanh", l2=0.001,
                                 dropout=0.1, features=["x1", "x2", "x1*x2"])
    session = prepare(recipe, "cpu", None, io.StringIO())
    history = session.make_trainer().run(0, recipe.epochs)
    losses = history.column("loss")
    assert np.all(np.isfinite(losses)) and np.mean(losses[-5:]) < losses[0]
