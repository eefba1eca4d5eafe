"""The course's device-like training: every weight on one of N+1 levels, moved one level per epoch.

    >>> grid("linear", levels=4)
    array([-1. , -0.5,  0. ,  0.5,  1. ], dtype=float32)
    >>> step(np.array([0, 2, 4]), before=np.array([-1.0, 0.0, 1.0]), after=np.array([-1.5, 0.1, 1.2]), levels=4)
    array([0, 3, 4], dtype=int32)

Level k of N stands for the fraction P = k/N and the weight `G(P)` of a
mapping (SPEC, "custom update rules"; `Gmin = -1`, `Gmax = 1`, `A` the
nonlinearity, 0.8 in the course):

- linear: `G(P) = (Gmax - Gmin) * P + Gmin`
- potentiation: `G(P) = (Gmax - Gmin) * (1 - exp(P/A)) / (1 - exp(1/A)) + Gmin`
- depression: `G(P) = (Gmax - Gmin) * (1 - exp((1-P)/A)) / (1 - exp(1/A)) + Gmin`

A run's `level_mapping` says which curve a weight takes its value from after
rising (`up`) and after falling (`down`).  As the course writes it, the
depression curve falls from Gmax at P = 0 to Gmin at P = 1 (it is the
potentiation curve mirrored, `G_ltd(P) = G_ltp(1 - P)`), so under `ltp-ltd` a
weight that steps down takes the value of the mirrored level.

`LevelsTrainer` wraps any engine's trainer.  Each weight starts on a level
drawn from the run's seed, at that level's linear value (the course's start,
whatever the mapping).  Each epoch is one epoch of the recipe's optimizer,
then every weight that rose moves one level up, every one that fell one
level down (never past 0 or N), and takes its level's value; then
the held-out set is measured on those weights, as the course measures its
test set after each epoch.  The levels are part of the trainer's state
(`EngineState.extra`), so checkpoints carry them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from beanstrain.devices import to_numpy
from beanstrain.engines.protocol import EngineState, History, TrainData, history_columns
from beanstrain.errors import RunError, UsageError, lookup
from beanstrain.objectives import count_correct

GMIN, GMAX = -1.0, 1.0
# The course's A: how far the potentiation and depression curves bend away from the straight line.
DEFAULT_NONLINEARITY = 0.8
# A separate stream of the run's seed for the initial levels (the data uses streams 0 and 1).
LEVELS_STREAM = 2
MAX_LEVELS = 1_000_000
# The held-out set is measured this many samples at a time.
EVAL_SLICE = 8192


def linear(fraction, nonlinearity: float):
    return (GMAX - GMIN) * fraction + GMIN


def potentiation(fraction, nonlinearity: float):
    return (GMAX - GMIN) * (1 - np.exp(fraction / nonlinearity)) / (1 - np.exp(1 / nonlinearity)) + GMIN


def depression(fraction, nonlinearity: float):
    return (GMAX - GMIN) * (1 - np.exp((1 - fraction) / nonlinearity)) / (1 - np.exp(1 / nonlinearity)) + GMIN


CURVES: dict[str, Callable] = {"linear": linear, "potentiation": potentiation, "depression": depression}


@dataclass(frozen=True)
class Mapping:
    up: str  # the curve (CURVES) a weight that rose takes its value from
    down: str  # the curve a weight that fell takes its value from
    summary: str


MAPPINGS: dict[str, Mapping] = {
    "linear": Mapping("linear", "linear", "G = (Gmax - Gmin) * P + Gmin, both ways"),
    "ltp": Mapping("potentiation", "potentiation", "the potentiation curve both ways, as the course compares"),
    "ltp-ltd": Mapping("potentiation", "depression", "up along potentiation, down along depression"),
}


def get_mapping(name: str) -> Mapping:
    return lookup("level mapping", name, MAPPINGS)


def check_levels(levels, mapping: str, nonlinearity) -> None:
    """The three recipe keys, checked before anything runs.

    >>> check_levels(100, "ltp", 0.8)
    >>> check_levels(100, "ltd", 0.8)
    Traceback (most recent call last):
    beanstrain.errors.UsageError: unknown level mapping 'ltd'; did you mean 'ltp'? (valid: linear, ltp, ltp-ltd)
    """
    if isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= MAX_LEVELS:
        raise UsageError(f"levels must be an integer from 0 (off) to {MAX_LEVELS:,}, got {levels!r}")
    get_mapping(mapping)
    if (isinstance(nonlinearity, bool) or not isinstance(nonlinearity, (int, float)) or not math.isfinite(nonlinearity)
            or nonlinearity <= 0):
        raise UsageError(f"level nonlinearity must be a positive finite number, got {nonlinearity!r}")


def grid(curve: str, levels: int, nonlinearity: float = DEFAULT_NONLINEARITY) -> np.ndarray:
    """The weight of each level 0..levels on one curve, computed in float64 and stored in float32."""
    fractions = np.arange(levels + 1) / levels
    return np.asarray(CURVES[curve](fractions, nonlinearity), dtype=np.float64).astype(np.float32)


def initial_levels(shapes, levels: int, seed: int) -> list[np.ndarray]:
    """The course's `int(100 * U(0,1) + 0.5)` for every weight, from the run's seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, LEVELS_STREAM]))
    return [np.floor(levels * rng.random(shape) + 0.5).astype(np.int32) for shape in shapes]


