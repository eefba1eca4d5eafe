"""Things that listen to training, told about each chunk of epochs and the end of the run.

    >>> from beanstrain.engines.protocol import History
    >>> class Counter(Listener):
    ...     chunks = 0
    ...     def on_chunk(self, epoch, history):
    ...         self.chunks += 1
    >>> counter = Counter()
    >>> listeners = Listeners([counter])
    >>> listeners.on_chunk(10, History(["loss"], [[0.5]] * 10)); listeners.on_chunk(20, History(["loss"]))
    >>> counter.chunks
    2

As Keras's `CallbackList` tells every callback about each batch and epoch, a
run's training loop tells its listeners about each chunk of epochs an engine
trains (`on_chunk`, after the chunk's history rows are in), the end of
training (`on_end`), and a run that stops on an error (`on_abort`).  The
progress display (`progress.Progress`), the weight trace
(`trace.TraceRecorder`) and the checkpoint keeper (`checkpoints.Keeper`) are
each a listener; a new thing that watches training is one more class here or
beside what it watches, and one more entry in the run's list
(`training.listeners_for`).
"""

from __future__ import annotations

from collections.abc import Iterable

from beanstrain.engines.protocol import History


class Listener:
    """One thing that listens to training; each method does nothing unless overridden."""

    def on_chunk(self, epoch: int, history: History) -> None:
        """After a chunk of epochs: `epoch` epochs are done and `history` has a row for each."""

    def on_end(self, history: History) -> None:
        """Training has ended, finished or stopped early (Ctrl-C, divergence), before anything is saved."""

    def on_abort(self) -> None:
        """Training or saving ended in an error: let go of whatever is shown (a live progress line)."""


class Listeners(Listener):
    """Every listener of a run, told in the order given (the trace before the keeper, which saves it)."""

    def __init__(self, listeners: Iterable[Listener] = ()):
        self.listeners = list(listeners)

    def append(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def first(self, kind: type) -> Listener | None:
        """The first listener of a kind (the checkpoint keeper a failure saves from), if there is one."""
        return next((listener for listener in self.listeners if isinstance(listener, kind)), None)

    def on_chunk(self, epoch: int, history: History) -> None:
        for listener in self.listeners:
            listener.on_chunk(epoch, history)

    def on_end(self, history: History) -> None:
        for listener in self.listeners:
            listener.on_end(history)

    def on_abort(self) -> None:
        for listener in self.listeners:
            listener.on_abort()
