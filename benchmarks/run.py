"""Plain Keras, written the course's way, against `beanstrain fit`, in one run on this machine.

    python benchmarks/run.py              # every case, baselines of toy sets scaled from 100 epochs
    python benchmarks/run.py --quick      # fewer baseline epochs, no Fashion-MNIST
    python benchmarks/run.py --baseline-epochs 5000   # the toy baselines in full (minutes)
    python benchmarks/run.py --no-toy --repeat 3      # only LeNet-5, three alternating rounds
    python benchmarks/run.py --lenet-settings --repeat 3   # LeNet-5 under each setting tried

Each case trains the same data with the same settings, each run in its own
process: as the course's script does (`model.fit(X, Y, epochs=..., batch_size=...)`)
and through the real command line (`beanstrain fit ... --json`).  The toy
cases compare the training seconds each reports; the whole `beanstrain`
process (start, train, pictures) is timed too.  LeNet-5 on Fashion-MNIST is
timed per epoch against two baselines, plain Keras with TensorFlow's oneDNN
kernels off (`TF_ENABLE_ONEDNN_OPTS=0`) and on (`=1`), each in its own
process because TensorFlow reads the variable when it is imported.  With
`--repeat N` the runs alternate N times and the medians are shown, so load
from other programs hits all alike.  Times are only ever printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

# The course's script: build, compile, `fit` with the course's settings, report the time it took.
BASELINE = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import keras
from keras import layers
from beanstrain.data import load_dataset

case = json.loads(sys.argv[1])
data = load_dataset(case["dataset"], case.get("samples"), 0.0, 0)
keras.utils.set_random_seed(0)
if case["model"] == "lenet5":
    x_train, x_test = data.x_train, data.x_test
    y_train, y_test = (keras.utils.to_categorical(labels, 10) for labels in (data.y_train, data.y_test))
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(filters=6, kernel_size=5, activation="relu"), layers.AveragePooling2D(pool_size=2),
        layers.Conv2D(filters=16, kernel_size=5, activation="relu"), layers.AveragePooling2D(pool_size=2),
        layers.Flatten(), layers.Dense(units=120, activation="relu"), layers.Dense(units=84, activation="relu"),
        layers.Dense(units=10, activation="softmax"),
    ])
    loss = "categorical_crossentropy"
else:
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    hidden = {"hidden2": [layers.Dense(units=2, activation="sigmoid")],
              "deep8": [layers.Dense(units=8, activation="relu") for _ in range(3)]}[case["model"]]
    model = keras.Sequential([keras.Input(shape=(2,)), *hidden, layers.Dense(units=1, activation="sigmoid")])
    loss = "mean_squared_error"
model.compile(loss=loss, optimizer=keras.optimizers.SGD(learning_rate=0.05), metrics=["accuracy"])

class EpochTimes(keras.callbacks.Callback):  # not in the course's script; only reads the clock
    def on_epoch_begin(self, epoch, logs=None):
        epoch_begins.append(time.time())

    def on_epoch_end(self, epoch, logs=None):
        epoch_ends.append(time.time())


epoch_begins, epoch_ends = [], []
start = time.time()
model.fit(x_train, y_train, epochs=case["epochs"], batch_size=case["batch_size"], verbose=0,
          callbacks=[EpochTimes()])
cost = time.time() - start
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
try:  # whether TensorFlow's oneDNN kernels are on in this process
    from tensorflow.python.util import _pywrap_util_port
    onednn = bool(_pywrap_util_port.IsMklEnabled())
except (ImportError, AttributeError):
    onednn = None
print(json.dumps({"seconds": cost, "first_epoch": epoch_ends[0] - start, "accuracy": test_accuracy,
                  "epochs": [end - begin for begin, end in zip(epoch_begins, epoch_ends)], "onednn": onednn}))
"""


