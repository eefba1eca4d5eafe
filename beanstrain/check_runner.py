"""The child side of `beanstrain check`: a student's file run on the lesson's steps, in a process of its own.

    python -I beanstrain/check_runner.py my_rules.py steps.npz answers.npz status.txt 1024

`checker.py` starts it by path (never `-m beanstrain...`), so the child imports nothing but the
standard library, NumPy and the student's file: no TensorFlow, no beanstrain.  Its address space is
capped (RLIMIT_AS, in MiB) before NumPy is imported; the parent caps its time.

`steps.npz` holds, stacked over the steps, the engine's weights before each (`p:NAME`), the batches
(`x` and `y`, step k's rows from `starts[k-1]` to `starts[k]`) and the engine's gradients (`g:NAME`,
given to `update` so it is checked on its own), with `names`, `rate` and `half` (the lesson's loss is
half the squared error).  Each function runs over every step in turn; `answers.npz` gets what it
returned, stacked alike (`forward`, `gradients:NAME`, `update:NAME`), and `slope:NAME`, the slope of
the lesson's loss through the student's own `forward` measured by central differences.  A function
that fails stops its own checks only: `problems.json` beside `answers.npz` says which, at which step,
why, with the traceback trimmed to the student's file.
Before each call the function and step go to `status.txt`, so a hang can be named.
"""

import json
import os
import resource
import sys
import traceback

# The nudge of the central differences, on float64 weights: the error is about h^2 for the course's losses.
NUDGE = 1e-5


class Problem(Exception):
    """What a student's function did wrong, in one line."""


