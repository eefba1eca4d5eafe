"""A batch of the whole training set in the compiled loop: fed as it is, against gathered in each epoch's order.

    python benchmarks/full_batch.py                 # mnist-tape's network on Fashion-MNIST, 3 rounds
    python benchmarks/full_batch.py --steps 20 --repeat 5

`mnist-tape` trains on all 60,000 images in every step.  The compiled loop
feeds such a batch as it is (`CompiledTrainer.feeds_whole_set`); before, it
gathered the set in the epoch's permuted order, a 188 MB copy per step.
Each variant runs in its own process, alternating, so load from other
programs hits both alike: the seconds per step after compiling; the
process's resident memory after the first step (XLA keeps the buffers of
its program, the gathered copy among them, between calls); and how far the
peak rises above that in the steps after it (the peak is reset through
/proc/self/clear_refs).  Times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CASE = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from beanstrain.recipes import resolve_recipe
from beanstrain.preparation import prepare
from beanstrain.engines.compiled import CompiledTrainer

variant, steps = sys.argv[1], int(sys.argv[2])
if variant == "gathered":  # the loop as it was: every step gathers the set in the epoch's order
    CompiledTrainer.feeds_whole_set = lambda self: False
session = prepare(resolve_recipe("mnist-tape", {"dataset": "fashion-mnist"}), "cpu", None, sys.stderr)
trainer = session.make_trainer()

def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

def resident_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

started = time.perf_counter()
trainer.run(0, 1)  # compiles, then one step
first = time.perf_counter() - started
with open("/proc/self/clear_refs", "w") as stream:
    stream.write("5")  # the peak so far (reading and converting the data) says nothing about training
before = resident_kib()
started = time.perf_counter()
history = trainer.run(1, 1 + steps)
seconds = time.perf_counter() - started
print(json.dumps({"variant": variant, "first_s": first, "step_s": seconds / steps,
                  "peak_rise_mib": (peak_kib() - before) / 1024, "resident_mib": before / 1024,
                  "loss": history.rows[-1][0]}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="full-batch steps timed after the first")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds of both variants")
    options = parser.parse_args()
    results = {"fed as it is": [], "gathered": []}
    for _ in range(options.repeat):
        for variant, key in (("gathered", "gathered"), ("whole", "fed as it is")):
            output = subprocess.run([sys.executable, "-c", CASE, variant, str(options.steps)], check=True,
                                    capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            results[key].append(result)
            print(json.dumps(result), flush=True)
    print(f"\nmedians of {options.repeat} rounds, {options.steps} steps of 60,000 images each")
    print(f"{'variant':<14} {'s per step':>10} {'first step s':>12} {'resident MiB':>12} {'peak rise MiB':>13} "
          f"{'loss':>8}")
    for key, rounds in results.items():
        print(f"{key:<14} {statistics.median(r['step_s'] for r in rounds):>10.3f} "
              f"{statistics.median(r['first_s'] for r in rounds):>12.2f} "
              f"{statistics.median(r['resident_mib'] for r in rounds):>12.0f} "
              f"{statistics.median(r['peak_rise_mib'] for r in rounds):>13.0f} "
              f"{statistics.median(r['loss'] for r in rounds):>8.4f}")
    ratio = (statistics.median(r["step_s"] for r in results["gathered"])
             / statistics.median(r["step_s"] for r in results["fed as it is"]))
    print(f"gathered / fed as it is, seconds per step: {ratio:.2f}x")


if __name__ == "__main__":
    main()