# `beanstrain fit` itself, in this child process, with one clock-reading callback added to every
# `fit` so its epochs are timed exactly as the baseline's are; argv: stamps file, then fit's arguments.
TIMED_BEANSTRAIN = r"""
import json, sys, time
from beanstrain.devices import load_keras
keras = load_keras()
stamps = []


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        stamps.append(["begin", time.perf_counter()])

    def on_epoch_end(self, epoch, logs=None):
        stamps.append(["end", time.perf_counter()])


plain_fit = keras.Model.fit


def timed_fit(self, *args, callbacks=None, **kwargs):
    return plain_fit(self, *args, callbacks=[*(callbacks or []), EpochTimes()], **kwargs)


keras.Model.fit = timed_fit
from beanstrain.cli import cli
try:
    cli.main(sys.argv[2:], prog_name="beanstrain")
finally:
    with open(sys.argv[1], "w") as stream:
        json.dump(stamps, stream)
"""


# One LeNet-5 setting for `--lenet-settings`, in its own process; argv: the setting's spec as JSON.
# Prints each epoch's wall and CPU seconds (on_epoch_end to on_epoch_end; the first from the start).
LENET_SETTING = r"""
import json, os, resource, sys, time
spec = json.loads(sys.argv[1])
os.environ.update(spec.get("env", {}))
from beanstrain.devices import load_keras
keras = load_keras()
import numpy as np
import tensorflow as tf
from beanstrain.data import load_dataset
from beanstrain.models import build_model
from beanstrain.objectives import encode_targets, make_accuracy_metric, make_loss, make_optimizer
from beanstrain.engines import TrainData
from beanstrain.engines.build import make_trainer
from beanstrain.engines.order import epoch_permutation

if spec.get("inter_op"):
    tf.config.threading.set_inter_op_parallelism_threads(spec["inter_op"])
if spec.get("intra_op"):
    tf.config.threading.set_intra_op_parallelism_threads(spec["intra_op"])
if spec.get("policy"):
    keras.mixed_precision.set_global_policy(spec["policy"])
data = load_dataset("fashion-mnist", None, 0.0, 0)
x, y = data.x_train, encode_targets(data.y_train, "multiclass", "categorical_crossentropy", 10)
keras.utils.set_random_seed(0)
if spec.get("channels_first"):
    layers, order = keras.layers, "channels_first"
    x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    model = keras.Sequential([
        keras.Input(shape=x.shape[1:]),
        layers.Conv2D(filters=6, kernel_size=5, activation="relu", data_format=order),
        layers.AveragePooling2D(pool_size=2, data_format=order),
        layers.Conv2D(filters=16, kernel_size=5, activation="relu", data_format=order),
        layers.AveragePooling2D(pool_size=2, data_format=order),
        layers.Flatten(), layers.Dense(units=120, activation="relu"), layers.Dense(units=84, activation="relu"),
        layers.Dense(units=10, activation="softmax"),
    ])
else:
    model = build_model("lenet5", (28, 28, 1), "multiclass", 10)


def clocks():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime + usage.ru_stime


marks = [clocks()]


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        marks.append(clocks())


epochs, loss = spec["epochs"], make_loss("categorical_crossentropy")
if spec["feed"] == "engine":
    trainer = make_trainer("fit", model, loss, make_optimizer("sgd", 0.05), TrainData(x, y), 1024, 0,
                           "categorical", make_accuracy_metric("multiclass", "categorical_crossentropy"))
    trainer.run(0, epochs, on_chunk=lambda epoch, history: marks.append(clocks()))
else:
    model.compile(loss=loss, optimizer=make_optimizer("sgd", 0.05), metrics=["accuracy"])
    if spec["feed"] == "arrays":
        model.fit(x, y, epochs=epochs, batch_size=1024, verbose=0, callbacks=[EpochTimes()])
    else:  # "arrays per epoch": each epoch's arrays in epoch_permutation order, one fit call each
        for epoch in range(epochs):
            order = epoch_permutation(0, epoch, len(x))
            model.fit(x[order], y[order], batch_size=1024, epochs=epoch + 1, initial_epoch=epoch, shuffle=False,
                      verbose=0, callbacks=[EpochTimes()])
print(json.dumps({"wall": [b[0] - a[0] for a, b in zip(marks, marks[1:])],
                  "cpu": [b[1] - a[1] for a, b in zip(marks, marks[1:])]}))
"""


