"""What a run does when it cannot finish: record its state, keep what it can, and say so in one line.

`recording_failure(run_dir, listeners)` wraps a run's training and saving.  On a full disk
the line it raises reads, for example: `no space left on device writing model.keras in RUN;
history.csv and the checkpoint after epoch 300 were saved and the run is marked failed; free some
space and resume with: beanstrain fit --resume RUN`.  Its clauses come from here:

    >>> import errno
    >>> full = OSError(errno.ENOSPC, "No space left on device")
    >>> reason(full), remedy(full)
    ('no space left on device', 'free some space')
    >>> remedy(OSError(errno.EACCES, "Permission denied"))
    'make the run folder writable'

The first failure is the one told.  A failure while handling it (the
checkpoint, or config.json itself, cannot be written either, as on a full
disk) is added to the same line, never put in its place, and the line always
says what survived and what to do next.  Any OSError (a full disk, a folder
made read-only, an I/O error) ends this way, never as a traceback.
"""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

from beanstrain import files, runs
from beanstrain.checkpoints import CHECKPOINT_INFO, Keeper, has_checkpoint, is_checkpoint_file
from beanstrain.errors import Interrupted, RunError, UsageError, first_line
from beanstrain.listeners import Listeners


def reason(error: BaseException, run_dir: Path | None = None) -> str:
    """An error as a clause: 'no space left on device writing model.keras in RUN' (with `run_dir`),
    'no space left on device' (without), or the error's first line."""
    if not isinstance(error, OSError) or not error.strerror:
        return first_line(error)
    text = error.strerror[:1].lower() + error.strerror[1:]
    if run_dir is None:
        return text
    written = files.written_file(error)
    path = written or (Path(error.filename) if error.filename else None)
    verb = "writing" if written else "on"
    if path is not None and path.parent == Path(run_dir):
        return f"{text} {verb} {path.name} in {run_dir}"
    if path is not None:
        return f"{text} {verb} {path}"
    return f"{text} in {run_dir}"


def remedy(error: BaseException) -> str:
    """What a person can do about an error before trying again."""
    number = getattr(error, "errno", None)
    if number in (errno.ENOSPC, errno.EDQUOT):
        return "free some space"
    if number in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "make the run folder writable"
    return "check the disk" if isinstance(error, OSError) else "fix the cause"


def survivors(run_dir: Path, checkpoint_epoch: int | None = None) -> str:
    """'model.keras, metrics.json and history.csv were saved', from what is in the folder now."""
    names = runs.saved_outputs(run_dir)
    if checkpoint_epoch is not None:
        names.append(f"the checkpoint after epoch {checkpoint_epoch}")
    if not names:
        return "nothing was saved"
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed} {'was' if len(names) == 1 else 'were'} saved"


def checkpoint_on_disk(run_dir: Path) -> int | None:
    """The epoch of a complete checkpoint in the folder (perhaps from an earlier save), or None."""
    if not has_checkpoint(Path(run_dir)):
        return None
    try:
        return int(files.read_json(Path(run_dir) / CHECKPOINT_INFO)["epoch"])
    except (RunError, KeyError, TypeError, ValueError):
        return None


def try_set_state(run_dir: Path, state: str, **fields) -> BaseException | None:
    """Record the run's state; returns the error instead of raising it when config.json cannot be written."""
    try:
        runs.set_state(run_dir, state, **fields)
        return None
    except Exception as error:  # a full disk, or a config.json gone bad: the caller says so in its line
        return error


def not_updated(error: BaseException, state: str) -> str:
    return f"{runs.CONFIG} could not be updated either ({reason(error)}), so it does not say {state}"


def try_save_checkpoint(keeper, notes: list[str]) -> int | None:
    """Write the keeper's latest state; on failure add a note and return None."""
    try:
        return keeper.save()
    except Exception as error:
        notes.append(f"the checkpoint could not be saved ({reason(error)})")
        return None


def next_step(run_dir: Path, checkpoint_epoch: int | None) -> str:
    if checkpoint_epoch is not None:
        return f"resume with: {runs.resume_command(run_dir)}"
    return "train again"


@contextlib.contextmanager
def recording_failure(run_dir: Path, listeners: Listeners):
    """If the block does not finish: save the last good checkpoint (the run's `checkpoints.Keeper`, once it is
    among its `listeners`), mark the run `interrupted` (a second Ctrl-C) or `failed` (anything else), and
    raise one line saying what happened, what survived and what to do.  An error of no kind known here is
    recorded and raised as it is."""
    try:
        yield
    except BaseException as error:
        with contextlib.suppress(Exception):
            listeners.on_abort()
        failure = record_failure(run_dir, error, listeners.first(Keeper))
        if failure is None:
            raise
        raise failure from None


