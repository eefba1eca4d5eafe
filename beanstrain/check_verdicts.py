"""What `beanstrain check` found: each student function's answers judged against the engine's, and told.

    >>> first_difference({"w11_1": 0.5}, {"w11_1": 0.5000001}) is None    # within 1e-5 of it
    True
    >>> first_difference({"w11_1": 0.5, "b1_1": 0.25}, {"w11_1": 0.5, "b1_1": -0.25})
    ('b1_1', 0, 0.25, -0.25)

`checker.py` runs the student's file and the engine; here each function gets one `Finding`: agreeing
at every step, or the first step and weight where it differs (with what the finite differences of the
loss through the student's forward say about it, and a likely slip when every number is the same
multiple of the engine's), or what it raised, returned wrongly or hung in.  The result is told three
ways: the text `beanstrain check` prints, `--json`, and JUnit XML for an autograder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from beanstrain import files
from beanstrain.errors import UsageError

FUNCTIONS = ("forward", "gradients", "update")
# Two numbers agree when they differ by less than this, relative to the larger of the two and of the
# largest of their kind at that step (a gradient near zero beside large ones is judged at their scale).
TOLERANCE = 1e-5
# Central differences are good to about 1e-9 here (a nudge of 1e-5, float64); this is their agreement.
SLOPE_TOLERANCE = 1e-4


@dataclass
class Steps:
    """The engine's steps: the weights before each, its batch, and the engine's numbers there in float64."""

    recipe: object  # recipes.Recipe
    lesson: object  # checker.Lesson
    batch_size: int
    weights: list = field(default_factory=list)  # per step: params before it
    batches: list = field(default_factory=list)  # per step: (x, y)
    outputs: list = field(default_factory=list)  # per step: the network's output for the batch
    gradients: list = field(default_factory=list)  # per step: params-shaped gradients
    updated: list = field(default_factory=list)  # per step: params after the rule, from the gradients above


@dataclass
class Finding:
    """What the check found for one of the student's functions (or their file)."""

    function: str  # forward, gradients, update, or "file" when it cannot even be imported
    steps: int  # the steps it was checked on
    step: int | None = None  # the first step where it differs or failed; None: it agrees at every step
    message: str = ""  # one line: what differs, or what went wrong
    details: list[str] = field(default_factory=list)  # the finite-difference verdict, a hint, the traceback
    crashed: bool = False  # it raised, returned the wrong thing or hung, rather than computing other numbers
    quantity: str = ""  # the weight (or "output") that differs first
    index: int = 0  # which of its numbers

    @property
    def passed(self) -> bool:
        return self.step is None and not self.message


@dataclass
class CheckResult:
    recipe: str
    student: str
    steps: int
    batch_size: int
    rate: float
    findings: list[Finding]

    @property
    def passed(self) -> bool:
        return all(finding.passed for finding in self.findings)


def first_difference(expected: dict, got: dict, reference: dict | None = None):
    """(name, index, expected, got) of the first number that differs, or None.

    Each number is judged against its `reference` (the expected value itself, or an update's expected step)
    and against the largest reference of the step, so a value near zero beside large ones is not judged alone."""
    reference = expected if reference is None else reference
    scale = max(float(np.abs(value).max()) for value in reference.values())
    for name, wanted in expected.items():
        wanted, answer = np.asarray(wanted).reshape(-1), np.asarray(got[name]).reshape(-1)
        ref = np.abs(np.asarray(reference[name])).reshape(-1)
        bound = TOLERANCE * np.maximum(ref, scale) + 1e-12 * (1 + np.abs(wanted))
        wrong = np.flatnonzero(~(np.abs(answer - wanted) <= bound))
        if wrong.size:
            return name, int(wrong[0]), float(wanted[wrong[0]]), float(answer[wrong[0]])
    return None


def ratio_hint(expected: dict, got: dict, batch_size: int, what: str) -> str:
    """A likely cause when every number is the same multiple of the engine's: a sign, a factor 2, a sum."""
    wanted = np.concatenate([np.asarray(value, np.float64).reshape(-1) for value in expected.values()])
    answer = np.concatenate([np.asarray(got[name], np.float64).reshape(-1) for name in expected])
    large = np.abs(wanted) > 1e-3 * np.abs(wanted).max()
    if not large.any():
        return ""
    ratios = answer[large] / wanted[large]
    if np.ptp(ratios) > 1e-3 * max(1.0, abs(ratios[0])):
        return ""
    causes = {-1: "the opposite sign: a sign slip (+ for -, or y - a for a - y)?",
              2: "twice the engine's: applied twice, or a factor 2 too many?",
              0.5: "half the engine's: a factor 2 missing?",
              0: "zero: nothing computed, or nothing returned?"}
    if batch_size > 1:
        causes[batch_size] = f"{batch_size} times the engine's: summed over the batch of {batch_size} where " \
                             "the lesson takes the mean?"
    for ratio, cause in causes.items():
        if abs(ratios[0] - ratio) <= 1e-3 * max(1.0, abs(ratio)):
            return f"every {what} is {cause}"
    return ""


