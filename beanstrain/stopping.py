"""Early stopping: end a run when its held-out figure has not improved for `patience` epochs, keeping the best.

    beanstrain fit spiral-deep8 --patience 50                      # on the held-out loss
    beanstrain fit beans4-hidden2 --patience 100 --monitor accuracy

A listener (`listeners.Listener`), as Keras's `EarlyStopping(patience=N, restore_best_weights=True)`
is a callback, deciding as it does: after every epoch the held-out loss (or accuracy) is compared with
the best so far; a better one (strictly: lower loss, higher accuracy) becomes the best and keeps its
epoch's weights, and once `patience` epochs in a row have not bettered it, training stops.  The best
epoch's weights are then the run's: `model.keras`, the final figures and the pictures are the best
epoch's, and `metrics.json` records `best_epoch` and `stopped_epoch`.

The decision needs each epoch's weights when it is made, so while `patience` is set every engine
trains one epoch per chunk (`most_epochs_per_chunk`), the compiled loops too: the stop falls on the
epoch Keras's callback would stop at, on every engine.  The best weights so far are also kept in the
run folder (`best-weights.npz`, written atomically at each new best), so a run interrupted and resumed
still ends with the best epoch's weights, even one from before the interruption; the file goes when
training ends.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from beanstrain import files
from beanstrain.errors import UsageError
from beanstrain.listeners import Listener

BEST_WEIGHTS = "best-weights.npz"  # in the run folder while it trains: the best epoch's weights and the epoch
MONITORS = ("loss", "accuracy")  # the held-out figure watched: lower loss, or higher accuracy, is better


def monitored_column(columns: list[str], monitor: str) -> str:
    """The history column a run's early stopping watches: its held-out set's loss or accuracy."""
    held_out = [column for column in columns if column.endswith(f"_{monitor}")]
    if not held_out:
        if monitor == "accuracy" and "accuracy" not in columns:
            raise UsageError("--monitor accuracy needs a classification set; a regression run has no accuracy")
        raise UsageError(f"--patience watches the held-out {monitor}, and this run has no held-out set; image "
                         "sets need --validation-split (0.1 for example)")
    return held_out[0]


class EarlyStopping(Listener):
    """Watches `column` after each chunk (one epoch while it listens) and keeps the best epoch's weights."""

    def __init__(self, model, columns: list[str], patience: int, monitor: str, history_rows=(),
                 run_dir: Path | None = None):
        self.model, self.patience = model, patience
        self.kept = Path(run_dir) / BEST_WEIGHTS if run_dir is not None else None
        self.column = monitored_column(columns, monitor)
        self.index = columns.index(self.column)
        self.better = np.less if monitor == "loss" else np.greater
        self.best: float | None = None
        self.best_epoch = 0  # 1-based
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.seen = 0
        for row in history_rows:  # a resumed run: its epochs so far, judged again, the best's weights from disk
            self._judge(row[self.index], weights=None)
        if self.best_epoch and self.kept is not None and self.kept.is_file():
            with np.load(self.kept, allow_pickle=False) as saved:
                if int(saved["epoch"]) == self.best_epoch:
                    self.best_weights = [saved[f"weight_{index}"] for index in range(len(saved.files) - 1)]

    def _judge(self, value: float, weights) -> None:
        """Keras's EarlyStopping.on_epoch_end, with restore_best_weights and min_delta 0."""
        epoch = self.seen  # 0-based, as Keras counts
        self.seen += 1
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return
        if self.best_weights is None and weights is not None:
            self.best_weights, self.best_epoch = weights, epoch + 1
        self.wait += 1
        if self.best is None or self.better(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if weights is not None:
                self.best_weights = weights
                self._keep(weights)
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch + 1

    def on_chunk(self, epoch: int, history) -> None:
        for number in range(self.seen, history.epochs_done):
            # Chunks are one epoch long while this listens, so the network holds this epoch's weights.
            weights = self.model.get_weights() if number == history.epochs_done - 1 else None
            self._judge(history.rows[number][self.index], weights)

    def _keep(self, weights) -> None:
        if self.kept is None:
            return
        arrays = {f"weight_{index}": np.asarray(weight) for index, weight in enumerate(weights)}

        def write(temporary: Path) -> None:
            with open(temporary, "wb") as stream:  # a file object: np.savez would add .npz to a name
                np.savez(stream, epoch=np.array(self.best_epoch), **arrays)

        files.write_with(self.kept, write)

    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def finish(self) -> None:
        """The best epoch's weights back into the network, as Keras restores them at the end of training.

        Called by the training loop once the run has trained to its end (or stopped on its patience), not on
        an interruption, whose checkpoint must hold the weights it stopped at."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        if self.kept is not None:
            self.kept.unlink(missing_ok=True)

    def record(self) -> dict:
        """What metrics.json and `fit --json` say of it."""
        return {"monitor": self.column, "patience": self.patience, "best_epoch": self.best_epoch,
                "best": None if self.best is None else float(self.best), "stopped_epoch": self.stopped_epoch}