@dataclass
class Case:
    name: str
    dataset: str
    model: str
    epochs: int
    batch_size: int
    samples: int | None = None
    baseline_epochs: int | None = None  # None: the same as `epochs`
    extra_flags: list[str] = field(default_factory=list)

    def fit_args(self) -> list[str]:
        return ["fit", "--dataset", self.dataset, "--model", self.model, "--epochs", str(self.epochs),
                "--batch-size", str(self.batch_size), "--optimizer", "sgd", "--learning-rate", "0.05",
                *self.extra_flags]


@dataclass
class Measured:
    seconds: float
    accuracy: float | None = None
    process_seconds: float | None = None
    peak_mib: float | None = None


def run_child(args: list[str], env: dict[str, str | None] | None = None) -> tuple[str, float, float]:
    """Run a Python child (`env` adds variables to ours, None removes one); return its stdout,
    wall seconds and peak resident memory (MiB)."""
    child_env = dict(os.environ)
    for name, value in (env or {}).items():
        if value is None:
            child_env.pop(name, None)
        else:
            child_env[name] = value
    with tempfile.TemporaryFile(mode="w+") as stdout, tempfile.TemporaryFile(mode="w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, *args], stdout=stdout, stderr=stderr, env=child_env)
        # wait4 rather than wait: it gives this child's own resource usage.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    if process.returncode != 0:
        tail = "\n".join(errors.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(args[:3])}... exited {process.returncode}:\n{tail}")
    # Linux reports ru_maxrss in KiB.
    return output, wall, usage.ru_maxrss / 1024


def run_baseline(case: Case) -> Measured:
    epochs = case.baseline_epochs or case.epochs
    spec = {"dataset": case.dataset, "model": case.model, "samples": case.samples, "epochs": epochs,
            "batch_size": case.batch_size}
    output, _, _ = run_child(["-c", BASELINE, json.dumps(spec)])
    result = json.loads(output.strip().splitlines()[-1])
    if epochs == case.epochs:
        return Measured(result["seconds"], result["accuracy"])
    # A shortened baseline is scaled to the full run: its first epoch (which includes Keras's
    # tracing) once, then the mean of the later epochs for every remaining epoch.
    later = (result["seconds"] - result["first_epoch"]) / (epochs - 1)
    return Measured(result["first_epoch"] + later * (case.epochs - 1), result["accuracy"])


def run_beanstrain(case: Case, out: str) -> Measured:
    args = case.fit_args() + ["--out", out, "--quiet", "--json"]
    output, wall, peak = run_child(["-m", "beanstrain", *args])
    summary = json.loads(output)
    return Measured(summary["train_seconds"], summary["metrics"]["test"].get("accuracy"), wall, peak)


@dataclass
class EpochRun:
    """One LeNet-5 run timed per epoch: its first epoch (tracing included), the median of its
    later epochs, the seconds it reports for all of training, and that total less its epochs."""

    first_epoch: float
    later_epoch: float
    total: float
    beyond_epochs: float
    accuracy: float | None
    onednn: bool | None = None
    process_seconds: float | None = None
    peak_mib: float | None = None


FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
LENET = Case("fashion-lenet5", "fashion-mnist", "lenet5", 3, 1024, None, None,
             ["--loss", "categorical_crossentropy", "--validation-split", "0"])
# (label, TF_ENABLE_ONEDNN_OPTS) of the two baselines.
LENET_BASELINES = (("plain Keras fit, oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)", "0"),
                   ("plain Keras fit, oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)", "1"))


def epoch_run(epochs: list[float], total: float, accuracy, **extra) -> EpochRun:
    return EpochRun(epochs[0], statistics.median(epochs[1:]), total, total - sum(epochs), accuracy, **extra)


def run_lenet_baseline(onednn: str) -> EpochRun:
    spec = {"dataset": LENET.dataset, "model": LENET.model, "samples": None, "epochs": LENET.epochs,
            "batch_size": LENET.batch_size}
    output, _, _ = run_child(["-c", BASELINE, json.dumps(spec)], env={"TF_ENABLE_ONEDNN_OPTS": onednn})
    result = json.loads(output.strip().splitlines()[-1])
    return epoch_run(result["epochs"], result["seconds"], result["accuracy"], onednn=result["onednn"])


def run_lenet_beanstrain(out: str) -> EpochRun:
    with tempfile.TemporaryDirectory() as scratch:
        stamps_path = os.path.join(scratch, "epochs.json")
        # beanstrain's own choice of TensorFlow settings, whatever this shell has set.
        output, wall, peak = run_child(["-c", TIMED_BEANSTRAIN, stamps_path, *LENET.fit_args(), "--out", out,
                                        "--quiet", "--json"], env={"TF_ENABLE_ONEDNN_OPTS": None})
        with open(stamps_path) as stream:
            stamps = json.load(stream)
    begins = [when for kind, when in stamps if kind == "begin"]
    ends = [when for kind, when in stamps if kind == "end"]
    summary = json.loads(output)
    return epoch_run([end - begin for begin, end in zip(begins, ends)], summary["train_seconds"],
                     summary["metrics"]["test"].get("accuracy"), process_seconds=wall, peak_mib=peak)


def tensorflow_default_onednn() -> str:
    """Whether TensorFlow turns oneDNN on by itself on this CPU (TF_ENABLE_ONEDNN_OPTS unset)."""
    check = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
             "from tensorflow.python.util import _pywrap_util_port\n"
             "print(bool(_pywrap_util_port.IsMklEnabled()))")
    try:
        output, _, _ = run_child(["-c", check], env={"TF_ENABLE_ONEDNN_OPTS": None})
    except RuntimeError:
        return "unknown"
    return "on" if output.strip().endswith("True") else "off"