def answers_at(answers: dict, function: str, step: int, names) -> dict:
    """What `function` returned at `step` (or the measured slopes, "slope"), by name."""
    return {name: answers[f"{function}:{name}"][step - 1] for name in names}


def crash_finding(function: str, problem: dict, checked: int, student: str) -> Finding:
    """What a function raised, returned wrongly or hung in (`check_runner`'s problem), as its finding."""
    step = problem["step"]
    if problem.get("missing"):
        signature = {"forward": "forward(params, x)", "gradients": "gradients(params, x, y)",
                     "update": "update(params, grads, rate)"}[function]
        return Finding(function, checked, 0, f"{function} is not defined in {student}: the lesson asks for "
                       f"{signature} (see beanstrain check --template)", crashed=True)
    at = "" if problem.get("hang") or function == "file" else f" at step {step}"  # a hang says where itself
    return Finding(function, checked, step, f"{function}{at} {problem['message']}", list(problem["traceback"]),
                   crashed=True)


def judge(steps: Steps, answers: dict, problems: dict, student: str) -> list[Finding]:
    """One finding per function, each against the engine at every step."""
    checked = len(steps.weights)
    if "import" in problems:
        problem = dict(problems["import"], message=f"{student} {problems['import']['message']}")
        return [crash_finding("file", problem, checked, student)]
    names = list(steps.weights[0])
    starts = np.cumsum([0, *(len(x) for x, _ in steps.batches)])  # where each step's rows begin in "forward"
    findings = {}
    for function in FUNCTIONS:
        if function in problems:
            findings[function] = crash_finding(function, problems[function], checked, student)
            continue
        if function not in answers and f"{function}:{names[0]}" not in answers:  # the child was stopped first
            stopped = next(iter(problems), "import")
            findings[function] = Finding(function, checked, None, f"{function} was not checked: the check was "
                                         f"stopped in {stopped}", crashed=True)
            continue
        finding = findings[function] = Finding(function, checked)
        for step in range(1, checked + 1):
            if function == "forward":
                expected = {"output": steps.outputs[step - 1]}
                got = {"output": answers["forward"][starts[step - 1]:starts[step]]}
                reference = None
            elif function == "gradients":
                expected, reference = steps.gradients[step - 1], None
                got = answers_at(answers, "gradients", step, names)
            else:
                expected, got = steps.updated[step - 1], answers_at(answers, "update", step, names)
                before = steps.weights[step - 1]
                reference = {name: np.asarray(expected[name]) - before[name] for name in names}
            difference = first_difference(expected, got, reference)
            if difference is not None:
                describe(finding, step, difference, steps, expected, got, reference)
                break
    slopes_verdict(findings, steps, answers)
    return [findings[function] for function in FUNCTIONS]


