"""TensorBoard event files: every run's per-epoch figures and weights, and a sweep's HParams table.

    beanstrain fit beans4-hidden2                 # runs/beans4-hidden2/<run>/tb/
    tensorboard --logdir runs                     # every run side by side, http://localhost:6006

A run's `tb/` folder holds three TensorBoard runs, as Keras's own TensorBoard callback lays them out:
`train/` and `test/` (or `val/` for image runs) with the scalars `epoch_loss` and `epoch_accuracy`
at each epoch, so the two curves share one chart, and `weights/` with a histogram of every weight
array (`weights/dense/kernel`, ...) and each layer's gradient norm (`gradient_norm/dense`) at each
snapshot of the weight trace, by optimizer step.  They are written from the history and the trace,
after each chunk of epochs, so every engine (compiled, fit, numpy, on every backend) gets them and
an interrupted run keeps what it had; a resumed run writes its files anew from its checkpoint's history
and trace, and removes the older ones, so no step is shown twice (TensorBoard reads a folder's files in
the order of their names, which two processes in one second do not keep).

A sweep's folder gets `tb/`: the HParams plugin's experiment (the `--set` keys and the final test
figures) and one session per finished trial, so TensorBoard's HParams tab tables them and draws their
parallel coordinates.

The files are written with the `tensorboard` package's own event writer and summary protos (it is
installed with TensorFlow, and imports none of it), so a run on JAX or PyTorch writes them without
TensorFlow.
"""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import numpy as np

from beanstrain.listeners import Listener

BOARD = "tb"  # the folder in a run (and in a sweep) the event files go in
WEIGHTS_RUN = "weights"


def _without_tensorflow() -> None:
    """TensorBoard's file layer (and its HParams summaries) import TensorFlow when it is installed (3 s, and never
    on another backend) unless this module exists: then it uses its own stub, which writes local files alike."""
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def _writer(folder: Path):
    _without_tensorflow()
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    return EventFileWriter(str(folder))


def _event(step: int, summary=None, session_log=None):
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(step=int(step), wall_time=time.time(), summary=summary, session_log=session_log)