def record_failure(run_dir: Path, error: BaseException, keeper) -> BaseException | None:
    """Record a run stopped by `error`; returns the one-line error to raise (None: raise `error` itself)."""
    notes: list[str] = []
    saved_epoch = None
    written = files.written_file(error)
    if keeper is not None and not (written is not None and is_checkpoint_file(written.name)):
        saved_epoch = try_save_checkpoint(keeper, notes)
        if notes:
            notes[-1] = notes[-1].replace("could not be saved", "could not be saved either")
    interrupted = isinstance(error, KeyboardInterrupt)
    state = runs.INTERRUPTED if interrupted else runs.FAILED
    unwritten = try_set_state(run_dir, state, checkpoint_epoch=saved_epoch,
                              error=reason(error, run_dir) if isinstance(error, OSError) else first_line(error))
    if unwritten is not None:
        notes.append(not_updated(unwritten, state))
    checkpoint = saved_epoch if saved_epoch is not None else checkpoint_on_disk(run_dir)
    if isinstance(error, OSError):
        marked = "" if unwritten is not None else f" and the run is marked {state}"
        return RunError("; ".join([reason(error, run_dir), *notes, survivors(run_dir, checkpoint) + marked,
                                   f"{remedy(error)} and {next_step(run_dir, checkpoint)}"]))
    if saved_epoch is not None:
        resume = f"checkpoint after epoch {saved_epoch} saved; resume with: {runs.resume_command(run_dir)}"
    elif checkpoint is not None:
        resume = f"resume with: {runs.resume_command(run_dir)}"
    else:
        resume = f"start it again with: beanstrain fit {run_dir.parent.name}"
    if interrupted:
        return Interrupted("; ".join(["interrupted", *notes, resume]))
    if isinstance(error, (UsageError, RunError)):
        return type(error)("; ".join([str(error), *notes, resume]))
    return None


def unfinished(run_dir: Path, picture_error: OSError | None, state_error: BaseException | None) -> RunError:
    """The line for a run whose model and metrics were saved but whose pictures or finished state were not.

    With its pictures missing but its state written, the run is finished (eval and predict use it) and
    `fit --resume` draws the pictures once there is room; if config.json could not say so, the run is
    not finished and must be trained again (or resumed from a checkpoint left earlier).
    """
    checkpoint = checkpoint_on_disk(run_dir)
    if state_error is None:
        return RunError(f"{reason(picture_error, run_dir)}; {survivors(run_dir)} and the run is marked finished "
                        f"(eval and predict can use it); {remedy(picture_error)} and draw the missing pictures "
                        f"with: {runs.resume_command(run_dir)}")
    first = picture_error or state_error
    parts = [reason(first, run_dir)]
    if picture_error is not None:
        parts.append(not_updated(state_error, runs.FINISHED))
    parts.append(f"{survivors(run_dir, checkpoint)}, but the run is not marked finished")
    parts.append(f"{remedy(first)} and {next_step(run_dir, checkpoint)}")
    return RunError("; ".join(parts))


def stop_early(run_dir: Path, keeper, history, *, diverged: int | None, signal_name: str | None, epochs: int,
               learning_rate: float | None, train_seconds: float):
    """A diverged or interrupted run: write its history, keep the last good checkpoint, record the state and
    raise its one line.  Divergence (or the interrupt) is the first failure and is always told first; a
    file that cannot be written on top of it (a full disk) is added to the same line."""
    notes: list[str] = []
    try:
        runs.write_history(run_dir / runs.HISTORY, history.columns, history.rows)
    except OSError as error:
        notes.append(f"{runs.HISTORY} could not be written ({reason(error)})")
    saved_epoch = try_save_checkpoint(keeper, notes)
    if diverged:
        unwritten = try_set_state(run_dir, runs.DIVERGED, diverged_epoch=diverged, checkpoint_epoch=saved_epoch,
                                  train_seconds=train_seconds)
        notes += [not_updated(unwritten, runs.DIVERGED)] if unwritten else []
        rate = f" (now {learning_rate})" if learning_rate else ""
        kept = (f"The weights after epoch {saved_epoch}, the last finite ones, are kept in "
                f"{run_dir / keeper.arrays_name}"
                if saved_epoch is not None else "The last finite weights could not be kept")
        raise RunError("; ".join([f"training diverged at epoch {diverged}: the loss became NaN or infinite; "
                                  f"try a lower --learning-rate{rate}. {kept}", *notes]))
    unwritten = try_set_state(run_dir, runs.INTERRUPTED, checkpoint_epoch=saved_epoch, train_seconds=train_seconds,
                              error=signal_name)
    notes += [not_updated(unwritten, runs.INTERRUPTED)] if unwritten else []
    if saved_epoch is None:
        raise Interrupted("; ".join([f"{signal_name}: stopped after epoch {history.epochs_done} of {epochs}", *notes,
                                     next_step(run_dir, checkpoint_on_disk(run_dir))]))
    raise Interrupted("; ".join([f"{signal_name}: stopped after epoch {saved_epoch} of {epochs}, checkpoint saved",
                                 *notes, f"resume with: {runs.resume_command(run_dir)}"]))
