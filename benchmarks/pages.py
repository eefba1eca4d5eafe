"""How long `beanstrain runs` and `beanstrain report` take over many run folders, and how large the pages are.

    python benchmarks/pages.py                 # 200 run folders, 5 alternating rounds
    python benchmarks/pages.py --runs 1000 --repeat 3

Trains one beans4-hidden2 run (300 epochs), copies it into `--runs` run
folders spread over five recipes and every state (each copy's config.json
and metrics.json changed a little), then times, each in its own process and
alternating so that load from other programs hits all alike: `beanstrain
--help` (the baseline: starting Python and the command line), `beanstrain
runs`, `beanstrain runs --json`, `beanstrain report --out` (the index only,
every run already has its page) and `beanstrain report --out` after deleting
every page (the index writes them all).  Medians are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = ("beans4-hidden2", "beans7-neuron", "spiral-deep8", "circle-deep8", "gender-softmax2")
STATES = ("finished",) * 6 + ("interrupted", "failed", "diverged", "running")


def beanstrain(*args: str) -> float:
    """Seconds one `beanstrain ARGS` process takes, start to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "beanstrain", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_runs(out: Path, count: int) -> Path:
    """One real run, then `count` copies of it under `out`; returns the real run's folder."""
    subprocess.run([sys.executable, "-m", "beanstrain", "fit", "beans4-hidden2", "--epochs", "300", "--quiet",
                    "--out", str(out / "template")], check=True, stdout=subprocess.DEVNULL)
    (template,) = (out / "template" / "beans4-hidden2").iterdir()
    runs = out / "runs"
    for number in range(count):
        recipe, state = RECIPES[number % len(RECIPES)], STATES[number % len(STATES)]
        run_dir = runs / recipe / f"20261124-{number // 60:02d}{number % 60:02d}00-1"
        shutil.copytree(template, run_dir)
        config = json.loads((run_dir / "config.json").read_text())
        config["recipe"]["name"], config["state"] = recipe, state
        config["started"] = f"2026-11-24T{number // 60:02d}:{number % 60:02d}:00"
        (run_dir / "config.json").write_text(json.dumps(config, indent=2))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        metrics["test"]["accuracy"] = round(0.5 + (number % 50) / 100, 2)
        if state == "finished":
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        else:
            (run_dir / "metrics.json").unlink()
    return template


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="run folders to list (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="alternating rounds (default 5)")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="beanstrain-pages-") as folder:
        template = make_runs(Path(folder), options.runs)
        runs = Path(folder) / "runs"
        cases = {
            "beanstrain --help (baseline)": lambda: beanstrain("--help"),
            f"beanstrain runs ({options.runs} runs)": lambda: beanstrain("runs", "--out", str(runs)),
            "beanstrain runs --json": lambda: beanstrain("runs", "--out", str(runs), "--json"),
            "beanstrain report --out (index only)": lambda: beanstrain("report", "--out", str(runs)),
            "beanstrain report --out (index and every page)": lambda: (
                [page.unlink() for page in runs.glob("*/*/report.html")], beanstrain("report", "--out", str(runs)))[1],
        }
        seconds: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(options.repeat):
            for name, case in cases.items():
                seconds[name].append(case())
        baseline = statistics.median(seconds["beanstrain --help (baseline)"])
        print(f"{'command':<48}{'median s':>10}{'/ --help':>10}   all (s)")
        for name, values in seconds.items():
            middle = statistics.median(values)
            print(f"{name:<48}{middle:>10.3f}{middle / baseline:>9.2f}x   {' '.join(f'{v:.2f}' for v in values)}")
        pages = sorted(page.stat().st_size for page in runs.glob("*/*/report.html"))
        print(f"report.html of the beans4-hidden2 run: {(template / 'report.html').stat().st_size:,} bytes "
              f"(its pictures: {sum(path.stat().st_size for path in template.glob('*.png')):,} bytes)")
        print(f"report.html over {len(pages)} runs: {pages[0]:,} to {pages[-1]:,} bytes")
        print(f"index.html for {options.runs} runs: {(runs / 'index.html').stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
