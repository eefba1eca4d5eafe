"""`beanstrain check`: a student's own NumPy code for a lesson, step by step against the numpy engine.

    beanstrain check --template beans3-backprop > my_rules.py     # fill in the TODOs, then:
    beanstrain check my_rules.py --recipe beans3-backprop --steps 100 --junit report.xml

The student's file defines `forward(params, x)`, `gradients(params, x, y)` and `update(params, grads,
rate)` in plain NumPy (the lesson's template says what each takes and returns).  The engine trains the
recipe's own network on its own data and batches (`engines.numpy_engine`'s step, written out below),
and at every step each function gets what the engine had: the weights before the step, the batch, and
for `update` the engine's gradients.  So each function is checked on its own, and the first step and
weight where it differs from the engine is its own mistake, not one carried over from another.  The
slope of the lesson's loss through the student's own `forward`, measured by central differences,
tells a wrong gradient from a wrong forward pass.

The student's file runs in a child process (`check_runner.py`: NumPy and the file, nothing else) with
a time and a memory limit; what it raised or returned wrongly comes back as one line per function
(`check_verdicts.py` judges the answers and tells the result).

    >>> sorted(LESSONS)[:3]
    ['beans0-backprop', 'beans1-batch', 'beans1-minibatch']
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from beanstrain.check_verdicts import CheckResult, Steps, judge
from beanstrain.errors import UsageError, unknown_name
from beanstrain.weight_names import course_names

# Seconds for the student's whole file, every step of every function: a step of the 1-2-1 net with its
# finite differences takes about 0.7 ms, so a long --steps gets more.
TIME_LIMIT, TIME_PER_STEP = 10.0, 0.002
MEMORY_LIMIT = 1024  # MiB of address space for the child: NumPy and a lesson's arrays need far less
DEFAULT_STEPS = 100


@dataclass(frozen=True)
class Lesson:
    template: str  # beanstrain/templates/check-<template>.py.tmpl
    matrix: bool = False  # params as the course's matrices W (units x inputs) and b, not one name per number


LESSONS = {
    "beans1-sgd": Lesson("slope-sgd"), "beans1-batch": Lesson("slope-sgd"), "beans1-minibatch": Lesson("slope-sgd"),
    "beans1-sign": Lesson("slope-sign"), "beans1-rosenblatt": Lesson("slope-rosenblatt"),
    "beans1-neuron-numpy": Lesson("neuron-linear"), "beans0-backprop": Lesson("neuron-sigmoid"),
    "beans7-matrix": Lesson("matrix", matrix=True), "beans3-backprop": Lesson("hidden2"),
}


def get_lesson(name: str) -> Lesson:
    """The lesson a recipe is, or one line saying which recipes are lessons."""
    if name in LESSONS:
        return LESSONS[name]
    from beanstrain.recipes import list_recipes

    if name in list_recipes():
        raise UsageError(f"{name} is not one of the NumPy lessons that check knows "
                         f"({', '.join(sorted(LESSONS))}): its network is not written by hand")
    raise unknown_name("lesson", name, LESSONS)


def as_params(weights: list[np.ndarray], lesson: Lesson) -> dict[str, np.ndarray]:
    """The engine's weight list as the student's params: one number per course name, or W and b."""
    if lesson.matrix:
        kernel, bias = weights
        return {"W": np.asarray(kernel, np.float64).T.copy(), "b": np.asarray(bias, np.float64).copy()}
    return {name: np.float64(value) for array, names in zip(weights, course_names(weights))
            for name, value in zip(names, np.asarray(array, np.float64).reshape(-1))}


def engine_steps(recipe_name: str, count: int) -> Steps:
    """The first `count` steps of the recipe's run on the numpy engine, as `fit` takes them.

    The weights follow the engine's own float32 path; at each, the engine's network computes the output,
    gradients and rule's update again in float64, the precision the student's NumPy works in."""
    from beanstrain.engines.numpy_net import KERAS_LOSSES, Network, read_layers
    from beanstrain.engines.order import epoch_permutation
    from beanstrain.engines.rules import make_rule
    from beanstrain.objectives import make_loss
    from beanstrain.preparation import prepare
    from beanstrain.recipes import resolve_recipe

    lesson = get_lesson(recipe_name)
    recipe = resolve_recipe(recipe_name)
    prepared = prepare(recipe, "cpu", None, io.StringIO(), engine="numpy")
    rule = make_rule(recipe.optimizer, recipe.learning_rate)
    network = Network(read_layers(prepared.model), KERAS_LOSSES[type(make_loss(prepared.loss_name)).__name__],
                      perceptron_error=rule.perceptron_error)
    weights = [np.array(value, dtype=np.float32) for value in prepared.model.get_weights()]
    x, y = np.asarray(prepared.data.x, np.float32), np.asarray(prepared.data.y, np.float32)
    size = prepared.batch_size
    per_epoch = -(-len(x) // size)
    steps = Steps(recipe, lesson, size)
    rate = np.float64(recipe.learning_rate)
    for step in range(count):
        epoch, start = divmod(step, per_epoch)
        order = epoch_permutation(recipe.seed, epoch, len(x))[start * size:(start + 1) * size]
        x_batch, y_batch = x[order], y[order]
        exact = [weight.astype(np.float64) for weight in weights]
        outputs, _ = network.forward(exact, x_batch.astype(np.float64))
        gradients = network.backward(exact, outputs, network.output_error(y_batch.astype(np.float64), outputs[-1]))
        after = [weight.copy() for weight in exact]
        for weight, gradient in zip(after, gradients):
            rule.entry.step(weight, gradient.copy(), rate)
        steps.weights.append(as_params(weights, lesson))
        steps.batches.append((x_batch, y_batch))
        steps.outputs.append(outputs[-1])
        steps.gradients.append(as_params(gradients, lesson))
        steps.updated.append(as_params(after, lesson))
        # The engine's own step, in float32, to the next step's weights (numpy_engine.NumpyTrainer._train_epoch).
        forward, _ = network.forward(weights, x_batch)
        rule.update(weights, network.backward(weights, forward, network.output_error(y_batch, forward[-1])))
    return steps


def write_steps(path: Path, steps: Steps) -> None:
    """The steps as `check_runner` reads them: each quantity stacked over the steps, the batches end to end."""
    sizes = [len(x) for x, _ in steps.batches]
    arrays = {"names": np.array(list(steps.weights[0])), "rate": np.array(float(steps.recipe.learning_rate)),
              "half": np.array(steps.recipe.optimizer == "rosenblatt"), "starts": np.cumsum([0, *sizes]),
              "x": np.concatenate([x for x, _ in steps.batches]).astype(np.float64),
              "y": np.concatenate([y for _, y in steps.batches]).astype(np.float64)}
    for name in steps.weights[0]:
        arrays[f"p:{name}"] = np.stack([np.asarray(params[name]) for params in steps.weights])
        arrays[f"g:{name}"] = np.stack([np.asarray(gradients[name]) for gradients in steps.gradients])
    np.savez(path, **arrays)


def last_call(status: Path) -> tuple[str, str]:
    """The function the child called last and the step, from its status file: where it hung or died."""
    words = status.read_text().split() if status.exists() else []
    return (words[-2], words[-1]) if len(words) >= 2 else ("import", "0")


def run_student(student: Path, steps: Steps, time_limit: float, memory_limit: int) -> tuple[dict, dict]:
    """The student's answers and problems (`check_runner`); a hang is the problem of the function it hung in."""
    runner = Path(__file__).with_name("check_runner.py")
    with tempfile.TemporaryDirectory(prefix="beanstrain-check-") as folder:
        folder = Path(folder)
        write_steps(folder / "steps.npz", steps)
        status = folder / "status.txt"
        # One BLAS thread: the child's address space is capped, and each thread reserves a stack.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        command = [sys.executable, "-I", str(runner), str(student.resolve()), str(folder / "steps.npz"),
                   str(folder / "answers.npz"), str(status), str(memory_limit)]
        try:
            child = subprocess.run(command, cwd=student.resolve().parent, env=env, capture_output=True, text=True,
                                   stdin=subprocess.DEVNULL, timeout=time_limit)
        except subprocess.TimeoutExpired:
            function, step = last_call(status)
            where = "when imported" if function == "import" else f"at step {step}"
            return {}, {function: {"step": int(step), "hang": True, "traceback": [],
                                   "message": f"did not finish within {time_limit:g} s {where} "
                                              "(an endless loop, or a wait for input?)"}}
        problems_file = folder / "problems.json"
        if not problems_file.exists():
            last = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
            if "MemoryError" in child.stderr or "Cannot allocate" in child.stderr:
                last = f"ran out of memory (the limit is {memory_limit} MiB)"
            function, step = last_call(status)
            return {}, {function: {"step": int(step), "message": f"ended the process: {last}", "traceback": []}}
        with np.load(folder / "answers.npz") as answers:
            return {key: answers[key] for key in answers.files}, json.loads(problems_file.read_text())