def _scalars(writer, values: dict[str, float], step: int) -> None:
    """One event holding several scalars (tag -> value) at one step, as the scalar plugin's own summaries are.

    Made once per set of tags and then only changed (the writer serializes an event as it takes it): the
    plugin's `scalar_pb` builds a tensor proto through NumPy each time, many times slower per epoch."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata

    key = (id(writer), tuple(values))
    event = _SCALAR_EVENTS.get(key)
    if event is None:
        marker = metadata.create_summary_metadata(display_name="", description="")
        event = event_pb2.Event(summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=tag, metadata=marker, tensor=tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(), float_val=[0.0]))
            for tag in values]))
        _SCALAR_EVENTS[key] = event
    event.step, event.wall_time = int(step), time.time()
    for entry, value in zip(event.summary.value, values.values()):
        entry.tensor.float_val[0] = float(value)
    writer.add_event(event)


_SCALAR_EVENTS: dict = {}  # (writer, tags) -> the event last written with them, to be filled in again


def _histogram(writer, tag: str, values: np.ndarray, step: int) -> None:
    from tensorboard.plugins.histogram.summary_v2 import histogram_pb

    writer.add_event(_event(step, summary=histogram_pb(tag, np.asarray(values, np.float64).reshape(-1))))


def split_column(column: str) -> tuple[str, str]:
    """A history column as (TensorBoard run, tag): 'test_loss' -> ('test', 'epoch_loss').

    >>> split_column("loss"), split_column("val_accuracy")
    (('train', 'epoch_loss'), ('val', 'epoch_accuracy'))
    """
    held_out, _, metric = column.rpartition("_")
    return (held_out or "train"), f"epoch_{metric}"


class BoardWriter(Listener):
    """A listener: after each chunk, the new epochs' figures and the trace's new snapshots go to `run_dir/tb/`."""

    def __init__(self, run_dir: Path, columns: list[str], trace, start_epoch: int = 0):
        self.folder = Path(run_dir) / BOARD
        self.columns, self.trace = list(columns), trace
        # A resumed run writes everything again from its checkpoint's history and trace (`_get` removes the old
        # files first): appending after an earlier process's files can be read out of order.
        self.written_epochs = 0
        self.written_snapshots = 0
        self.writers: dict[str, object] = {}
        self.resumed = start_epoch > 0
        self.failed: str | None = None  # why the files stopped, if they did

    def _get(self, name: str):
        if self.resumed:  # once, before this process writes anything: the older files go
            for old in self.folder.glob("*/events.out.tfevents.*"):
                old.unlink(missing_ok=True)
            self.resumed = False
        if name not in self.writers:
            self.writers[name] = _writer(self.folder / name)
        return self.writers[name]

    def on_chunk(self, epoch: int, history) -> None:
        """Write what is new; a file error (a full disk) stops the TensorBoard files, never the run, whose own
        files then meet the same error and report it."""
        if self.failed:
            return
        try:
            self._write(history)
        except Exception as error:  # the writer raises its own kinds too (its file system layer's)
            self.failed = str(error) or type(error).__name__
            self.close()

    def _write(self, history) -> None:
        places = [split_column(column) for column in history.columns]
        for number in range(self.written_epochs, history.epochs_done):
            by_run: dict[str, dict[str, float]] = {}
            for (run, tag), value in zip(places, history.rows[number]):
                if np.isfinite(value):
                    by_run.setdefault(run, {})[tag] = value
            for run, values in by_run.items():
                _scalars(self._get(run), values, number + 1)
        self.written_epochs = history.epochs_done
        self._snapshots()
        for writer in self.writers.values():
            writer.flush()

    def _snapshots(self) -> None:
        trace = self.trace
        if trace is None or trace.summarize:
            return
        steps = trace.steps if trace.steps is not None else [
            round(epoch * trace.steps_per_epoch) for epoch in trace.epochs]
        for index in range(self.written_snapshots, len(trace.epochs)):
            writer = self._get(WEIGHTS_RUN)
            for name, values in zip(trace.names, trace.snapshots[index]):
                _histogram(writer, f"weights/{name}", values, steps[index])
            if index < len(trace.gradient_norms):
                _scalars(writer, {f"gradient_norm/{layer}": float(norm) for layer, norm
                                  in zip(trace.gradient_layers, trace.gradient_norms[index])}, steps[index])
        self.written_snapshots = len(trace.epochs)

    def on_end(self, history) -> None:
        self.on_chunk(history.epochs_done, history)
        self.close()

    def on_abort(self) -> None:
        self.close()

    def close(self) -> None:
        for writer in self.writers.values():
            for key in [key for key in _SCALAR_EVENTS if key[0] == id(writer)]:
                del _SCALAR_EVENTS[key]
            try:
                writer.close()
            except Exception as error:  # its last flush met a full disk: the run's own files will say so
                self.failed = self.failed or str(error) or type(error).__name__
        self.writers = {}


def write_sweep_hparams(sweep_dir: Path, sweep: dict) -> Path:
    """The sweep's HParams experiment and one session per finished trial, under `sweep_dir/tb/`."""
    _without_tensorflow()
    from tensorboard.plugins.hparams import summary_v2 as hparams

    folder = Path(sweep_dir) / BOARD
    keys = list(sweep["grid"])
    domains = {}
    for key in keys:
        values = [_hparam_value(value) for value in sweep["grid"][key]]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            domains[key] = hparams.HParam(key, hparams.RealInterval(float(min(values)), float(max(values))))
        else:
            domains[key] = hparams.HParam(key, hparams.Discrete(sorted({str(value) for value in values})))
    metrics = [hparams.Metric("test_accuracy", display_name="test accuracy"),
               hparams.Metric("test_loss", display_name="test loss")]
    writer = _writer(folder)
    writer.add_event(_event(0, summary=hparams.hparams_config_pb(list(domains.values()), metrics)))
    writer.close()
    for trial in sweep["trials"]:
        if trial.get("state") != "finished":
            continue
        values = {domains[key]: (_hparam_value(trial["settings"][key]) if isinstance(domains[key].domain,
                                                                                     hparams.RealInterval)
                                 else str(_hparam_value(trial["settings"][key]))) for key in keys}
        writer = _writer(folder / f"trial-{trial['trial']}")
        writer.add_event(_event(0, summary=hparams.hparams_pb(values, trial_id=f"trial-{trial['trial']}")))
        _scalars(writer, {f"test_{name}": value for name, value in (trial.get("test") or {}).items()}, 0)
        writer.close()
    return folder


def _hparam_value(value):
    """A setting as HParams takes it: a number, or a list (hidden=[8, 8]) as its flag's text '8,8'."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "0"
    return value
