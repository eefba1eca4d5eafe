"""A run's trace: its weights at about 150 epochs, dense early and sparse late, kept in `trace.npz`.

    >>> snapshot_epochs(5)                      # short runs: every epoch, from the initial weights
    [0, 1, 2, 3, 4, 5]
    >>> epochs = snapshot_epochs(5000)          # beans4-hidden2: the first epochs change most
    >>> len(epochs), epochs[:12], epochs[-3:]
    (150, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [4590, 4791, 5000])
    >>> trace = Trace(["dense/kernel", "dense/bias"])
    >>> trace.take({0: [np.zeros((1, 1)), np.zeros(1)], 3: [np.ones((1, 1)), np.ones(1)]})
    >>> trace.epochs, trace.weight(0)[:, 0, 0].tolist()
    ([0, 3], [0.0, 1.0])

The engines copy the weights after each epoch of `snapshot_epochs` into
their trainer's `snapshots` (the trainer protocol); `Trace.take` moves them
here after every chunk, so a checkpoint can carry the trace so far
(`arrays(upto=epoch)`) and a resumed run ends with the trace of one that
never stopped.  Image networks hold hundreds of thousands of weights: their
trace keeps, per snapshot, the percentiles `PERCENTILES` of each weight
array instead of the weights (`summarize=True`).

An engine that can stop inside an epoch (the numpy engine) takes its
snapshots at optimizer steps instead: `snapshot_steps` spaces them over
every step of the run, so a lesson that converges within its first epoch
(one bean a step) still shows the path it took.  Its trainer's `snapshots`
are then keyed by global step, and `take(..., by_step=True)` turns each step
into a fractional epoch (step 25 of a 100-step epoch is epoch 0.25):

    >>> trace = Trace(["dense/kernel"], steps_per_epoch=100)
    >>> trace.take({0: [np.zeros((1, 1))], 25: [np.ones((1, 1))], 200: [np.ones((1, 1))]}, by_step=True)
    >>> trace.epochs, trace.steps
    ([0, 0.25, 2], [0, 25, 200])

trace.npz holds plain arrays, read back with `allow_pickle=False`:
`epochs` (snapshots,) float, the fractional epoch of each snapshot (whole
at epoch ends), `steps` (snapshots,) the global optimizer step of each,
`steps_per_epoch` (a scalar: the steps an epoch takes), `names` (one per
weight array), `weight_<i>` (snapshots, *shape) or (snapshots,
len(PERCENTILES)), and `percentiles` when the weights are summarized.
Older files hold whole-number `epochs` and no `steps`; they read back with
`steps` None.  A dense network's trace also holds `gradient_layers` (the Dense layers' names) and
`gradient_norms` (snapshots, layers): the size (L2 norm) of each layer's kernel gradient at each
snapshot, on up to `GRADIENT_SAMPLES` training samples, whatever engine trained it; `gradients.png`
draws them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from beanstrain import files
from beanstrain.errors import RunError, first_line
from beanstrain.listeners import Listener
from beanstrain.runs import TRACE

SNAPSHOTS = 150  # about this many snapshots whatever the epoch count: the animation's frames
PERCENTILES = (0, 5, 25, 50, 75, 95, 100)  # kept per weight array and snapshot when weights are summarized


def snapshot_epochs(epochs: int, count: int = SNAPSHOTS) -> list[int]:
    """Epoch 0 (the initial weights), the last epoch, and about `count` in all, spaced geometrically."""
    if epochs + 1 <= count:
        return list(range(epochs + 1))
    asked = count
    while True:
        chosen = np.unique(np.round(np.geomspace(1, epochs, asked)).astype(int))
        if len(chosen) + 1 >= count:
            return [0, *(int(epoch) for epoch in chosen)]
        asked += count - 1 - len(chosen)


def snapshot_steps(steps: int, count: int = SNAPSHOTS) -> list[int]:
    """The optimizer steps to snapshot in a run of `steps` steps: as `snapshot_epochs`, over steps."""
    return snapshot_epochs(steps, count)


def _number(value) -> int | float:
    """A whole epoch as an int (as titles and reports print it), a fraction of one as a float."""
    value = float(value)
    return int(value) if value.is_integer() else value


class Trace:
    """Snapshots in order: `epochs` (fractional inside an epoch), `steps` (global optimizer steps), and per
    snapshot one array per weight (or its percentiles)."""

    def __init__(self, names: list[str], summarize: bool = False, steps_per_epoch: int = 1):
        self.names, self.summarize = list(names), summarize
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.epochs: list[int | float] = []
        self.steps: list[int] | None = []
        self.snapshots: list[list[np.ndarray]] = []
        # weights -> the size of each layer's gradient there (`preparation.gradient_measure`), measured as each
        # snapshot arrives, before its weights are summarized; None: not measured.
        self.measure = None
        self.gradient_layers: list[str] = []  # the layers measured, by name
        self.gradient_norms: list[np.ndarray] = []  # per snapshot, one norm per layer

    def take(self, snapshots: dict[int, list[np.ndarray]], by_step: bool = False) -> None:
        """Move a trainer's new snapshots here (emptying its dict), keeping their order.

        Keys are epochs, or global optimizer steps when `by_step` (the trainer took `snapshot_steps`)."""
        for key in sorted(snapshots):
            weights = snapshots.pop(key)
            step = int(key) if by_step else int(key) * self.steps_per_epoch
            epoch = _number(step / self.steps_per_epoch) if by_step else int(key)
            if self.epochs and epoch <= self.epochs[-1]:
                continue  # already held (a resumed run's trainer never takes these again)
            if self.measure is not None and len(self.gradient_norms) == len(self.epochs):
                self.gradient_norms.append(np.asarray(self.measure(weights), np.float64))
            if self.summarize:
                weights = [np.percentile(np.asarray(weight, np.float64), PERCENTILES).astype(np.float32)
                           for weight in weights]
            self.epochs.append(epoch)
            if self.steps is not None:
                self.steps.append(step)
            self.snapshots.append([np.array(weight) for weight in weights])

    def weight(self, index: int) -> np.ndarray:
        """Weight array `index` at every snapshot, stacked: (snapshots, *shape)."""
        return np.stack([snapshot[index] for snapshot in self.snapshots])

    def arrays(self, upto: int | None = None) -> dict[str, np.ndarray]:
        """The trace (its snapshots up to epoch `upto`) as the plain arrays trace.npz holds."""
        count = len(self.epochs) if upto is None else int(np.searchsorted(self.epochs, upto, side="right"))
        arrays = {"epochs": np.array(self.epochs[:count], dtype=np.float64), "names": np.array(self.names, dtype=str),
                  "steps_per_epoch": np.array(self.steps_per_epoch, dtype=np.int64)}
        if self.steps is not None:
            arrays["steps"] = np.array(self.steps[:count], dtype=np.int64)
        for index in range(len(self.names)):
            arrays[f"weight_{index}"] = np.stack([snapshot[index] for snapshot in self.snapshots[:count]]) \
                if count else np.zeros((0,), np.float32)
        if self.summarize:
            arrays["percentiles"] = np.array(PERCENTILES, dtype=np.float64)
        if self.gradient_norms and len(self.gradient_norms) == len(self.epochs):
            arrays["gradient_layers"] = np.array(self.gradient_layers, dtype=str)
            arrays["gradient_norms"] = np.stack(self.gradient_norms[:count]) if count else np.zeros((0,), np.float64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Trace:
        """The trace that `arrays()` gave; a `ValueError` when they do not hold one."""
        names = [str(name) for name in arrays["names"]]
        epochs = np.asarray(arrays["epochs"])
        if epochs.ndim != 1 or epochs.dtype.kind not in "iuf" or not np.all(np.isfinite(epochs)) \
                or np.any(np.diff(epochs) <= 0) or np.any(epochs < 0):
            raise ValueError("its epochs are not increasing numbers")
        steps = np.asarray(arrays["steps"]) if "steps" in arrays else None
        if steps is not None and (steps.shape != epochs.shape or steps.dtype.kind not in "iu"
                                  or np.any(np.diff(steps) <= 0)):
            raise ValueError("its steps are not increasing whole numbers, one per snapshot")
        per_epoch = int(arrays["steps_per_epoch"]) if "steps_per_epoch" in arrays else 1
        trace = cls(names, summarize="percentiles" in arrays, steps_per_epoch=per_epoch)
        weights = [np.asarray(arrays[f"weight_{index}"]) for index in range(len(names))]
        if any(len(weight) != len(epochs) for weight in weights if len(epochs)):
            raise ValueError(f"its weights do not have one snapshot for each of its {len(epochs)} epochs")
        trace.epochs = [_number(epoch) for epoch in epochs]
        trace.steps = None if steps is None else [int(step) for step in steps]
        trace.snapshots = [[weight[row] for weight in weights] for row in range(len(epochs))]
        if "gradient_norms" in arrays:
            norms = np.asarray(arrays["gradient_norms"], np.float64)
            if len(epochs) and (norms.ndim != 2 or len(norms) != len(epochs)):
                raise ValueError("its gradient norms do not have one row for each snapshot")
            trace.gradient_layers = [str(name) for name in arrays["gradient_layers"]]
            trace.gradient_norms = list(norms) if len(epochs) else []
        return trace


class TraceRecorder(Listener):
    """A listener: after each chunk of epochs, and once more when training ends, it moves the trainer's
    new snapshots into the run's trace (before the checkpoint keeper copies the trace)."""

    def __init__(self, trace: Trace, trainer, by_step: bool = False):
        self.trace, self.trainer, self.by_step = trace, trainer, by_step

    def on_chunk(self, epoch: int, history) -> None:
        self.trace.take(self.trainer.snapshots, by_step=self.by_step)

    def on_end(self, history) -> None:
        self.trace.take(self.trainer.snapshots, by_step=self.by_step)


def weight_names(model) -> list[str]:
    """One name per weight array, in `get_weights()` order: `layer/kernel`, `layer/bias`."""
    return [getattr(weight, "path", None) or weight.name for weight in model.weights]


def write_trace(run_dir: Path, trace: Trace) -> str:
    files.write_with(Path(run_dir) / TRACE, lambda temporary: _savez(temporary, trace.arrays()))
    return TRACE


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as stream:  # a file object: NumPy adds no `.npz` to the temporary name
        np.savez(stream, **arrays)


def read_trace(run_dir: Path) -> Trace | None:
    """A run's trace.npz (None when it has none), refused in one line when it is damaged."""
    path = Path(run_dir) / TRACE
    if not path.is_file():
        return None
    if not zipfile.is_zipfile(path):
        raise RunError(f"{path} is not a .npz archive (a zip file)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return Trace.from_arrays({key: archive[key] for key in archive.files})
    except Exception as error:  # a damaged zip, a missing key or a pickled array fail in many ways
        raise RunError(f"{path} cannot be read: {first_line(error)}") from None