def where(error: BaseException, student: str) -> list[str]:
    """The student's part of the traceback: their file's frames only, innermost last."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if os.path.abspath(frame.filename) == student]
    return [line for frame in frames
            for line in (f'File "{os.path.basename(frame.filename)}", line {frame.lineno}, in {frame.name}',
                         f"  {(frame.line or '').strip()}")]


def numbers(value, what: str, shape):
    """`value` as a float64 array of `shape` (a lone number fits a one-number shape), or a Problem."""
    import numpy as np

    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise Problem(f"returned {type(value).__name__} for {what}, not numbers") from None
    wanted = tuple(shape)
    # A lone number for a one-number shape, or fewer dimensions holding the same (a batch's outputs as a
    # vector) are the same numbers; more dimensions, or the same count in another order, are not.
    fits = array.shape == wanted or (array.size == 1 and int(np.prod(wanted)) == 1) or (
        array.ndim < len(wanted) and array.squeeze().shape == np.empty(wanted).squeeze().shape)
    if not fits:
        raise Problem(f"returned {what} of shape {array.shape}, expected {wanted}")
    if not np.all(np.isfinite(array)):
        raise Problem(f"returned {what} = {array.reshape(-1)[:4].tolist()}, not finite (NaN or infinity)")
    return array.reshape(wanted)


def named(value, what: str, names, shapes) -> dict:
    if not isinstance(value, dict):
        raise Problem(f"returned {type(value).__name__}, not a dict of {', '.join(names)}")
    missing = [name for name in names if name not in value]
    if missing:
        raise Problem(f"returned no {', '.join(missing)} in its dict (it has {', '.join(map(str, value)) or 'none'})")
    return {name: numbers(value[name], f"{what} {name}", shape) for name, shape in zip(names, shapes)}


def main(student_file: str, steps_file: str, answers_file: str, status_file: str, memory_mib: str) -> None:
    limit = int(memory_mib) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import numpy as np

    student = os.path.abspath(student_file)
    sys.path.insert(0, os.path.dirname(student))
    problems = {}
    status = open(status_file, "w", buffering=1)  # noqa: SIM115 (written before every call, closed at exit)

    def report(function: str, step: int, message: str, error: BaseException | None = None) -> None:
        problems[function] = {"step": step, "message": message,
                              "traceback": where(error, student) if error is not None else []}

    def call(function: str, step: int, *arguments):
        status.write(f"{function} {step}\n")
        try:
            return getattr(module, function)(*arguments)
        except MemoryError as error:
            raise Problem(f"ran out of memory (the limit is {memory_mib} MiB)") from error
        except NotImplementedError as error:
            raise Problem(f"is not written yet (it raises NotImplementedError: {error})".replace(": )", ")")) \
                from error
        except Exception as error:  # the student's exception, to be reported and not raised
            said = str(error).strip().splitlines()
            raise Problem(f"raised {type(error).__name__}" + (f": {said[0]}" if said else "")) from error

    status.write("import 0\n")
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("student_rules", student)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except SyntaxError as error:
        report("import", 0, f"is not valid Python: {error.msg} (line {error.lineno})")
        problems["import"]["traceback"] = [f'File "{os.path.basename(student)}", line {error.lineno}',
                                           f"  {(error.text or '').strip()}"]
        module = None
    except BaseException as error:  # anything at import time, SystemExit included, is the file's problem
        report("import", 0, f"raised {type(error).__name__} when imported: {str(error).strip()}".rstrip(": "), error)
        module = None

    with np.load(steps_file) as archive:
        data = {key: archive[key] for key in archive.files}
    names = [str(name) for name in data["names"]]
    shapes = [data[f"p:{name}"].shape[1:] for name in names]
    starts, rate, half = data["starts"], float(data["rate"]), bool(data["half"])
    count = len(starts) - 1

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        rows = slice(starts[step - 1], starts[step])
        return data["x"][rows].copy(), data["y"][rows].copy()

    def given(prefix: str, step: int, nudged: str | None = None, index: int = 0, by: float = 0.0) -> dict:
        """The step's weights (or gradients) by name: fresh arrays, a weight of one number a NumPy float64."""
        values = {name: np.array(data[f"{prefix}:{name}"][step - 1], dtype=np.float64) for name in names}
        if nudged is not None:
            values[nudged].reshape(-1)[index] += by
        return {name: value if value.shape else np.float64(value) for name, value in values.items()}

    def forward(step: int, values: dict) -> np.ndarray:
        x, y = batch(step)
        return numbers(call("forward", step, values, x), "the output", y.shape)

    def loss(step: int, output: np.ndarray) -> float:
        return float(np.mean((batch(step)[1] - output) ** 2) * (0.5 if half else 1.0))

    # What each function returned, stacked over the steps as the inputs are; NaN where it never answered.
    answers = {"forward": np.full(data["y"].shape, np.nan)}
    for name, shape in zip(names, shapes):
        for function in ("gradients", "update", "slope"):
            answers[f"{function}:{name}"] = np.full((count, *shape), np.nan)

    def each_step(function: str, body) -> None:
        if module is None:
            return
        if not callable(getattr(module, function, None)):
            problems[function] = {"step": 0, "message": "is not defined", "missing": True, "traceback": []}
            return
        for step in range(1, count + 1):
            try:
                body(step)
            except Problem as problem:
                report(function, step, str(problem), problem.__cause__)
                return

    def keep(function: str, step: int, got: dict) -> None:
        for name, value in got.items():
            answers[f"{function}:{name}"][step - 1] = value

    def run_forward(step: int) -> None:
        answers["forward"][starts[step - 1]:starts[step]] = forward(step, given("p", step))

    def run_gradients(step: int) -> None:
        got = call("gradients", step, given("p", step), *batch(step))
        keep("gradients", step, named(got, "the gradient of", names, shapes))

    def run_update(step: int) -> None:
        before = given("p", step)
        result = call("update", step, before, given("g", step), rate)
        keep("update", step, named(before if result is None else result, "the new", names, shapes))

    def run_slopes(step: int) -> None:
        for name, shape in zip(names, shapes):
            slopes = np.zeros(int(np.prod(shape)))
            for index in range(slopes.size):
                up = loss(step, forward(step, given("p", step, name, index, NUDGE)))
                down = loss(step, forward(step, given("p", step, name, index, -NUDGE)))
                slopes[index] = (up - down) / (2 * NUDGE)
            answers[f"slope:{name}"][step - 1] = slopes.reshape(shape)

    for function, body in (("forward", run_forward), ("gradients", run_gradients), ("update", run_update)):
        each_step(function, body)
    if module is not None and "forward" not in problems:
        each_step("forward", run_slopes)
    status.write("done 0\n")
    np.savez(answers_file, **answers)
    with open(os.path.join(os.path.dirname(answers_file), "problems.json"), "w") as file:
        json.dump(problems, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