def check_file(student: Path, recipe_name: str, steps: int = DEFAULT_STEPS, time_limit: float | None = None,
               memory_limit: int = MEMORY_LIMIT) -> CheckResult:
    """Check a student's file against the first `steps` steps of a lesson's run on the numpy engine.

    A file that is missing, or a lesson that is not one, is a UsageError; anything about the student's code
    (an exception, a hang, a wrong number) is a finding in the result."""
    student = Path(student)
    get_lesson(recipe_name)
    if not student.is_file():
        raise UsageError(f"{student}: no such file; start one with: beanstrain check --template {recipe_name} "
                         f"> {student.name}")
    if not 1 <= steps <= 10_000:
        raise UsageError(f"--steps must be between 1 and 10000, got {steps}")
    oracle = engine_steps(recipe_name, steps)
    time_limit = TIME_LIMIT + TIME_PER_STEP * steps if time_limit is None else time_limit
    answers, problems = run_student(student, oracle, time_limit, memory_limit)
    return CheckResult(recipe_name, student.name, steps, oracle.batch_size, float(oracle.recipe.learning_rate),
                       judge(oracle, answers, problems, student.name))


def template_text(recipe_name: str) -> str:
    """The lesson's starting file: the three functions' signatures and docstrings, their bodies TODOs."""
    from beanstrain.recipes import resolve_recipe

    lesson = get_lesson(recipe_name)
    recipe = resolve_recipe(recipe_name)
    text = (resources.files("beanstrain") / "templates" / f"check-{lesson.template}.py.tmpl").read_text()
    batch = "the whole training set" if not recipe.batch_size else \
        "one sample" if recipe.batch_size == 1 else f"{recipe.batch_size} samples"
    return Template(text).substitute(recipe=recipe_name, description=recipe.description, batch=batch,
                                     rate=f"{recipe.learning_rate:g}")
