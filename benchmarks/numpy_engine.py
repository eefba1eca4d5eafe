"""The hand-written engine's pace, and the course's lessons at their own settings.

    python benchmarks/numpy_engine.py                # beans4-hidden2, 5000 epochs of batch 10: numpy against compiled
    python benchmarks/numpy_engine.py --repeat 3     # three alternating rounds, medians
    python benchmarks/numpy_engine.py --lessons      # every lesson recipe: weights, loss or accuracy, seconds

Every run is the real command line (`beanstrain fit ... --json --quiet`) in
its own process.  The speed case is the course's beans4 + hidden2 run, 5000
epochs of 10 batches (50,000 steps), under `--engine numpy` and, as the
baseline measured in the same run, `--engine compiled`; the figure to read
is the training seconds each reports (`train_seconds`) and their ratio.
Times are only printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SPEED_RECIPE = "beans4-hidden2"
# The numpy engine should train the speed case in at most this many seconds.
TARGET_SECONDS = 3.0


def fit(args: list[str], out: str) -> tuple[dict, float]:
    """One `beanstrain fit` in its own process: its JSON summary and the whole process's seconds."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "beanstrain", "fit", *args, "--out", out, "--quiet", "--json"],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"beanstrain fit {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout), seconds


def speed(repeat: int, out: str) -> list[str]:
    seconds = {"numpy": [], "compiled": []}
    for _ in range(repeat):
        for engine in seconds:
            summary, _ = fit([SPEED_RECIPE, "--engine", engine], out)
            seconds[engine].append((summary["train_seconds"], summary["metrics"]["test"]["accuracy"]))
    lines = [f"{SPEED_RECIPE} at the course's settings (5000 epochs x 10 batches = 50,000 steps), "
             f"medians of {repeat} alternating round(s):", ""]
    numpy_seconds = statistics.median(value for value, _ in seconds["numpy"])
    for engine, runs in seconds.items():
        median = statistics.median(value for value, _ in runs)
        accuracy = statistics.median(value for _, value in runs)
        lines.append(f"  --engine {engine:<9} train_seconds {median:6.2f}  ({median / numpy_seconds:.2f}x numpy's)"
                     f"  test accuracy {accuracy:.2f}  runs: {', '.join(f'{value:.2f}' for value, _ in runs)}")
    verdict = "within" if numpy_seconds <= TARGET_SECONDS else "over"
    lines.append(f"  numpy: {numpy_seconds:.2f} s, {verdict} the {TARGET_SECONDS:.0f} s target")
    return lines


def lessons(out: str) -> list[str]:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from beanstrain.engines import ENGINES
    from beanstrain.recipes import list_recipes

    hand = {name for name, engine in ENGINES.items() if engine.optimizers == "rules"}
    lines = ["| recipe | final weights | train | test | train seconds | whole command s |", "|---|---|---|---|---|---|"]
    for name, recipe in list_recipes().items():
        if recipe.engine not in hand:
            continue
        summary, seconds = fit([name], out)
        weights = "  ".join(f"{key}={json.dumps(value)}" for key, value in summary.get("weights", {}).items())
        figures = {split: ", ".join(f"{key} {value:.4f}" for key, value in summary["metrics"][split].items())
                   for split in ("train", "test")}
        lines.append(f"| `{name}` | {weights} | {figures['train']} | {figures['test']} | "
                     f"{summary['train_seconds']:.2f} | {seconds:.1f} |")
        print(lines[-1], file=sys.stderr, flush=True)  # the slow lessons take a minute: show each as it ends
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="alternate the two engines this many times")
    parser.add_argument("--lessons", action="store_true", help="train every lesson recipe at its settings")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as out:
        lines = lessons(out) if args.lessons else speed(args.repeat, out)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} at the end")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
