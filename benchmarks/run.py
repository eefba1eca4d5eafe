"""Plain Keras, written the course's way, against `beanstrain fit`, in one run on this machine.

    python benchmarks/run.py              # every case, baselines of toy sets scaled from 100 epochs
    python benchmarks/run.py --quick      # fewer baseline epochs, no Fashion-MNIST
    python benchmarks/run.py --baseline-epochs 5000   # the toy baselines in full (minutes)

Each case trains the same data with the same settings twice, each in its own
process: once as the course's script does (`model.fit(X, Y, epochs=..., batch_size=...)`)
and once through the real command line (`beanstrain fit ... --json`).  The
figures compared are the training seconds each reports; the whole `beanstrain`
process (start, train, pictures) is timed too.  With `--repeat N` the two
alternate N times and the medians are shown, so load from other programs
hits both alike.  Times are only ever printed, never asserted.
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
    def on_epoch_end(self, epoch, logs=None):
        epoch_ends.append(time.time())


epoch_ends = []
start = time.time()
model.fit(x_train, y_train, epochs=case["epochs"], batch_size=case["batch_size"], verbose=0,
          callbacks=[EpochTimes()])
cost = time.time() - start
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
print(json.dumps({"seconds": cost, "first_epoch": epoch_ends[0] - start, "accuracy": test_accuracy}))
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


def run_child(args: list[str]) -> tuple[str, float, float]:
    """Run a Python child; return its stdout, wall seconds and peak resident memory (MiB)."""
    with tempfile.TemporaryFile(mode="w+") as stdout, tempfile.TemporaryFile(mode="w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, *args], stdout=stdout, stderr=stderr)
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
    def med(name):
        present = [getattr(value, name) for value in values if getattr(value, name) is not None]
        return statistics.median(present) if present else None

    return Measured(med("seconds"), med("accuracy"), med("process_seconds"), med("peak_mib"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20 baseline epochs for toy sets and no Fashion-MNIST case")
    parser.add_argument("--baseline-epochs", type=int, default=100,
                        help="epochs the toy baselines really run, scaled per epoch to the full 5000 (default 100)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate baseline and beanstrain this many times")
    parser.add_argument("--no-mnist", action="store_true", help="skip the Fashion-MNIST LeNet-5 case")
    options = parser.parse_args(argv)
    baseline_epochs = 20 if options.quick else options.baseline_epochs

    cases = [
        Case("beans4-hidden2", "beans4", "hidden2", 5000, 10, 100, baseline_epochs, ["--loss", "mse"]),
        Case("spiral-deep8", "spiral", "deep8", 5000, 10, 100, baseline_epochs, ["--loss", "mse"]),
    ]
    if options.quick or options.no_mnist:
        print("skipping lenet5 on Fashion-MNIST (--quick / --no-mnist)")
    elif not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        print("skipping lenet5 on Fashion-MNIST: /usr/share/datasets/fashion-mnist is absent "
              "(Debian package dataset-fashion-mnist)")
    else:
        cases.append(Case("fashion-lenet5, 1 epoch", "fashion-mnist", "lenet5", 1, 1024, None, None,
                          ["--loss", "categorical_crossentropy", "--validation-split", "0"]))

    print(f"machine: {machine()}")
    rows, peaks = [], []
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
        help_wall = help_seconds()

    header = ("case", "baseline s", "beanstrain s", "ratio", "whole process s", "baseline acc", "beanstrain acc",
              "note")
    table = [header]
    for name, baseline, measured, note in rows:
        table.append((name, f"{baseline.seconds:.2f}", f"{measured.seconds:.2f}",
                      f"{baseline.seconds / measured.seconds:.1f}x", f"{measured.process_seconds:.2f}",
                      _accuracy(baseline.accuracy) + (" (shortened)" if "scaled" in note else ""),
                      _accuracy(measured.accuracy), note))
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    print()
    for index, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    print()
    print(f"beanstrain --help: {help_wall:.3f} s (median of 5)")
    for name, peak in peaks:
        print(f"peak memory of `beanstrain fit` ({name}): {peak:.0f} MiB")
    print("baseline s / beanstrain s: training seconds each reports (beanstrain's train_seconds, "
          "the course's time around model.fit); ratio = baseline / beanstrain. A shortened baseline is "
          "scaled as its first epoch plus the mean of its later epochs for each remaining epoch.")
    return 0


def _accuracy(value) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
