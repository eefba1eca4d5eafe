"""What writing TensorBoard files costs: beans4-hidden2's whole run with `--tensorboard` against `--no-tensorboard`.

    python benchmarks/tensorboard_cost.py               # 3 alternating rounds of each, the course's 5000 epochs
    python benchmarks/tensorboard_cost.py --repeat 5 --engine numpy

Each run is the real command line in its own process (`beanstrain fit beans4-hidden2 --json`), the two
settings alternating so load from other programs hits both alike; the training seconds each run reports
(the loop and its listeners, where the event files are written) and the whole process are timed.  The
baseline is the same run with the files switched off, so the ratio is the cost of the files alone.
Times are only printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def one_run(out: str, engine: str, tensorboard: bool) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "beanstrain", "fit", "beans4-hidden2", "--engine", engine,
                           "--out", out, "--quiet", "--json", "--animation", "none",
                           "--tensorboard" if tensorboard else "--no-tensorboard"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["train_seconds"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", default="compiled", help="compiled (the default engine here), fit or numpy")
    arguments = parser.parse_args()
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(arguments.repeat):
            for tensorboard in (False, True):
                times[tensorboard].append(one_run(out, arguments.engine, tensorboard))
    print(f"beans4-hidden2, 5000 epochs, {arguments.engine} engine, {arguments.repeat} rounds, {cpu_name()}")
    for tensorboard in (False, True):
        train = statistics.median(value for value, _ in times[tensorboard])
        whole = statistics.median(value for _, value in times[tensorboard])
        print(f"  {'with' if tensorboard else 'without'} TensorBoard files: training {train:.2f} s, "
              f"whole process {whole:.2f} s")
    ratio_train = statistics.median(value for value, _ in times[True]) / statistics.median(
        value for value, _ in times[False])
    ratio_whole = statistics.median(value for _, value in times[True]) / statistics.median(
        value for _, value in times[False])
    print(f"  ratio with/without: training {ratio_train:.3f}, whole process {ratio_whole:.3f}")


if __name__ == "__main__":
    main()
