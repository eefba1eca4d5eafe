"""Ctrl-C and SIGTERM during training: finish the current chunk of epochs, then stop cleanly.

    >>> import os, signal
    >>> with StopRequest() as stop:                  # trainer.run(0, 5000, should_stop=stop.requested)
    ...     os.kill(os.getpid(), signal.SIGINT)      # as Ctrl-C does
    ...     stop.requested()
    True
    >>> stop.signal_name
    'SIGINT'

The first signal only sets a flag that the training loop reads between
chunks (about half a second apart), so the run can save a checkpoint and be
resumed.  A second signal stops at once (KeyboardInterrupt), for a user who
cannot wait.
"""

from __future__ import annotations

import signal
import sys
import threading

SIGNALS = ("SIGINT", "SIGTERM")


class StopRequest:
    def __init__(self, stream=None, message: str = "stopping after this chunk of epochs"):
        self.stream = stream or sys.stderr
        self.message = message
        self.signal_name: str | None = None
        self._previous: dict = {}

    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, number, frame):
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(number).name
        print(f"\n{self.signal_name}: {self.message} and saving a checkpoint "
              "(signal again to stop at once)", file=self.stream, flush=True)

    def __enter__(self) -> StopRequest:
        # Handlers can only be installed from the main thread; elsewhere signals keep their defaults.
        if threading.current_thread() is threading.main_thread():
            for name in SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
