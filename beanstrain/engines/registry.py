"""The registry of engines: the ways a network is trained, each behind the trainer protocol.

    >>> sorted(ENGINES)
    ['compiled', 'fit', 'numpy']
    >>> choose_engine("auto", network_engine=None, steps=5000 * 10)   # beans4-hidden2 at the course's settings
    'compiled'

A trainer is what `engines.build.make_trainer` returns; every engine's
trainer offers the same few things (`engines.protocol.Trainer`).  A new
engine is a new module in this folder and an entry in `ENGINES`; nothing
else in the package names engines.  This module imports none of the engines
it lists: each is imported by name only when a run uses it, so the command
line can list the engines without importing TensorFlow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from beanstrain.errors import UsageError, lookup


@dataclass(frozen=True)
class Engine:
    """One entry of the registry: where its trainer lives and how docs/engines.md and --help describe it."""

    module: str  # a module of this folder, imported when a run uses the engine
    trainer: str  # the trainer class in it
    label: str  # a few words for --help
    summary: str  # one line for the table of engines in docs/engines.md
    # What --optimizer names for it: "keras" (objectives.OPTIMIZERS) or "rules" (engines.rules.RULES).
    optimizers: str = "keras"
    # The kinds of input (data.FEATURE_VECTORS, ...) of the networks it trains; None: every network.
    takes: tuple[str, ...] | None = None
    # Trains a network mirrored over several devices (`--devices N`): tf.distribute or keras.distribution.
    distributes: bool = False
    # The Keras backends it trains on (backends.BACKENDS); None: every backend.
    backends: tuple[str, ...] | None = None
    # Its twin on another backend, as Keras keeps a trainer per backend: backend -> (module, trainer class).
    twins: tuple[tuple[str, str, str], ...] = ()

    def load(self, backend: str = "tensorflow"):
        module, trainer = next(((module, trainer) for name, module, trainer in self.twins if name == backend),
                               (self.module, self.trainer))
        return getattr(importlib.import_module(f"beanstrain.engines.{module}"), trainer)


ENGINES: dict[str, Engine] = {
    "compiled": Engine(
        "compiled", "CompiledTrainer", "one compiled loop",
        "the whole run (every epoch, every step, the per-epoch shuffle and the held-out evaluation) "
        "inside one XLA-compiled loop (TensorFlow's `tf.function`, or `jax.jit` on JAX), called in chunks of "
        "epochs so progress is shown",
        backends=("tensorflow", "jax"), twins=(("jax", "jax_compiled", "JaxCompiledTrainer"),)),
    "fit": Engine(
        "keras_fit", "FitTrainer", "Keras fit",
        "Keras's own `model.fit`, fed each epoch's batches in the same seed-and-epoch order as the compiled loop",
        distributes=True),
    "numpy": Engine(
        "numpy_engine", "NumpyTrainer", "the course's rules by hand in NumPy",
        "the dense networks by hand: forward pass and chain-rule backward pass in NumPy, stepped by the "
        "course's update rules (`sgd`, `rosenblatt`, `sign`), in the same order as the others",
        optimizers="rules", takes=("feature vectors",)),
}
# What --engine and a recipe's `engine` accept: an engine, or "auto" for `choose_engine`'s rule.
ENGINE_CHOICES = ("auto", *ENGINES)

# A run shorter than this many optimizer steps ends before compiling the loop
# (about a second for a toy net, four for an MNIST MLP on two cores) pays off.
COMPILED_MIN_STEPS = 500


def get_engine(name: str) -> Engine:
    return lookup("engine", name, ENGINES)


def check_backend(engine: str, backend: str) -> None:
    """Refuse an engine asked for by name that the backend cannot run, naming those it can.

        >>> check_backend("compiled", "torch")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        beanstrain.errors.UsageError: --engine compiled runs on the tensorflow or jax backend; on torch use ...
    """
    runs_on = get_engine(engine).backends
    if runs_on is not None and backend not in runs_on:
        able = [name for name, entry in ENGINES.items() if entry.backends is None or backend in entry.backends]
        raise UsageError(f"--engine {engine} runs on the {' or '.join(runs_on)} backend; on {backend} use "
                         f"--engine {' or '.join(able)}")


def choose_engine(requested: str, network_engine: str | None, steps: int, devices: int = 1,
                  backend: str = "tensorflow") -> str:
    """The rule docs/engines.md gives: the compiled loop for runs long enough to repay compiling it, unless the
    network's registry entry names the engine measured faster for it (`models.Network.engine`).
    On several devices, the first engine that `distributes`; one that does not is refused.

        >>> choose_engine("auto", None, steps=59)       # one epoch of 60,000 images, batch 1024
        'fit'
        >>> choose_engine("auto", "fit", steps=50 * 59)  # lenet5: XLA's CPU convolutions are slow
        'fit'
        >>> choose_engine("fit", None, steps=5000 * 10)  # asked for by name
        'fit'
        >>> choose_engine("auto", None, steps=5000 * 10, devices=2)
        'fit'
        >>> choose_engine("auto", None, steps=5000 * 10, backend="torch")   # the compiled loop is TensorFlow's
        'fit'
    """
    if requested != "auto":
        check_backend(requested, backend)
    if devices > 1:
        able = [name for name, engine in ENGINES.items() if engine.distributes]
        if requested == "auto":
            return able[0]
        if not get_engine(requested).distributes:
            # The hand-written rules exist on one engine only: no other engine can take the run over.
            instead = ("train without --devices" if get_engine(requested).optimizers == "rules"
                       else f"use --engine {' or '.join(able)}")
            raise UsageError(f"--devices {devices}: the {requested} engine trains on one device only; {instead}")
    if requested != "auto":
        return requested
    if network_engine and get_engine(network_engine).backends in (None, (backend,)):
        return network_engine
    compiled = get_engine("compiled").backends
    return "compiled" if steps >= COMPILED_MIN_STEPS and backend in compiled else "fit"
