"""The ways a network is trained, behind one protocol, listed in one registry.

    >>> sorted(ENGINES)
    ['compiled', 'fit', 'numpy']
    >>> choose_engine("auto", network_engine=None, steps=5000 * 10)   # beans4-hidden2 at the course's settings
    'compiled'

A trainer is what `make_trainer` returns; every engine's trainer offers the
same few things (`Trainer`): the history columns it reports, `run`, the
state checkpoints save and restore, and the weights after the epochs it was
asked to snapshot.  A new engine is a new module in this folder and an entry
in `ENGINES`; nothing else in the package names engines.  Modules are
imported only when a run uses them, so the command line can list the
engines without importing TensorFlow.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

from beanstrain.errors import UsageError, lookup

if TYPE_CHECKING:  # the command line lists the engines without importing NumPy
    import numpy as np


@dataclass(frozen=True)
class Engine:
    """One entry of the registry: where its trainer lives and how the README and --help describe it."""

    module: str  # a module of this folder, imported when a run uses the engine
    trainer: str  # the trainer class in it
    label: str  # a few words for --help
    summary: str  # one line for the README's table of engines
    # What --optimizer names for it: "keras" (objectives.OPTIMIZERS) or "rules" (engines.rules.RULES).
    optimizers: str = "keras"
    # The kinds of input (data.FEATURE_VECTORS, ...) of the networks it trains; None: every network.
    takes: tuple[str, ...] | None = None
    # Trains a network mirrored over several devices (`--devices N`) under a tf.distribute strategy.
    distributes: bool = False

    def load(self):
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.trainer)


ENGINES: dict[str, Engine] = {
    "compiled": Engine(
        "compiled", "CompiledTrainer", "one compiled loop",
        "the whole run (every epoch, every step, the per-epoch shuffle and the held-out evaluation) "
        "inside one XLA-compiled TensorFlow loop, called in chunks of epochs so progress is shown"),
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


def choose_engine(requested: str, network_engine: str | None, steps: int, devices: int = 1) -> str:
    """The README's rule: the compiled loop for runs long enough to repay compiling it, unless the
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
    """
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
    if network_engine:
        return network_engine
    return "compiled" if steps >= COMPILED_MIN_STEPS else "fit"


def engine_for_rule(requested: str, optimizer: str) -> str:
    """`auto` with an update rule that only a hand-written engine has (`rosenblatt`, `sign`) means that
    engine; anything else is left to `choose_engine`.

        >>> engine_for_rule("auto", "rosenblatt"), engine_for_rule("auto", "sgd"), engine_for_rule("fit", "sign")
        ('numpy', 'auto', 'fit')
    """
    from beanstrain.objectives import optimizer_names

    if requested != "auto":
        return requested
    having = [name for name in ENGINES if optimizer in optimizer_names(name)]
    if having and all(ENGINES[name].optimizers == "rules" for name in having):
        return having[0]
    return requested


@dataclass
class TrainData:
    """Training arrays (targets already encoded for the loss) and an optional held-out set.

    `held_out_name` is "test" for generated sets (a fresh draw) and "val" for
    image sets (the validation split); history columns are named after it.
    """

    x: np.ndarray
    y: np.ndarray
    held_out_x: np.ndarray | None = None
    held_out_y: np.ndarray | None = None
    held_out_name: str = "test"

    @property
    def has_held_out(self) -> bool:
        return self.held_out_x is not None and len(self.held_out_x) > 0


def history_columns(accuracy: str | None, held_out_name: str | None) -> list[str]:
    """The figures a trainer reports per epoch, in order.

    >>> history_columns("binary", "test")
    ['loss', 'accuracy', 'test_loss', 'test_accuracy']
    >>> history_columns(None, None)   # regression, no held-out set
    ['loss']
    """
    metrics = ["loss"] + (["accuracy"] if accuracy else [])
    held_out = [f"{held_out_name}_{metric}" for metric in metrics] if held_out_name else []
    return metrics + held_out


@dataclass
class History:
    """Per-epoch figures: `columns` name each value of a row; `epochs_done` counts rows.

    >>> history = History(["loss"], [[0.5], [float("nan")]])
    >>> history.epochs_done, history.last(), history.diverged_at()
    (2, {'loss': nan}, 2)
    """

    columns: list[str]
    rows: list[list[float]] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[float]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def last(self) -> dict[str, float]:
        return dict(zip(self.columns, self.rows[-1])) if self.rows else {}

    def diverged_at(self) -> int | None:
        """The 1-based epoch whose loss was first NaN or infinite, if any."""
        for epoch, loss in enumerate(self.column("loss"), start=1):
            if not math.isfinite(loss):
                return epoch
        return None


@dataclass
class EngineState:
    """Everything a trainer keeps between epochs, as NumPy arrays: what a checkpoint saves."""

    weights: list[np.ndarray]
    optimizer_variables: list[np.ndarray]  # the optimizer's slots (step count, momenta), in its own order
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # anything else a trainer keeps, by name


@runtime_checkable
class Trainer(Protocol):
    """What every engine's trainer offers.

    `snapshots` maps each epoch asked for in `snapshot_epochs` (0: before the
    first epoch) to a copy of every layer's weights after that epoch, once
    the run has reached it.  A trainer with a `snapshot_steps` attribute can
    snapshot inside epochs: when that is set (global optimizer steps), its
    `snapshots` are keyed by step instead (`trace.Trace.take(by_step=True)`).
    """

    columns: list[str]
    snapshots: dict[int, list[np.ndarray]]

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable[[int, History], None] | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        """Train from `start_epoch` up to `epochs`, appending to `history` (a fresh one by default);
        `on_chunk(epoch, history)` after every chunk of epochs, stopping early when `should_stop()`
        says so or the loss stops being finite."""

    def get_state(self) -> EngineState:
        """Copies of the weights and the optimizer's variables."""

    def set_state(self, state: EngineState) -> None:
        """Put a saved state back; a `RunError` when it does not fit this network and optimizer."""


def make_trainer(engine: str, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, snapshot_epochs=(), levels=None) -> Trainer:
    """A trainer for `engine`; the model is compiled with the same objects either way,
    so the saved file carries the optimizer and its state.

    With `levels` (`engines.levels.LevelSettings`), the engine's trainer is
    wrapped so that every weight stays on its levels (`engines.levels.LevelsTrainer`).
    """
    trainer_class = get_engine(engine).load()
    if levels is None:
        return trainer_class(model, loss_fn, optimizer, data, batch_size, seed, accuracy, metric,
                             snapshot_epochs=snapshot_epochs)
    from beanstrain.engines.levels import LevelsTrainer

    inner = trainer_class(model, loss_fn, optimizer, LevelsTrainer.inner_data(data), batch_size, seed, accuracy,
                          metric)
    return LevelsTrainer(inner, levels, loss_fn, accuracy, data, snapshot_epochs=snapshot_epochs)
