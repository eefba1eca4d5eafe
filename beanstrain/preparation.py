"""Preparing a run: a recipe made ready to train (data, network, engine, device), before any run folder exists.

    >>> import io
    >>> from beanstrain.recipes import resolve_recipe
    >>> prepared = prepare(resolve_recipe("beans4-hidden2", {"epochs": 3}), "cpu", None, io.StringIO())
    >>> prepared.engine, prepared.batch_size, prepared.loss_name, prepared.data.x.shape
    ('fit', 10, 'mse', (100, 2))

Every value is checked here, so a mistake is one line before anything is
written; training it is `beanstrain.training`'s.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

from beanstrain.backends import active_backend
from beanstrain.data import Dataset, load_dataset
from beanstrain.devices import device_scope, distribution_strategy, load_keras, select_devices
from beanstrain.engines import TrainData, choose_engine
from beanstrain.engines.build import make_trainer
from beanstrain.engines.levels import LevelSettings
from beanstrain.engines.numpy_net import Network, read_layers
from beanstrain.errors import RunError, UsageError, first_line
from beanstrain.features import apply_features, model_features
from beanstrain.initializers import draw_initial_weights
from beanstrain.models import build_model, get_network, model_inputs, set_initial_weights
from beanstrain.objectives import (
    accuracy_kind,
    encode_targets,
    engine_for_rule,
    make_accuracy_metric,
    make_loss,
    make_optimizer,
)
from beanstrain.progress import echo
from beanstrain.recipes import Recipe, recipe_description, recipe_loss
from beanstrain.trace import Trace, snapshot_epochs, snapshot_steps, weight_names


def check_finite(dataset: Dataset) -> None:
    """Refuse data with NaN or infinite values before training on it."""
    for split, values in (("train inputs", dataset.x_train), ("train targets", dataset.y_train),
                          ("test inputs", dataset.x_test), ("test targets", dataset.y_test)):
        if not np.all(np.isfinite(values)):
            raise RunError(f"{dataset.name}: the {split} contain NaN or infinite values; fix the data first")


def split_train(dataset: Dataset, recipe: Recipe):
    """Training arrays and the held-out set seen every epoch.

    Generated sets are checked against their own fresh test draw every epoch
    (it is cheap); image sets hold out the last `validation_split` of the
    training images, as Keras's `validation_split` does.  An image run with
    no validation split trains on every training image and measures the
    test set after every epoch instead, as the course's levels experiment
    and its GradientTape loop do.
    """
    x, y = model_inputs(recipe.model, dataset.x_train), dataset.y_train
    held = int(round(len(x) * recipe.validation_split)) if dataset.is_image else 0
    if held == 0:
        return x, y, model_inputs(recipe.model, dataset.x_test), dataset.y_test, "test"
    return x[:-held], y[:-held], x[-held:], y[-held:], "val"


def clamp_batch(batch_size: int, samples: int, stream) -> int:
    if batch_size > samples:
        echo(f"warning: batch size {batch_size} is larger than the {samples} training samples; using {samples}",
             stream)
        return samples
    return batch_size


def check_shared_batch(batch_size: int, devices: int) -> None:
    """Refuse a batch that several devices cannot share evenly (Keras's mirrored step fails on one)."""
    if batch_size % devices:
        below, above = batch_size - batch_size % devices, batch_size - batch_size % devices + devices
        raise UsageError(f"--devices {devices}: a batch of {batch_size} cannot be shared evenly by {devices} devices; "
                         f"use a --batch-size that {devices} divides, such as "
                         + (f"{below} or {above}" if below else f"{above}"))


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Keras's dtype policy while a network is built: its layers keep it, and the process's stays as it was."""
    keras = load_keras()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def encode(targets, dataset: Dataset, loss_name: str):
    """Targets in the form the run's loss expects (`objectives.encode_targets`); None stays None."""
    return None if targets is None else encode_targets(targets, dataset.task, loss_name, dataset.num_classes)


@dataclass(frozen=True)
class PreparedRun:
    """A recipe made ready to train: data, network, engine and device, before any run folder exists."""

    recipe: Recipe
    device: dict  # devices.select_devices: what the run trains on
    dataset: Dataset
    data: TrainData  # the training arrays and the held-out set, targets encoded for the loss
    batch_size: int
    model: object  # the Keras network, built and given its initial weights
    engine: str
    strategy: object = None  # what mirrors the network on several devices (devices.distribution_strategy)
    animation: str = "gif"  # plots.animate.ANIMATIONS: how training.gif / training.mp4 is written, or "none"
    backend: str = "tensorflow"  # the Keras backend it trains on (backends.BACKENDS)

    @property
    def loss_name(self) -> str:
        return recipe_loss(self.recipe)

    @property
    def accuracy(self) -> str | None:
        """How accuracy is counted (`objectives.accuracy_kind`); None where it means nothing."""
        return accuracy_kind(self.dataset.task, self.loss_name)

    def placement(self):
        """The one device a run's work is placed on (on several devices the strategy places it)."""
        return contextlib.nullcontext() if self.strategy else device_scope(self.device)

    def replicas(self):
        """The strategy's scope, where the optimizer is made and training runs, on several devices.

        Only training belongs in it: under tf.distribute Keras divides every loss computed in it by the
        number of devices (each replica's share of the summed gradient), so a run's metrics are taken
        outside."""
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()

    def make_trainer(self):
        recipe = self.recipe
        optimizer = make_optimizer(recipe.optimizer, recipe.learning_rate, self.engine)
        levels = LevelSettings(recipe.levels, recipe.level_mapping, recipe.level_nonlinearity,
                               recipe.seed) if recipe.levels else None
        trainer = make_trainer(self.engine, self.model, make_loss(self.loss_name), optimizer, self.data,
                               self.batch_size, recipe.seed, self.accuracy,
                               make_accuracy_metric(self.dataset.task, self.loss_name),
                               snapshot_epochs=snapshot_epochs(recipe.epochs), levels=levels)
        if hasattr(trainer, "snapshot_steps"):  # an engine that can snapshot inside epochs: spread over the steps
            trainer.snapshot_steps = frozenset(snapshot_steps(recipe.epochs * self.steps_per_epoch))
        return trainer

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch: a batch each, the last one partial."""
        return -(-len(self.data.x) // max(1, self.batch_size))

    def new_trace(self, saved=None) -> Trace:
        """The run's weight trace: the one a checkpoint carried (`saved`, its arrays), else an empty one; either
        measures each layer's gradient at the snapshots still to come."""
        if saved is not None:
            try:
                trace = Trace.from_arrays(saved)
            except (KeyError, ValueError) as error:
                raise RunError(f"the checkpoint's weight trace is damaged: {first_line(error)}") from None
        else:
            trace = Trace(weight_names(self.model), summarize=self.dataset.is_image,
                          steps_per_epoch=self.steps_per_epoch)
        measured = gradient_measure(self.model, self.loss_name, self.data)
        if measured is not None and (saved is None or trace.gradient_norms or not trace.epochs):
            trace.gradient_layers, trace.measure = measured
        return trace

    def encode(self, targets):
        return encode(targets, self.dataset, self.loss_name)


# The training samples a snapshot's gradients are measured on: enough for a steady norm, few enough to be quick.
GRADIENT_SAMPLES = 1000


def gradient_measure(model, loss_name: str, data: TrainData):
    """(the Dense layers' names, weights -> each layer's kernel gradient norm) for a dense network, measured on the
    first GRADIENT_SAMPLES training samples by the numpy engine's chain rule; None for any other network."""
    features = model_features(model)
    x = np.asarray(data.x[:GRADIENT_SAMPLES], np.float32)
    x = apply_features(features, x).astype(np.float32) if features else x.reshape(len(x), -1)
    y = np.asarray(data.y[:GRADIENT_SAMPLES], np.float32)
    try:
        network = Network(read_layers(model), loss_name)
        with np.errstate(all="ignore"):
            network.gradients(model.get_weights(), x[:2], y[:2])
    except (UsageError, KeyError):
        return None  # not dense layers only, or a loss the chain rule here does not cover
    names = [layer.name for layer in model.layers if type(layer).__name__ == "Dense"]

    def measure(weights) -> list[float]:
        with np.errstate(all="ignore"):
            gradients = network.gradients([np.asarray(weight, np.float32) for weight in weights], x, y)
        return [float(np.linalg.norm(gradients[layer.kernel])) for layer in network.layers]

    return names, measure


def penalty_engine(recipe: Recipe, requested: str, backend: str) -> str:
    """The engine a run with L1/L2 penalties asks for: the compiled loop adds them on TensorFlow only (JAX's takes
    the loss alone), so off TensorFlow `auto` becomes `fit` and `compiled` is refused in one line.

    >>> from beanstrain.recipes import resolve_recipe
    >>> penalty_engine(resolve_recipe("beans4-hidden2", {"l2": 0.01}), "auto", "jax")
    'fit'
    >>> penalty_engine(resolve_recipe("beans4-hidden2", {"l2": 0.01}), "compiled", "jax")
    Traceback (most recent call last):
    beanstrain.errors.UsageError: --l1 and --l2 are not added by the compiled loop on jax; use --engine fit or numpy
    """
    if not (recipe.l1 or recipe.l2) or backend == "tensorflow":
        return requested
    if requested == "compiled":
        raise UsageError(f"--l1 and --l2 are not added by the compiled loop on {backend}; use --engine fit or numpy")
    return "fit" if requested == "auto" else requested


def prepare(recipe: Recipe, device: str, data_path: str | None, stream, batch_size: int | None = None,
            engine: str | None = None, devices: int = 1, animation: str = "gif") -> PreparedRun:
    """Load and check the data and build the network; `batch_size` and `engine` are given when resuming.

    The network is built on the run's device (on several `devices`, in the strategy's scope, so each
    device holds a mirror of it) with its initial weights drawn in NumPy from the seed, the same on
    every backend (`initializers.draw_initial_weights`)."""
    backend = active_backend()
    requested = engine or penalty_engine(recipe, engine_for_rule(recipe.engine, recipe.optimizer), backend)
    if requested != "auto":  # an engine the backend lacks is refused before any device is set up
        choose_engine(requested, None, steps=0, backend=backend)
    if devices > 1:  # an engine or a batch that cannot be shared is refused before the devices are set up
        engine = choose_engine(requested, get_network(recipe.model).engine, steps=0, devices=devices,
                               backend=backend)
        check_shared_batch(batch_size or recipe.batch_size, devices)
    chosen_device = select_devices(device, devices)
    strategy = distribution_strategy(chosen_device)
    keras = load_keras()
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed, data_path, recipe.test_fraction)
    check_finite(dataset)
    loss_name = recipe_loss(recipe)
    x, y, held_x, held_y, held_name = split_train(dataset, recipe)
    # Batch size 0 is the whole training set: full-batch gradient descent, one step an epoch.
    batch_size = batch_size or clamp_batch(recipe.batch_size or len(x), len(x), stream)
    check_shared_batch(batch_size, devices)  # again: a batch clamped to the training set
    # One seed fixes the initial weights and every shuffle, as well as the data draw above.
    keras.utils.set_random_seed(recipe.seed)
    with strategy.scope() if strategy else (contextlib.nullcontext() if backend == "tensorflow"
                                            else device_scope(chosen_device)), dtype_policy(recipe.precision):
        model = build_model(recipe.model, dataset.input_shape, dataset.task, dataset.num_classes,
                            recipe_description(recipe))
        model.set_weights(draw_initial_weights(model, recipe.seed))
        set_initial_weights(model, recipe.initial_weights, recipe.seed)
    engine = engine or choose_engine(requested, get_network(recipe.model).engine,
                                     steps=recipe.epochs * math.ceil(len(x) / batch_size), backend=backend)
    data = TrainData(x, encode(y, dataset, loss_name), held_x, encode(held_y, dataset, loss_name), held_name)
    return PreparedRun(recipe, chosen_device, dataset, data, batch_size, model, engine, strategy, animation, backend)
