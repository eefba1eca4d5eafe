"""beanstrain on a GPU: what the machine sees, the course's recipes on JAX and PyTorch, LeNet-5's speed.

    python3 benchmarks/gpu.py --data fashion.npz --out results            # on a machine with a CUDA GPU
    python benchmarks/gpu.py --data fashion.npz --out /tmp/g --device cpu --quick   # the same steps on a CPU

One script, end to end, each step in its own process as a student would run it:

1. The machine: `nvidia-smi -L`, and the devices JAX and PyTorch see.
2. `beanstrain fit` of beans4-hidden2, spiral-deep8 and fashion-lenet with `--device DEVICE` on each
   backend given (JAX and PyTorch by default: the GPU machines at hand have no TensorFlow); the line
   each run prints first names the device, and each run's test accuracy is kept.
3. The course's LeNet-5 (SGD 0.05, batch 1024, 60,000 images) through `beanstrain fit` against plain
   Keras `fit` of the same network and data on the same backend, one after the other in this run:
   the seconds of each, and the seconds per epoch after the first (which compiles).
4. One GPU-trained run folder packed as `run-<backend>.tar.gz`, to be evaluated on another machine
   (`beanstrain eval RUN --backend tensorflow`).

Everything lands in --out: `gpu.json` (every measurement), `gpu.md` (the same as tables) and the
run folders.  Times are printed and written, never judged.  `--data` is an .npz of Fashion-MNIST
(`x_train, y_train, x_test, y_test`, uint8), as `beanstrain data` reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The toy recipes at the course's settings, and Fashion-MNIST's LeNet-5 recipe.
RECIPES = ("beans4-hidden2", "spiral-deep8", "fashion-lenet")
# The course's LeNet-5: SGD 0.05, batch 1024, 50 epochs, every training image.
COURSE_LENET = ["mnist-lenet", "--dataset", "fashion-mnist", "--validation-split", "0"]

# Plain Keras, the course's way: the same LeNet-5 and settings, `model.fit` with its own shuffle.
PLAIN_KERAS = Path(__file__).with_name("plain_keras.py")


def run(command: list[str], environment: dict | None = None, timeout: float = 300) -> tuple[int, str, str, float]:
    """A command's exit code, stdout, stderr and wall seconds; one that outlasts `timeout` is stopped (exit -1),
    so one slow step cannot cost the whole machine's time."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **(environment or {})})
    except subprocess.TimeoutExpired as expired:
        return -1, "", f"stopped after {timeout:.0f} s: {expired}", time.perf_counter() - started
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - started


def machine() -> dict:
    """What the machine has: its GPUs by nvidia-smi, and the devices each backend sees."""
    seen = {"python": platform.python_version(), "processor": platform.processor() or platform.machine()}
    if shutil.which("nvidia-smi"):
        seen["nvidia-smi"] = run(["nvidia-smi", "-L"])[1].strip()
    probes = {
        "jax": "import jax; print([f'{d.platform}:{d.device_kind}' for d in jax.devices()])",
        "torch": "import torch; print(torch.__version__, torch.cuda.is_available(), "
                 "[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])",
    }
    for name, code in probes.items():
        code_, out, err, _ = run([sys.executable, "-c", code])
        seen[name] = out.strip() if code_ == 0 else f"not usable: {err.strip().splitlines()[-1:]}"
    return seen


def fit(words: list[str], backend: str, device: str, runs: Path, data: Path, epochs: int | None) -> dict:
    """`beanstrain fit WORDS` on one backend and device: its summary, the line naming the device, its seconds."""
    command = [sys.executable, "-m", "beanstrain", "fit", *words, "--backend", backend, "--device", device,
               "--out", str(runs), "--json"]
    if "lenet" in words[0]:
        command += ["--data", str(data)]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    code, out, err, wall = run(command)
    named = next((line for line in err.splitlines() if line.startswith("device:")), "")
    result = {"command": " ".join(["beanstrain", "fit", *command[4:]]), "exit": code, "process_seconds": wall,
              "device_line": named}
    if code != 0:
        return {**result, "error": err.strip().splitlines()[-1:] or ["no output"]}
    summary = json.loads(out)
    return {**result, "train_seconds": summary["train_seconds"], "test": summary["metrics"]["test"],
            "device": summary["device"], "engine": summary["engine"], "run_dir": summary["run_dir"]}


def plain_keras(backend: str, device: str, data: Path, epochs: int) -> dict:
    """The course's LeNet-5 in plain Keras on `backend`, in its own process."""
    environment = {"KERAS_BACKEND": backend}
    if device == "cpu":  # the CPU even where a GPU is: hide the GPUs from both frameworks
        environment.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    code, out, err, wall = run([sys.executable, str(PLAIN_KERAS), str(data), str(epochs)], environment)
    if code != 0:
        return {"exit": code, "error": err.strip().splitlines()[-1:]}
    return {**json.loads(out), "process_seconds": wall}


