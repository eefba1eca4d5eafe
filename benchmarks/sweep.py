"""`beanstrain sweep` against the same trials as `beanstrain fit` commands run one after the other.

    python benchmarks/sweep.py               # both cases, once each
    python benchmarks/sweep.py --repeat 3    # three alternating rounds, medians shown
    python benchmarks/sweep.py --recipe spiral-deep8 --repeat 3   # one case only
    python benchmarks/sweep.py --address 10.0.0.1:6379   # also the sweep on a running Ray cluster

With --address, each round also times the same sweep on that cluster (started
beforehand with `ray start`, so its start-up is not counted; the environment
must hold the cluster's token, docs/sweeps-and-pages.md) and checks that it
gives the local sweep's test figures.

Each round times, as whole processes, a sweep (Ray's start-up included) and
the same trials as separate `beanstrain fit` commands one after another, as
a shell script would run them; the two alternate, so load from other
programs hits both alike.  The cases:

- beans4-hidden2 at the course's settings (5000 epochs), seeds 0..3: short
  trials, where starting Ray and importing TensorFlow weigh most;
- spiral-deep8 at the course's settings, seeds 0..1, two at a time on two
  cores: longer trials, where running two at once pays.

Times are only ever printed, never asserted.
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
from pathlib import Path

CASES = [
    {"recipe": "beans4-hidden2", "seeds": [0, 1, 2, 3], "parallel": None},
    {"recipe": "spiral-deep8", "seeds": [0, 1], "parallel": 2},
]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def sweep_seconds(case: dict, out: Path, address: str | None = None) -> tuple[float, list[float]]:
    first, last = case["seeds"][0], case["seeds"][-1]
    command = ["beanstrain", "sweep", case["recipe"], "--set", f"seed={first}..{last}", "--out", str(out.absolute()),
               "--quiet"]
    command += ["--parallel", str(case["parallel"])] if case["parallel"] else []
    command += ["--address", address] if address else []
    seconds = timed(command)
    (sweep_dir,) = (out / "sweeps").iterdir()
    record = json.loads((sweep_dir / "sweep.json").read_text())
    return seconds, [trial["test"]["accuracy"] for trial in record["trials"]]


def sequential_seconds(case: dict, out: Path) -> float:
    return sum(timed(["beanstrain", "fit", case["recipe"], "--seed", str(seed), "--out", str(out), "--quiet"])
               for seed in case["seeds"])


def load() -> str:
    try:
        return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="alternate the sweep and the fits this many times")
    parser.add_argument("--recipe", choices=[case["recipe"] for case in CASES], help="run only this case")
    parser.add_argument("--address", help="also time the sweep on the running Ray cluster at this HOST:PORT")
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {load()} at the start")
    rows = []
    for case in [case for case in CASES if args.recipe in (None, case["recipe"])]:
        sweeps, fits, clusters, accuracies, figures = [], [], [], [], []
        for round_number in range(args.repeat):
            with tempfile.TemporaryDirectory() as folder:
                order = ["sweep", "fits"] + ["cluster"] * bool(args.address)
                for what in order if round_number % 2 == 0 else order[::-1]:
                    if what == "sweep":
                        seconds, accuracies = sweep_seconds(case, Path(folder) / "sweep")
                        sweeps.append(seconds)
                    elif what == "cluster":
                        seconds, on_cluster = sweep_seconds(case, Path(folder) / "cluster", args.address)
                        clusters.append(seconds)
                        figures.append(on_cluster)
                    else:
                        fits.append(sequential_seconds(case, Path(folder) / "fits"))
        sweep, sequential = statistics.median(sweeps), statistics.median(fits)
        how = f"{case['parallel']} at a time" if case["parallel"] else "one per core"
        rows.append((f"{case['recipe']}, seeds {case['seeds'][0]}..{case['seeds'][-1]} ({how})",
                     f"{sequential:.1f}", f"{sweep:.1f}", f"{sweep / sequential:.2f}",
                     " ".join(f"{value:.2f}" for value in accuracies)))
        rounded_fits, rounded_sweeps = [round(value, 1) for value in fits], [round(value, 1) for value in sweeps]
        print(f"{case['recipe']}: fits {rounded_fits} s, sweeps {rounded_sweeps} s")
        if clusters:
            same = all(on_cluster == accuracies for on_cluster in figures)
            print(f"{case['recipe']}: sweeps on the cluster at {args.address} {[round(v, 1) for v in clusters]} s "
                  f"(median {statistics.median(clusters):.1f} s against {sweep:.1f} s here); "
                  f"test figures {'the same as' if same else 'DIFFERENT from'} the local sweep's")
    header = ("trials", "fits one after another s", "sweep s", "sweep / fits", "test accuracy per trial")
    widths = [max(len(row[index]) for row in [header, *rows]) for index in range(len(header))]
    for row in [header, tuple("-" * width for width in widths), *rows]:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
    print(f"medians of {args.repeat} alternating round(s); {load()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