def lenet_comparison(repeat: int, out: str) -> list[str]:
    """The LeNet-5 table: both baselines and beanstrain, alternating `repeat` times; medians."""
    measured: dict[str, list[EpochRun]] = {label: [] for label, _ in LENET_BASELINES}
    measured["beanstrain fit (engine fit)"] = []
    for _ in range(repeat):
        for label, onednn in LENET_BASELINES:
            measured[label].append(run_lenet_baseline(onednn))
        measured["beanstrain fit (engine fit)"].append(run_lenet_beanstrain(out))
    medians = {label: _median_run(runs) for label, runs in measured.items()}
    ours = medians["beanstrain fit (engine fit)"]
    header = ("run", "epoch 1 s", "later epochs s", "whole fit s", "fit - its epochs s", "later epoch / beanstrain's",
              "test acc")
    table = [header]
    for label, run in medians.items():
        table.append((label, f"{run.first_epoch:.2f}", f"{run.later_epoch:.2f}", f"{run.total:.2f}",
                      f"{run.beyond_epochs:.2f}", f"{run.later_epoch / ours.later_epoch:.2f}x",
                      _accuracy(run.accuracy)))
    lines = [f"LeNet-5 on the 60,000 Fashion-MNIST training images: SGD 0.05, batch 1024, {LENET.epochs} epochs, "
             f"no validation split; medians of {repeat} alternating round(s)", ""]
    lines += _markdown(table)
    lines += ["",
              "TensorFlow's own oneDNN default on this CPU (TF_ENABLE_ONEDNN_OPTS unset): "
              f"{tensorflow_default_onednn()}",
              "epoch s: from Keras's on_epoch_begin to on_epoch_end; later epochs: the median of epochs 2 on. "
              "whole fit s: the time around the course's model.fit, and beanstrain's train_seconds. "
              "fit - its epochs: that total less the sum of its epochs (set-up before the first epoch and the "
              "wait after the last).",
              f"beanstrain fit, whole process: {ours.process_seconds:.2f} s, peak memory {ours.peak_mib:.0f} MiB"]
    return lines