def describe(finding: Finding, step: int, difference, steps: Steps, expected: dict, got: dict,
             reference: dict | None) -> None:
    name, index, wanted, answer = difference
    relative = abs(answer - wanted) / abs(wanted) if wanted else float("inf")
    finding.step, finding.quantity, finding.index = step, name, index
    if finding.function == "forward":
        x = [f"{value:.4g}" for value in steps.batches[step - 1][0][index // expected["output"].shape[-1]]]
        sample = f"the output for sample {index + 1} of the batch (x = {x[0] if len(x) == 1 else ', '.join(x)})"
        finding.message = f"forward differs at step {step}: {sample}: expected {wanted:.6g}, got {answer:.6g} " \
                          f"(relative error {relative:.2g})"
        return
    label = name if np.size(expected[name]) == 1 else f"{name}{list(np.unravel_index(index, np.shape(expected[name])))}"
    finding.message = f"{finding.function} differs at step {step}: {label}: expected {wanted:.6g}, got {answer:.6g} " \
                      f"(relative error {relative:.2g})"
    others = [key for key in expected if key != name and first_difference(
        {key: expected[key]}, {key: got[key]}, None if reference is None else {key: reference[key]}) is not None]
    if others:
        finding.details.append(f"also wrong at this step: {', '.join(others)}")
    if finding.function == "update":
        before = steps.weights[step - 1]
        change = {key: np.asarray(got[key]) - before[key] for key in got}
        wanted_change = {key: np.asarray(expected[key]) - before[key] for key in expected}
        old = float(np.asarray(before[name]).reshape(-1)[index])
        finding.details.append(f"the step {label} took: expected {wanted - old:.6g}, got {answer - old:.6g}; "
                               "update was given the engine's gradients, so this is update's own mistake")
        hint = ratio_hint(wanted_change, change, steps.batch_size, "step")
    else:
        hint = ratio_hint(expected, got, steps.batch_size, "gradient")
    if hint:
        finding.details.append(hint)


def slopes_verdict(findings: dict, steps: Steps, answers: dict) -> None:
    """Finite differences of the lesson's loss through the student's forward: a wrong gradient or a wrong forward?"""
    forward, gradients, update = (findings[function] for function in FUNCTIONS)
    if gradients.crashed or forward.crashed:
        return
    names = list(steps.weights[0])
    if gradients.step is None:
        worst = max(float(np.abs(answers[f"slope:{name}"][step - 1] - steps.gradients[step - 1][name]).max())
                    for step in range(1, len(steps.weights) + 1) for name in names)
        gradients.details.append(f"the loss's slopes by finite differences through your forward agree "
                                 f"(largest difference {worst:.1g})")
        if update.step is not None:
            update.details.insert(0, "your gradients are right (the engine's, and the slope of the loss): "
                                     "your update is wrong")
        if forward.step is not None:
            forward.details.append("your gradients are right, so the mistake is in forward alone")
        return
    step = gradients.step
    slope = answers_at(answers, "slope", step, names)
    got = answers_at(answers, "gradients", step, names)
    name = gradients.quantity
    measured = float(np.asarray(slope[name]).reshape(-1)[gradients.index])
    engine = float(np.asarray(steps.gradients[step - 1][name]).reshape(-1)[gradients.index])
    if (forward.step is None or forward.step > step) and abs(measured - engine) <= SLOPE_TOLERANCE * max(
            float(np.abs(np.concatenate([np.ravel(value) for value in steps.gradients[step - 1].values()])).max()),
            1e-12):
        gradients.details.insert(0, f"finite differences of the loss through your forward give {measured:.6g} "
                                    f"for {name}, as the engine does: your gradient is wrong, not your forward pass")
    elif first_difference({name: slope[name]}, {name: got[name]}) is None:
        gradients.details.insert(0, f"your gradient for {name} is the slope of your own forward pass, which is "
                                    "wrong: fix forward first")
    else:
        gradients.details.insert(0, f"your gradient is neither the engine's nor the slope of your own forward "
                                    f"pass ({measured:.6g}, by finite differences)")


def report_text(result: CheckResult) -> str:
    """What `beanstrain check` prints: a line per function, what differs first, and a verdict."""
    batches = "one sample" if result.batch_size == 1 else f"{result.batch_size} samples"
    lines = [f"{result.student} against the numpy engine on {result.recipe}: {result.steps} steps "
             f"({batches} a step, rate {result.rate:g})"]
    for finding in result.findings:
        if finding.passed:
            given = ", given the engine's gradients" if finding.function == "update" else ""
            lines.append(f"  {finding.function} agrees at all {finding.steps} steps{given}")
        else:
            lines.append(f"  {finding.message}")
        lines.extend(f"      {detail}" for detail in finding.details)
    failed = [finding.function for finding in result.findings if not finding.passed]
    if failed == ["file"]:
        lines.append(f"FAIL: {result.student} did not load; fix it, then check again")
    elif not failed:
        lines.append(f"PASS: forward, gradients and update give the engine's numbers at all {result.steps} steps")
    else:
        named = ", ".join(failed[:-1]) + " and " + failed[-1] if len(failed) > 1 else failed[0]
        lines.append(f"FAIL: {named} {'does' if len(failed) == 1 else 'do'} not give the engine's numbers; "
                     "fix the first step shown, then check again")
    return "\n".join(lines) + "\n"


def result_json(result: CheckResult) -> dict:
    """What `check --json` prints: the lesson, the file, whether it passed, and each function's finding."""
    return {"recipe": result.recipe, "file": result.student, "steps": result.steps, "passed": result.passed,
            "findings": [{"function": finding.function, "passed": finding.passed, "step": finding.step,
                          "weight": finding.quantity or None, "message": finding.message,
                          "details": finding.details, "crashed": finding.crashed} for finding in result.findings]}


def junit_xml(result: CheckResult) -> str:
    """JUnit XML for an autograder or CI: one test case per function, failed or errored as the check found."""
    suite = ElementTree.Element("testsuite", name=f"beanstrain check {result.recipe}", tests=str(len(result.findings)),
                                failures=str(sum(not f.passed and not f.crashed for f in result.findings)),
                                errors=str(sum(f.crashed for f in result.findings)))
    for finding in result.findings:
        case = ElementTree.SubElement(suite, "testcase", classname=f"{result.recipe}.{Path(result.student).stem}",
                                      name=f"{finding.function} ({finding.steps} steps)")
        if not finding.passed:
            outcome = ElementTree.SubElement(case, "error" if finding.crashed else "failure",
                                             message=finding.message)
            outcome.text = "\n".join([finding.message, *finding.details])
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, result: CheckResult) -> None:
    try:
        files.write_text(Path(path), junit_xml(result))
    except OSError as error:
        raise UsageError(f"--junit {path}: cannot write it: {error.strerror or error}") from None


