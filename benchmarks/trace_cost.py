"""What watching a run learn costs: recording the trace, and the whole `fit` with every picture and the animation.

    python benchmarks/trace_cost.py                         # 3 alternating rounds of each
    python benchmarks/trace_cost.py --repeat 5 --source /path/to/other/checkout

Training: beans4-hidden2 and spiral-deep8 at the course's settings (5000
epochs, batch 10, SGD 0.05, the compiled loop), trained in this process with
and without snapshot epochs (the trace's schedule against none), alternating;
the figure is `trainer.run`'s seconds, compiling included.

Whole process: `beanstrain fit --dataset beans4 --model hidden2` (and
spiral-deep8) each in its own process, with the default animation (GIF),
with `--animation none`, and, with `--source DIR`, the same command run from
another checkout's package (`PYTHONPATH=DIR`), alternating; wall seconds and
peak memory (the child's maximum resident set).  The GIF's size is printed
for each recipe.  Times are only ever printed, never asserted: on a shared
machine read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = ("beans4-hidden2", "spiral-deep8")


def train_seconds(recipe_name: str, traced: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one run of the recipe's trainer in this process, with or without the trace's
    snapshot epochs (CPU seconds move less with other programs' load)."""
    from beanstrain.engines.build import make_trainer
    from beanstrain.objectives import make_accuracy_metric, make_loss, make_optimizer
    from beanstrain.preparation import prepare
    from beanstrain.recipes import resolve_recipe
    from beanstrain.trace import Trace, snapshot_epochs, weight_names

    recipe = resolve_recipe(recipe_name, {"engine": "compiled"})
    session = prepare(recipe, "cpu", None, open(os.devnull, "w"))  # noqa: SIM115 (a sink for the run's lifetime)
    with session.placement():
        trainer = make_trainer(session.engine, session.model, make_loss(session.loss_name),
                               make_optimizer(recipe.optimizer, recipe.learning_rate), session.data,
                               session.batch_size, recipe.seed, session.accuracy,
                               make_accuracy_metric(session.dataset.task, session.loss_name),
                               snapshot_epochs=snapshot_epochs(recipe.epochs) if traced else ())
        trace = Trace(weight_names(session.model))
        started, cpu = time.perf_counter(), time.process_time()
        trainer.run(0, recipe.epochs, on_chunk=lambda epoch, history: trace.take(trainer.snapshots))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(trace.epochs) == (len(snapshot_epochs(recipe.epochs)) if traced else 0)
    return seconds, cpu


def whole_process(recipe: str, out: str, animation: str | None, source: str | None) -> tuple[float, float, Path]:
    """Wall seconds and peak MiB of one `beanstrain fit RECIPE` process, and its run folder."""
    command = [sys.executable, "-c", "from beanstrain.cli import main; main()", "fit", recipe, "--out", out,
               "--quiet"] + (["--animation", animation] if animation else [])
    env = dict(os.environ, **({"PYTHONPATH": source} if source else {}))
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-500:]}")
    newest = max((Path(out) / recipe).iterdir(), key=lambda path: path.stat().st_mtime)
    return seconds, usage.ru_maxrss / 1024, newest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds of each measurement")
    parser.add_argument("--source", help="another checkout to time the same command with (e.g. the main branch)")
    parser.add_argument("--no-training", action="store_true", help="skip the in-process training measurement")
    args = parser.parse_args(argv)
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not args.no_training:
        print("\ntraining seconds (trainer.run, compiling included), medians of", args.repeat)
        print("| recipe | without trace: wall, CPU s | with trace: wall, CPU s | cost: wall, CPU |")
        print("|---|---|---|---|")
        for recipe in RECIPES:
            times = {False: [], True: []}
            for _ in range(args.repeat):
                for traced in (False, True):
                    times[traced].append(train_seconds(recipe, traced))
            (plain, plain_cpu), (traced, traced_cpu) = (
                [statistics.median(values[column] for values in times[key]) for column in (0, 1)]
                for key in (False, True))
            print(f"| {recipe} | {plain:.2f}, {plain_cpu:.2f} | {traced:.2f}, {traced_cpu:.2f} | "
                  f"{100 * (traced / plain - 1):+.1f}%, {100 * (traced_cpu / plain_cpu - 1):+.1f}% |")
    variants = [("gif", None, None), ("none", "none", None)] + ([("other checkout", None, args.source)]
                                                                 if args.source else [])
    with tempfile.TemporaryDirectory() as out:
        for recipe in RECIPES:
            measured = {name: [] for name, *_ in variants}
            sizes = []
            for _ in range(args.repeat):
                for name, animation, source in variants:
                    seconds, peak, run_dir = whole_process(recipe, out, animation, source)
                    measured[name].append((seconds, peak))
                    if name == "gif":
                        sizes.append((run_dir / "training.gif").stat().st_size)
            print(f"\n`beanstrain fit {recipe}`, whole process, medians of {args.repeat} "
                  f"(load average now {os.getloadavg()[0]:.1f}); training.gif {statistics.median(sizes) / 1e6:.2f} MB")
            print("| code, animation | seconds | peak MiB |\n|---|---|---|")
            for name, values in measured.items():
                print(f"| {name} | {statistics.median(v[0] for v in values):.2f} | "
                      f"{statistics.median(v[1] for v in values):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