def later_epochs(seconds: list[float]) -> float | None:
    """Mean seconds of the epochs after the first, which compiles."""
    return sum(seconds[1:]) / len(seconds[1:]) if len(seconds) > 1 else None


def report(results: dict) -> str:
    """gpu.md: the machine, the recipes' table, the LeNet-5 table."""
    lines = ["# beanstrain on " + (results["machine"].get("nvidia-smi") or results["machine"]["processor"]), "",
             f"Measured {results['date']} with `python benchmarks/gpu.py {' '.join(results['arguments'])}`.", "",
             "## What the machine sees", ""]
    lines += [f"- {name}: `{value}`" for name, value in results["machine"].items()]
    lines += ["", "## The recipes", "",
              "| backend | recipe | device line | engine | train s | process s | test accuracy |",
              "|---|---|---|---|---|---|---|"]
    for row in results["recipes"]:
        accuracy = row.get("test", {}).get("accuracy")
        lines.append(f"| {row['backend']} | {row['recipe']} | {row['device_line'] or row.get('error')} | "
                     f"{row.get('engine', '')} | {row.get('train_seconds', '')} | {row['process_seconds']:.1f} | "
                     f"{'' if accuracy is None else f'{accuracy:.4f}'} |")
    lines += ["", f"## The course's LeNet-5 ({results['lenet_epochs']} epochs, SGD 0.05, batch 1024, 60,000 images)",
              "", "| backend | beanstrain train s | plain Keras fit s | ratio | plain Keras s per later epoch | "
              "beanstrain test accuracy | plain Keras test accuracy |", "|---|---|---|---|---|---|---|"]
    for row in results["lenet"]:
        ours, plain = row["beanstrain"], row["plain_keras"]
        ratio = (ours["train_seconds"] / plain["seconds"]) if "train_seconds" in ours and "seconds" in plain else None
        later = later_epochs(plain.get("epoch_seconds", []))
        lines.append(f"| {row['backend']} | {ours.get('train_seconds', ours.get('error'))} | "
                     f"{plain.get('seconds', plain.get('error'))} | {'' if ratio is None else f'{ratio:.2f}'} | "
                     f"{'' if later is None else f'{later:.3f}'} | {ours.get('test', {}).get('accuracy', '')} | "
                     f"{plain.get('test_accuracy', '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="Fashion-MNIST as one .npz")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu.json, gpu.md and the run folders")
    parser.add_argument("--device", default="gpu", choices=("gpu", "cpu"))
    parser.add_argument("--backends", default="jax,torch", help="comma-separated Keras backends")
    parser.add_argument("--runs", type=Path, help="folder for the run folders (default: OUT/runs)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes to train")
    parser.add_argument("--no-lenet", action="store_true", help="leave out the course's LeNet-5 timing")
    parser.add_argument("--quick", action="store_true", help="few epochs everywhere: a check of the script itself")
    arguments = parser.parse_args()
    out, data = arguments.out.resolve(), arguments.data.resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = (arguments.runs or out / "runs").resolve()
    backends = arguments.backends.split(",")
    lenet_epochs = 2 if arguments.quick else 50
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "arguments": sys.argv[1:], "machine": machine(),
               "recipes": [], "lenet": [], "lenet_epochs": lenet_epochs}
    print(json.dumps(results["machine"], indent=1), flush=True)

    def save() -> None:  # after every step: what a stopped run measured still comes back
        (out / "gpu.json").write_text(json.dumps(results, indent=1))
        (out / "gpu.md").write_text(report(results))

    for backend in [] if arguments.no_lenet else backends:  # the speed goal first, then the recipes
        ours = fit(COURSE_LENET, backend, arguments.device, runs, data, lenet_epochs)
        plain = plain_keras(backend, arguments.device, data, lenet_epochs)
        results["lenet"].append({"backend": backend, "beanstrain": ours, "plain_keras": plain})
        print(json.dumps(results["lenet"][-1]), flush=True)
        if ours.get("run_dir"):  # the course's LeNet-5 trained here, to be evaluated elsewhere
            with tarfile.open(out / f"run-{backend}.tar.gz", "w:gz") as archive:
                archive.add(ours["run_dir"], arcname=f"run-{backend}")
        save()
    for recipe in reversed(arguments.recipes.split(",")):
        for backend in backends:
            epochs = (20 if recipe != "fashion-lenet" else 1) if arguments.quick else None
            row = {"backend": backend, "recipe": recipe, **fit([recipe], backend, arguments.device, runs, data, epochs)}
            results["recipes"].append(row)
            print(json.dumps(row), flush=True)
            save()
    print(report(results))


if __name__ == "__main__":
    main()
