"""`beanstrain` in a real process, with test hooks chosen by environment variables.

    python tests/hooked_beanstrain.py fit beans4-hidden2 --epochs 400 --out runs

Tests that signal or kill a real process use it, so the signal or the kill
lands at a known epoch instead of wherever a run of uncertain pace happens
to be (a run can finish before a signal sent from outside arrives):

BEANSTRAIN_TEST_WAIT_AT=EPOCH and BEANSTRAIN_TEST_READY=FILE
    Once the progress display reaches EPOCH (at the end of a chunk, before
    the run asks whether to stop), create FILE and wait until a SIGINT or
    SIGTERM from outside has reached beanstrain's handler (a minute at most).

BEANSTRAIN_TEST_KILL_AFTER=EPOCH
    Shorten the running job's checkpoint interval to zero (a checkpoint after
    every chunk) and end the process with SIGKILL, which nothing can catch,
    right after the first checkpoint at or past EPOCH is written.

BEANSTRAIN_TEST_NO_TENSORFLOW=1
    Make `import tensorflow` fail, as where it is not installed: a run on
    JAX or PyTorch must never need it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def wait_for_a_stop_signal(at_epoch: int, ready: Path) -> None:
    from beanstrain.progress import Progress

    update = Progress.update
    waited = []

    def update_then_wait(self, epoch, figures):
        update(self, epoch, figures)
        if epoch < at_epoch or waited:
            return
        waited.append(epoch)
        # The handler is beanstrain's StopRequest (a bound method) while training runs.
        stop_request = signal.getsignal(signal.SIGINT).__self__
        ready.touch()
        deadline = time.monotonic() + 60
        while not stop_request.requested() and time.monotonic() < deadline:
            time.sleep(0.01)

    Progress.update = update_then_wait


def die_after_a_checkpoint(at_epoch: int) -> None:
    from beanstrain import checkpoints

    checkpoints.SAVE_EVERY_SECONDS = 0.0
    write = checkpoints.write_checkpoint

    def write_then_die(run_dir, state, seed):
        name = write(run_dir, state, seed)
        if state.epoch >= at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
        return name

    checkpoints.write_checkpoint = write_then_die


def main() -> None:
    if os.environ.get("BEANSTRAIN_TEST_NO_TENSORFLOW"):
        sys.modules["tensorflow"] = None  # `import tensorflow` now raises ImportError
    if "BEANSTRAIN_TEST_WAIT_AT" in os.environ:
        wait_for_a_stop_signal(int(os.environ["BEANSTRAIN_TEST_WAIT_AT"]), Path(os.environ["BEANSTRAIN_TEST_READY"]))
    if "BEANSTRAIN_TEST_KILL_AFTER" in os.environ:
        die_after_a_checkpoint(int(os.environ["BEANSTRAIN_TEST_KILL_AFTER"]))
    from beanstrain.cli import cli

    cli(sys.argv[1:], prog_name="beanstrain")


if __name__ == "__main__":
    main()
