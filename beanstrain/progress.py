"""The per-epoch progress display: one live line on a terminal, a few lines in a log.

    >>> import io
    >>> log = io.StringIO()                    # not a terminal: a line each tenth of the run
    >>> progress = Progress(total_epochs=5000, stream=log)
    >>> progress.update(1200, {"loss": 0.087, "accuracy": 0.89})
    >>> progress.update(1300, {"loss": 0.081, "accuracy": 0.9})     # the same tenth: no new line
    >>> print(log.getvalue(), end="")
    epoch 1200/5000  loss 0.087  accuracy 0.890  ...s

On a terminal the line is rewritten in place; elsewhere (a log file, CI) a
line is printed each time another tenth of the run is done, so 5000 epochs
make at most eleven lines.
"""

from __future__ import annotations

import sys
import time

from beanstrain.listeners import Listener


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_metrics(metrics: dict[str, float]) -> str:
    parts = []
    for name, value in metrics.items():
        parts.append(f"{name} {value:.3f}" if "accuracy" in name else f"{name} {value:.4g}")
    return "  ".join(parts)


class Progress(Listener):
    """A listener: the line after each chunk of epochs (`on_chunk`), a newline when training ends."""

    def __init__(self, total_epochs: int, stream=None, quiet: bool = False, start_epoch: int = 0):
        self.total = total_epochs
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.start_epoch = start_epoch
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.last_draw = 0.0
        self.tenths_shown = -1
        self.width = 0
        self.updates = 0

    def line(self, epoch: int, metrics: dict[str, float]) -> str:
        elapsed = time.perf_counter() - self.started
        done = epoch - self.start_epoch
        digits = len(str(self.total))
        text = f"epoch {epoch:>{digits}}/{self.total}  {format_metrics(metrics)}  {format_seconds(elapsed)}"
        # The first update includes compiling and says nothing about the pace.
        if self.updates > 1 and done > 0 and epoch < self.total:
            text += f", ~{format_seconds(elapsed / done * (self.total - epoch))} left"
        return text

    def update(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.quiet:
            return
        self.updates += 1
        finished = epoch >= self.total
        if self.live:
            now = time.perf_counter()
            if finished or now - self.last_draw >= 0.1:
                text = self.line(epoch, metrics)
                self.stream.write("\r" + text.ljust(self.width))
                self.width = len(text)
                self.last_draw = now
                self.stream.flush()
            return
        tenths = epoch * 10 // max(self.total, 1)
        if tenths > self.tenths_shown or finished:
            self.tenths_shown = tenths
            self.stream.write(self.line(epoch, metrics) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.live and not self.quiet and self.width:
            self.stream.write("\n")
            self.stream.flush()

    def on_chunk(self, epoch: int, history) -> None:
        self.update(epoch, history.last())

    def on_end(self, history) -> None:
        self.close()

    def on_abort(self) -> None:
        self.close()


def echo(message: str, stream=None) -> None:
    """One line for the person running the command, on stderr (stdout is kept for --json)."""
    print(message, file=stream or sys.stderr, flush=True)