def _median_field(items: list, name: str):
    """The median of one field over several measured runs, those that have it; None when none has."""
    present = [getattr(item, name) for item in items if getattr(item, name) is not None]
    return statistics.median(present) if present else None


def _median_run(runs: list[EpochRun]) -> EpochRun:
    def med(name):
        return _median_field(runs, name)

    return EpochRun(*(med(name) for name in ("first_epoch", "later_epoch", "total", "beyond_epochs", "accuracy")),
                    onednn=runs[0].onednn, process_seconds=med("process_seconds"), peak_mib=med("peak_mib"))


def _markdown(table: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    lines = []
    for index, row in enumerate(table):
        lines.append("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if index == 0:
            lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return lines


# `--lenet-settings`: (label, spec) of each setting tried for LeNet-5; the first is the baseline.
LENET_SETTINGS = (
    ("plain Keras fit on the arrays (baseline)", {"feed": "arrays"}),
    ("beanstrain's fit engine as it is", {"feed": "engine"}),
    ("fit engine, 1 inter-op thread", {"feed": "engine", "inter_op": 1}),
    ("fit engine, 1 intra-op thread", {"feed": "engine", "intra_op": 1}),
    ("fit engine, TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD=1",
     {"feed": "engine", "env": {"TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD": "1"}}),
    ("fit engine, TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1",
     {"feed": "engine", "env": {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"}}),
    ("fit engine, ONEDNN_MAX_CPU_ISA=AVX2", {"feed": "engine", "env": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}),
    ("fit engine, TF_SET_ONEDNN_FPMATH_MODE=BF16", {"feed": "engine", "env": {"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}}),
    ("whole arrays per epoch, one fit call each", {"feed": "arrays per epoch"}),
    ("plain Keras fit, channels first", {"feed": "arrays", "channels_first": True}),
    ("fit engine, mixed_bfloat16 policy (changes the numbers)", {"feed": "engine", "policy": "mixed_bfloat16"}),
)


def lenet_settings(repeat: int) -> list[str]:
    """Each setting in its own process (oneDNN on), alternating `repeat` times; medians of epochs 2 on."""
    walls: dict[str, list[float]] = {label: [] for label, _ in LENET_SETTINGS}
    cpus: dict[str, list[float]] = {label: [] for label, _ in LENET_SETTINGS}
    for _ in range(repeat):
        for label, spec in LENET_SETTINGS:
            output, _, _ = run_child(["-c", LENET_SETTING, json.dumps({**spec, "epochs": LENET.epochs})],
                                     env={"TF_ENABLE_ONEDNN_OPTS": "1"})
            result = json.loads(output.strip().splitlines()[-1])
            walls[label] += result["wall"][1:]
            cpus[label] += result["cpu"][1:]
    baseline = statistics.median(walls[LENET_SETTINGS[0][0]])
    table = [("setting", "s per epoch", "CPU s per epoch", "baseline / setting")]
    for label, _ in LENET_SETTINGS:
        wall = statistics.median(walls[label])
        table.append((label, f"{wall:.2f}", f"{statistics.median(cpus[label]):.2f}", f"{baseline / wall:.2f}x"))
    return [f"LeNet-5 settings, Fashion-MNIST, SGD 0.05, batch 1024, oneDNN on: medians of epochs 2-{LENET.epochs} "
            f"over {repeat} alternating round(s)", "", *_markdown(table)]


def help_seconds(repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        _, wall, _ = run_child(["-m", "beanstrain", "--help"])
        times.append(wall)
    return statistics.median(times)


def machine() -> str:
    from beanstrain.devices import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def median_of(values: list[Measured]) -> Measured:
    return Measured(*(_median_field(values, name) for name in ("seconds", "accuracy", "process_seconds", "peak_mib")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20 baseline epochs for toy sets and no Fashion-MNIST case")
    parser.add_argument("--baseline-epochs", type=int, default=100,
                        help="epochs the toy baselines really run, scaled per epoch to the full 5000 (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate baselines and beanstrain this many times")
    parser.add_argument("--no-mnist", action="store_true", help="skip the Fashion-MNIST LeNet-5 case")
    parser.add_argument("--no-toy", action="store_true", help="skip the toy cases (and the --help timing)")
    parser.add_argument("--lenet-settings", action="store_true",
                        help="only time LeNet-5 under each thread, oneDNN, feeding and layout setting tried")
    options = parser.parse_args(argv)
    if options.lenet_settings:
        if not os.path.isdir(FASHION_MNIST):
            print(f"no LeNet-5 settings to time: {FASHION_MNIST} is absent (Debian package dataset-fashion-mnist)")
            return 1
        print(f"machine: {machine()}")
        try:
            print("\n".join(lenet_settings(options.repeat)))
        except RuntimeError as error:
            print(f"LeNet-5 settings: not measured: {error}")
            return 1
        return 0
    baseline_epochs = 20 if options.quick else options.baseline_epochs

    cases = [] if options.no_toy else [
        Case("beans4-hidden2", "beans4", "hidden2", 5000, 10, 100, baseline_epochs, ["--loss", "mse"]),
        Case("spiral-deep8", "spiral", "deep8", 5000, 10, 100, baseline_epochs, ["--loss", "mse"]),
    ]
    with_lenet = False
    if options.quick or options.no_mnist:
        print("skipping lenet5 on Fashion-MNIST (--quick / --no-mnist)")
    elif not os.path.isdir(FASHION_MNIST):
        print(f"skipping lenet5 on Fashion-MNIST: {FASHION_MNIST} is absent (Debian package dataset-fashion-mnist)")
    else:
        with_lenet = True

    print(f"machine: {machine()}")
    rows, peaks, lenet_lines = [], [], []
    with tempfile.TemporaryDirectory() as out:
        for case in cases:
            baselines, ours = [], []
            try:
                for _ in range(options.repeat):
                    baselines.append(run_baseline(case))
                    ours.append(run_beanstrain(case, out))
            except RuntimeError as error:
                print(f"{case.name}: not measured: {error}")
                continue
            baseline, measured = median_of(baselines), median_of(ours)
            peaks.append((case.name, measured.peak_mib))
            scaled = case.baseline_epochs and case.baseline_epochs != case.epochs
            note = f"baseline ran {case.baseline_epochs} epochs, scaled to {case.epochs}" if scaled else "same epochs"
            rows.append((case.name, baseline, measured, note))
        if with_lenet:
            try:
                lenet_lines = lenet_comparison(options.repeat, out)
            except RuntimeError as error:
                lenet_lines = [f"fashion-lenet5: not measured: {error}"]
        help_wall = None if options.no_toy else help_seconds()

    if rows:
        header = ("case", "baseline s", "beanstrain s", "ratio", "whole process s", "baseline acc", "beanstrain acc",
                  "note")
        table = [header]
        for name, baseline, measured, note in rows:
            table.append((name, f"{baseline.seconds:.2f}", f"{measured.seconds:.2f}",
                          f"{baseline.seconds / measured.seconds:.1f}x", f"{measured.process_seconds:.2f}",
                          _accuracy(baseline.accuracy) + (" (shortened)" if "scaled" in note else ""),
                          _accuracy(measured.accuracy), note))
        print()
        print("\n".join(_markdown(table)))
        print()
        for name, peak in peaks:
            print(f"peak memory of `beanstrain fit` ({name}): {peak:.0f} MiB")
        print("baseline s / beanstrain s: training seconds each reports (beanstrain's train_seconds, "
              "the course's time around model.fit); ratio = baseline / beanstrain. A shortened baseline is "
              "scaled as its first epoch plus the mean of its later epochs for each remaining epoch.")
    if help_wall is not None:
        print(f"beanstrain --help: {help_wall:.3f} s (median of 5)")
    if lenet_lines:
        print()
        print("\n".join(lenet_lines))
    return 0


def _accuracy(value) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