def step(current: np.ndarray, before: np.ndarray, after: np.ndarray, levels: int) -> np.ndarray:
    """One level up where the weight rose, one down where it fell, kept within 0..levels."""
    moves = (after > before).astype(np.int32) - (after < before).astype(np.int32)
    return np.clip(current + moves, 0, levels).astype(np.int32)


def stepped_values(new_levels, before, after, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """The weights after a step: the up curve's value where a weight rose, the down curve's where it fell.

    A weight that did not move stays on the down curve if it is there (it
    fell last), else takes its level's value on the up curve: for `linear`
    and `ltp` the only curve, and a weight still at its linear starting value
    joins its mapping's levels.

    >>> up, down = grid("potentiation", 4), grid("depression", 4)
    >>> stepped_values(np.array([3, 1, 2]), before=np.array([0.0, 0.0, down[2]]), after=np.array([0.1, -0.1, down[2]]),
    ...                up=up, down=down) == np.array([up[3], down[1], down[2]])
    array([ True,  True,  True])
    """
    still = np.where(before == down[new_levels], before, up[new_levels])
    return np.where(after > before, up[new_levels], np.where(after < before, down[new_levels], still))


@dataclass(frozen=True)
class LevelSettings:
    """What a run on levels needs from its recipe."""

    levels: int  # N: level k stands for the fraction k/N
    mapping: str = "linear"  # a name from MAPPINGS
    nonlinearity: float = DEFAULT_NONLINEARITY  # A of the potentiation and depression curves
    seed: int = 0  # draws the initial levels

    def grids(self) -> tuple[np.ndarray, np.ndarray]:
        mapping = get_mapping(self.mapping)
        return grid(mapping.up, self.levels, self.nonlinearity), grid(mapping.down, self.levels, self.nonlinearity)


class LevelsTrainer:
    """An engine's trainer with every weight kept on its levels (the module docstring's rule).

    `inner` trains without a held-out set; this trainer measures it after
    each level step, with the run's loss and accuracy.
    """

    def __init__(self, inner, settings: LevelSettings, loss_fn, accuracy: str | None, data: TrainData,
                 snapshot_epochs=()):
        self.inner, self.settings = inner, settings
        self.model, self.optimizer = inner.model, inner.optimizer
        self.loss_fn, self.accuracy = loss_fn, accuracy
        self.held_out = (data.held_out_x, data.held_out_y) if data.has_held_out else None
        self.columns = history_columns(accuracy, data.held_out_name if data.has_held_out else None)
        self.snapshot_epochs = tuple(sorted({int(epoch) for epoch in snapshot_epochs}))
        self.snapshots: dict[int, list[np.ndarray]] = {}
        self.most_epochs_per_chunk: int | None = None  # the protocol's; its chunks are one epoch already
        self.up, self.down = settings.grids()
        shapes = [weight.shape for weight in self.model.get_weights()]
        self.levels = initial_levels(shapes, settings.levels, settings.seed)
        # The course's start whatever the mapping: each weight at its level's linear value, 2 * (P/N - 0.5).
        start = grid("linear", settings.levels)
        self.model.set_weights([start[levels] for levels in self.levels])

    @staticmethod
    def inner_data(data: TrainData) -> TrainData:
        """What the wrapped trainer trains on: the same arrays, with no held-out set to measure."""
        return replace(data, held_out_x=None, held_out_y=None)

    def run(self, start_epoch: int, epochs: int, on_chunk: Callable | None = None,
            should_stop: Callable[[], bool] | None = None, history: History | None = None) -> History:
        history = history or History(self.columns)
        if start_epoch == 0 and 0 in self.snapshot_epochs:
            self.snapshots[0] = [np.array(weight) for weight in self.model.get_weights()]
        for epoch in range(start_epoch, epochs):
            before = self.model.get_weights()
            rows = self.inner.run(epoch, epoch + 1).rows
            if not rows:
                break
            row = list(rows[-1])
            if math.isfinite(row[0]):
                self.step_levels(before)
                row += self.held_out_metrics()
            else:
                row += [math.nan] * (len(self.columns) - len(row))
            history.rows.append(row)
            if epoch + 1 in self.snapshot_epochs:
                self.snapshots[epoch + 1] = [np.array(weight) for weight in self.model.get_weights()]
            if on_chunk:
                on_chunk(epoch + 1, history)
            if history.diverged_at() or (should_stop and should_stop()):
                break
        return history

    def step_levels(self, before: list[np.ndarray]) -> None:
        after = self.model.get_weights()
        new_weights = []
        for index, (old, new) in enumerate(zip(before, after)):
            self.levels[index] = step(self.levels[index], old, new, self.settings.levels)
            new_weights.append(stepped_values(self.levels[index], old, new, self.up, self.down).astype(old.dtype))
        self.model.set_weights(new_weights)

    def held_out_metrics(self) -> list[float]:
        if self.held_out is None:
            return []
        x, y = self.held_out
        outputs = np.concatenate([to_numpy(self.model(x[start:start + EVAL_SLICE], training=False))
                                  for start in range(0, len(x), EVAL_SLICE)])
        metrics = [float(self.loss_fn(y, outputs))]
        return metrics + ([count_correct(self.accuracy, y, outputs) / len(y)] if self.accuracy else [])

    def get_state(self) -> EngineState:
        state = self.inner.get_state()
        extra = {**state.extra, **{f"levels_{index}": np.array(levels) for index, levels in enumerate(self.levels)}}
        return EngineState(state.weights, state.optimizer_variables, extra)

    def set_state(self, state: EngineState) -> None:
        """The weights and optimizer state, and the level of every weight; refused when they do not fit."""
        saved = [state.extra.get(f"levels_{index}") for index in range(len(self.levels))]
        for levels, wanted in zip(saved, self.levels):
            if levels is None or levels.shape != wanted.shape:
                raise RunError("the checkpoint holds no weight levels for this network; start the run again")
            if levels.min(initial=0) < 0 or levels.max(initial=0) > self.settings.levels:
                raise RunError(f"the checkpoint's weight levels are outside 0 to {self.settings.levels}")
        self.inner.set_state(state)
        self.levels = [np.asarray(levels, dtype=np.int32).copy() for levels in saved]
