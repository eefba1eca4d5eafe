"""Each Keras backend on this CPU: beanstrain against plain Keras on the same backend, in one run.

    python benchmarks/backends.py --data fashion.npz                       # every backend installed
    python benchmarks/backends.py --data fashion.npz --before ../old-checkout --repeat 3

Per backend, each case in its own process, alternating when `--repeat` is more than one (the medians
are shown, so the machine's other load hits all cases alike):

- beans4-hidden2 at the course's settings for `--epochs` epochs (1000 unless given): plain Keras written
  the course's way (`model.fit(X, Y, epochs=..., batch_size=10)`) against `beanstrain fit`; the
  training seconds each reports and the whole `beanstrain` process (start, train, pictures, page).
- LeNet-5 at the course's settings (SGD 0.05, batch 1024) on Fashion-MNIST's 60,000 images: seconds
  per epoch after the first (which compiles), plain Keras `fit` against `beanstrain fit`; with
  `--precision`, beanstrain under `mixed_bfloat16` too, with the test accuracy each reached.

With `--before PATH` (a checkout of an earlier beanstrain), the TensorFlow cases are timed there too,
so a change is measured against the code before it in the same run.  Times are printed, never judged.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")

# The course's beans4 script, plain Keras: the 2-2-1 sigmoid net, SGD 0.05, batch 10, its own shuffle.
PLAIN_BEANS = r"""
import json, sys, time
import numpy as np
import keras
from beanstrain.data import load_dataset
data = load_dataset("beans4", samples=100, noise=0.0, seed=0)
model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(units=2, activation="sigmoid"),
                          keras.layers.Dense(units=1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mean_squared_error", metrics=["accuracy"])
started = time.perf_counter()
model.fit(data.x_train, data.y_train, epochs=int(sys.argv[1]), batch_size=10, verbose=0)
print(json.dumps({"train_seconds": time.perf_counter() - started}))
"""

# The course's LeNet-5, plain Keras, timed per epoch.
PLAIN_LENET = Path(__file__).with_name("plain_keras.py")


def run(command: list[str], environment: dict) -> tuple[dict, float]:
    """One process: its last line of JSON and its wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **environment})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout[done.stdout.index("{"):]), wall


def beanstrain(source: Path, backend: str, words: list[str]) -> tuple[dict, float]:
    """`beanstrain fit WORDS --json` from the checkout at `source`, on `backend` (a checkout from before
    backends existed is only ever asked for tensorflow, and gets no --backend flag)."""
    flag = [] if backend == "tensorflow" else ["--backend", backend]
    with tempfile.TemporaryDirectory() as out:
        return run([sys.executable, "-m", "beanstrain", "fit", *words, *flag, "--out", out, "--json", "--quiet"],
                   {"PYTHONPATH": str(source), "KERAS_BACKEND": backend})


def cases(backend: str, source: Path, label: str, arguments) -> dict:
    """Every measurement of one backend (and one checkout): seconds by case."""
    epochs = str(arguments.epochs)
    env = {"KERAS_BACKEND": backend, "PYTHONPATH": str(source)}
    results = {}
    if label == "now":
        results["plain beans4 train s"] = run([sys.executable, "-c", PLAIN_BEANS, epochs], env)[0]["train_seconds"]
    summary, wall = beanstrain(source, backend, ["beans4-hidden2", "--epochs", epochs])
    results["beanstrain beans4 train s"], results["beanstrain beans4 process s"] = summary["train_seconds"], wall
    if arguments.data and backend in arguments.lenet_backends.split(","):
        lenet = ["mnist-lenet", "--dataset", "fashion-mnist", "--validation-split", "0", "--data",
                 str(arguments.data), "--animation", "none"]
        if label == "now":
            results["plain lenet s/epoch"] = run([sys.executable, str(PLAIN_LENET), str(arguments.data),
                                                  str(arguments.lenet_epochs)], env)[0]["later_epoch_seconds"]
        precisions = ["float32", "mixed_bfloat16"] if label == "now" and arguments.precision else ["float32"]
        for precision in precisions:
            flags = [] if precision == "float32" else ["--precision", precision]
            suffix = "" if precision == "float32" else f" {precision}"
            one = beanstrain(source, backend, [*lenet, *flags, "--epochs", "1"])[0]["train_seconds"]
            more = beanstrain(source, backend, [*lenet, *flags, "--epochs", str(arguments.lenet_epochs)])[0]
            results[f"beanstrain lenet s/epoch{suffix}"] = (more["train_seconds"] - one) / (arguments.lenet_epochs - 1)
            results[f"lenet test accuracy{suffix}"] = more["metrics"]["test"]["accuracy"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="Fashion-MNIST as one .npz (no LeNet-5 cases without it)")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier beanstrain, timed on tensorflow")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--epochs", type=int, default=1000, help="beans4-hidden2 epochs (the course's are 5000)")
    parser.add_argument("--lenet-epochs", type=int, default=3)
    parser.add_argument("--lenet-backends", default=",".join(BACKENDS), help="the backends LeNet-5 is timed on")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--precision", action="store_true", help="LeNet-5 under mixed_bfloat16 too")
    arguments = parser.parse_args()
    if arguments.data:
        arguments.data = arguments.data.resolve()
    backends = [name for name in arguments.backends.split(",") if importlib.util.find_spec(name)]
    rounds: dict[tuple[str, str], list[dict]] = {}
    for _ in range(arguments.repeat):
        for backend in backends:
            checkouts = [("now", ROOT)] + ([("before", arguments.before.resolve())]
                                           if arguments.before and backend == "tensorflow" else [])
            for label, source in checkouts:
                rounds.setdefault((backend, label), []).append(cases(backend, source, label, arguments))
                print(backend, label, json.dumps(rounds[(backend, label)][-1]), flush=True)  # as it comes
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"{cpu}, {os.cpu_count()} cores; medians of {arguments.repeat} round(s); beans4-hidden2 "
          f"{arguments.epochs} epochs, LeNet-5 {arguments.lenet_epochs} epochs\n")
    columns = sorted({name for results in rounds.values() for result in results for name in result})
    print("| backend | code | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for (backend, label), results in rounds.items():
        cells = [f"{statistics.median(result[name] for result in results):.3f}"
                 if all(name in result for result in results) else "" for name in columns]
        print(f"| {backend} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
