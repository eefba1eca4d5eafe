"""`beanstrain check` against solutions written right and wrong, as students write them.

Each lesson has a right solution in tests/check_solutions/; the wrong ones are that file with one slip
made in it (a sign, a missing a*(1-a), a transposed matrix, the update applied twice, a sum for a mean),
and each must be caught by the right function, at the right step, on the right weight, with the right
verdict.  The crashes (an exception, a wrong shape, NaN, a missing function, a syntax error, a hang, too
much memory) must come back as one line naming the function, with the student's own traceback lines.
The checks run through the library in this process (TensorFlow is imported once); two go through the CLI.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

from beanstrain import check_verdicts, checker
from beanstrain.errors import UsageError

SOLUTIONS = Path(__file__).parent / "check_solutions"
RIGHT = {"beans1-sgd": "slope_sgd", "beans1-batch": "slope_sgd", "beans1-minibatch": "slope_sgd",
         "beans1-sign": "slope_sign", "beans1-rosenblatt": "slope_rosenblatt", "beans1-neuron-numpy": "neuron_linear",
         "beans0-backprop": "neuron_sigmoid", "beans7-matrix": "matrix", "beans3-backprop": "hidden2"}


def slipped(tmp_path: Path, solution: str, old: str, new: str) -> Path:
    """The right solution with one slip: `old` replaced by `new` (which must be there to replace), beside the
    other solutions it may import."""
    shutil.copytree(SOLUTIONS, tmp_path, dirs_exist_ok=True)
    text = (SOLUTIONS / f"{solution}.py").read_text()
    assert old in text, f"{old!r} is not in {solution}.py"
    path = tmp_path / f"{solution}_slipped.py"
    path.write_text(text.replace(old, new))
    return path


def written(tmp_path: Path, text: str, name: str = "my_rules.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def by_function(result: check_verdicts.CheckResult) -> dict[str, check_verdicts.Finding]:
    return {finding.function: finding for finding in result.findings}


def test_every_numpy_recipe_is_a_lesson_with_a_right_solution():
    from beanstrain.recipes import list_recipes

    numpy_recipes = {name for name, recipe in list_recipes().items() if recipe.engine == "numpy"}
    assert numpy_recipes == set(checker.LESSONS) == set(RIGHT)


@pytest.mark.parametrize("recipe", sorted(RIGHT))
def test_right_solutions_pass(recipe):
    steps = 30 if recipe != "beans1-batch" else 5
    result = checker.check_file(SOLUTIONS / f"{RIGHT[recipe]}.py", recipe, steps=steps)
    assert result.passed, check_verdicts.report_text(result)
    assert "PASS" in check_verdicts.report_text(result)
    # The slopes measured through the student's forward are the engine's gradients, to the differences' accuracy.
    (agreement,) = by_function(result)["gradients"].details
    assert float(agreement.split("largest difference ")[1].rstrip(")")) < 1e-6


def test_the_steps_are_the_engines_own():
    """The weights the student is given at step 51 are the numpy engine's after one epoch of 50 batches."""
    import io

    from beanstrain.preparation import prepare
    from beanstrain.recipes import resolve_recipe

    prepared = prepare(resolve_recipe("beans1-minibatch"), "cpu", None, io.StringIO())
    trainer = prepared.make_trainer()
    trainer.run(start_epoch=0, epochs=1)
    steps = checker.engine_steps("beans1-minibatch", 51)
    lesson = checker.LESSONS["beans1-minibatch"]
    assert steps.weights[50] == checker.as_params(trainer.weights, lesson)
    assert steps.weights[0] == {"w11_1": pytest.approx(0.01)}  # the recipe's initial w


# (lesson, solution, old, new, function caught, step, weight, words of the verdict)
SLIPS = [
    ("beans1-sgd", "slope_sgd", "2 * x**2 * w - 2 * x * y", "2 * x * y - 2 * x**2 * w",
     "gradients", 1, "w11_1", ["as the engine does: your gradient is wrong", "opposite sign"]),
    ("beans1-sgd", "slope_sgd", 'return {"w11_1": params["w11_1"] - rate * grads["w11_1"]}',
     'w = params["w11_1"] - rate * grads["w11_1"]\n    w = w - rate * grads["w11_1"]\n    return {"w11_1": w}',
     "update", 1, "w11_1", ["your update is wrong", "applied twice"]),
    ("beans1-sgd", "slope_sgd", 'return {"w11_1": params["w11_1"] - rate * grads["w11_1"]}',
     'w = params["w11_1"] - rate * grads["w11_1"]',  # the new weight computed, and never returned
     "update", 1, "w11_1", ["every step is zero: nothing computed, or nothing returned?"]),
    ("beans1-minibatch", "slope_sgd", "np.mean(", "np.sum(",
     "gradients", 1, "w11_1", ["as the engine does: your gradient is wrong", "summed over the batch of 10"]),
    ("beans1-sign", "slope_sign", "- rate * np.sign(", "+ rate * np.sign(",
     "update", 1, "w11_1", ["your update is wrong", "opposite sign"]),
    ("beans1-rosenblatt", "slope_rosenblatt", "-(y - y_pred) * x", "(y - y_pred) * x",
     "gradients", 1, "w11_1", ["as the engine does: your gradient is wrong", "opposite sign"]),
    ("beans0-backprop", "neuron_sigmoid", "dz = -2 * (y - a) * a * (1 - a)", "dz = -2 * (y - a)",
     "gradients", 1, "w11_1", ["as the engine does: your gradient is wrong, not your forward pass",
                               "also wrong at this step: b1_1"]),
    ("beans3-backprop", "hidden2", 'params["w11_2"] * a1_1 * (1 - a1_1)', 'params["w11_2"]',
     "gradients", 1, "w11_1", ["as the engine does: your gradient is wrong, not your forward pass"]),
    ("beans3-backprop", "hidden2", 'dz2_1 = dz1_2 * params["w21_2"]', 'dz2_1 = dz1_2 * params["w11_2"]',
     "gradients", 1, "w12_1", ["as the engine does: your gradient is wrong"]),
    ("beans3-backprop", "hidden2", "return {name: params[name] - rate * grads[name] for name in params}",
     "return {name: params[name] - 2 * rate * grads[name] for name in params}",
     "update", 1, "w11_1", ["your update is wrong", "applied twice"]),
    ("beans1-neuron-numpy", "neuron_linear", 'params["w11_1"] * x + params["b1_1"]', 'params["w11_1"] * x',
     "forward", 1, "output", ["expected"]),
    # sgd2.py's trap: a running total of the slope never reset, right at the first step and wrong from the second.
    ("beans1-minibatch", "slope_sgd", '    return {"w11_1": np.mean(2 * x**2 * w - 2 * x * y)}',
     '    TOTAL.append(np.mean(2 * x**2 * w - 2 * x * y))\n    return {"w11_1": sum(TOTAL)}\n\n\nTOTAL = []',
     "gradients", 2, "w11_1", ["as the engine does: your gradient is wrong"]),
]


@pytest.mark.parametrize("lesson, solution, old, new, function, step, weight, words", SLIPS,
                         ids=[f"{slip[0]}-{slip[4]}-{index}" for index, slip in enumerate(SLIPS)])
def test_each_slip_is_caught_at_its_step(tmp_path, lesson, solution, old, new, function, step, weight, words):
    result = checker.check_file(slipped(tmp_path, solution, old, new), lesson, steps=20)
    text = check_verdicts.report_text(result)
    assert not result.passed
    findings = by_function(result)
    caught = findings[function]
    assert (caught.step, caught.quantity, caught.crashed) == (step, weight, False), text
    label = "the output for sample 1" if function == "forward" else weight
    assert caught.message.startswith(f"{function} differs at step {step}: {label}"), text
    for word in words:
        assert word in "\n".join([caught.message, *caught.details]), text
    # The other functions are each checked on the engine's numbers, so the one slip is in one place only
    # (a forward pass without its bias leaves the gradients written from it wrong too).
    others = [name for name, finding in findings.items() if not finding.passed and name != function]
    assert others == (["gradients"] if function == "forward" else []), text
    assert text.splitlines()[-1].startswith("FAIL: ")


def test_an_update_in_place_is_an_update(tmp_path):
    path = slipped(tmp_path, "neuron_linear", "return {name: params[name] - rate * grads[name] for name in params}",
                   "for name in params:\n        params[name] -= rate * grads[name]")
    assert checker.check_file(path, "beans1-neuron-numpy", steps=10).passed


def test_a_transposed_matrix_is_a_wrong_shape(tmp_path):
    path = slipped(tmp_path, "matrix", '"W": dz.T.dot(x)', '"W": x.T.dot(dz)')
    gradients = by_function(checker.check_file(path, "beans7-matrix", steps=5))["gradients"]
    assert gradients.crashed and gradients.step == 1
    assert gradients.message == "gradients at step 1 returned the gradient of W of shape (2, 1), expected (1, 2)"


def test_gradients_written_from_a_wrong_forward_are_told_apart(tmp_path):
    """The linear neuron given for the sigmoid one: its gradients are the slopes of its own (wrong) forward."""
    findings = by_function(checker.check_file(SOLUTIONS / "neuron_linear.py", "beans0-backprop", steps=5))
    assert findings["forward"].step == 1 and findings["gradients"].step == 1
    assert findings["gradients"].details[0] == ("your gradient for w11_1 is the slope of your own forward pass, "
                                                "which is wrong: fix forward first")
    assert findings["update"].passed


CRASHES = [
    ("exception", """
        def forward(params, x):
            return params["w11_1"] * x

        def gradients(params, x, y):
            slope = 0.0
            return {"w11_1": slope / len(x) / slope}

        def update(params, grads, rate):
            return {"w11_1": params["w11_1"] - rate * grads["w11_1"]}
        """, "gradients", "gradients at step 1 raised ZeroDivisionError: float division by zero"),
    ("shape", """
        def forward(params, x):
            return params["w11_1"] * x.reshape(1, -1)
        """, "forward", "forward at step 1 returned the output of shape (1, 10), expected (10, 1)"),
    ("nan", """
        import numpy as np

        def forward(params, x):
            return params["w11_1"] * x * np.sqrt(x - 10)
        """, "forward", "forward at step 1 returned the output = [nan, nan, nan, nan], not finite (NaN or infinity)"),
    ("missing", """
        def forward(params, x):
            return params["w11_1"] * x
        """, "update", "update is not defined in my_rules.py: the lesson asks for update(params, grads, rate) "
                       "(see beanstrain check --template)"),
    ("memory", """
        import numpy as np

        def forward(params, x):
            return np.ones(300_000_000) * params["w11_1"]
        """, "forward", "forward at step 1 ran out of memory (the limit is 1024 MiB)"),
    ("no dict", """
        def forward(params, x):
            return params["w11_1"] * x

        def gradients(params, x, y):
            return 0.5
        """, "gradients", "gradients at step 1 returned float, not a dict of w11_1"),
]


@pytest.mark.parametrize("kind, source, function, message", CRASHES, ids=[crash[0] for crash in CRASHES])
def test_a_crash_is_one_line_naming_the_function(tmp_path, kind, source, function, message):
    findings = by_function(checker.check_file(written(tmp_path, source), "beans1-minibatch", steps=3))
    assert findings[function].crashed
    assert findings[function].message == message
    assert all("beanstrain" not in line and "check_runner" not in line for line in findings[function].details)
    if kind == "exception":  # the student's own traceback, their file's lines only
        assert findings[function].details == ['File "my_rules.py", line 7, in gradients',
                                              '  return {"w11_1": slope / len(x) / slope}']


def test_a_hang_is_named_and_stopped(tmp_path):
    path = written(tmp_path, """
        import numpy as np

        def forward(params, x):
            return params["w11_1"] * x

        def gradients(params, x, y):
            while True:
                pass
        """)
    result = checker.check_file(path, "beans1-sgd", steps=3, time_limit=3)
    gradients = by_function(result)["gradients"]
    assert gradients.crashed and gradients.step == 1
    assert gradients.message.startswith("gradients did not finish within 3 s at step 1")
    # What forward returned was lost with the stopped process, and update was never called.
    assert [finding.message for finding in result.findings if finding.function != "gradients"] == [
        "forward was not checked: the check was stopped in gradients",
        "update was not checked: the check was stopped in gradients"]


def test_a_file_that_does_not_import(tmp_path):
    result = checker.check_file(written(tmp_path, "def forward(params, x)\n    return x\n"), "beans1-sgd", steps=2)
    (finding,) = result.findings
    assert finding.function == "file" and finding.crashed
    assert finding.message == "file my_rules.py is not valid Python: expected ':' (line 1)"
    assert finding.details == ['File "my_rules.py", line 1', "  def forward(params, x)"]


def test_the_child_imports_numpy_and_the_file_only(tmp_path):
    """The student's file runs where neither beanstrain nor TensorFlow was imported."""
    guard = 'import sys\n\nimport numpy as np\n\nassert not {"beanstrain", "tensorflow", "keras"} & set(sys.modules)\n'
    path = slipped(tmp_path, "slope_sgd", "import numpy as np\n", guard)
    assert checker.check_file(path, "beans1-sgd", steps=2).passed


def test_refusals_are_one_line():
    with pytest.raises(UsageError, match="beans4-hidden2 is not one of the NumPy lessons"):
        checker.check_file(SOLUTIONS / "slope_sgd.py", "beans4-hidden2")
    with pytest.raises(UsageError, match="unknown lesson 'beans1-sdg'; did you mean 'beans1-sgd'"):
        checker.check_file(SOLUTIONS / "slope_sgd.py", "beans1-sdg")
    with pytest.raises(UsageError, match="no such file; start one with: beanstrain check --template beans1-sgd"):
        checker.check_file(SOLUTIONS / "absent.py", "beans1-sgd")


@pytest.mark.parametrize("recipe", sorted(checker.LESSONS))
def test_each_template_is_valid_python_whose_todos_are_reported(recipe, tmp_path):
    text = checker.template_text(recipe)
    compile(text, "template", "exec")
    assert text.startswith(f'"""{recipe}: ') and "TODO" in text
    if recipe == "beans3-backprop":  # the untouched template checks: every function is still a TODO
        result = checker.check_file(written(tmp_path, text), recipe, steps=2)
        assert [finding.message.split(" (")[0] for finding in result.findings] == [
            f"{function} at step 1 is not written yet" for function in check_verdicts.FUNCTIONS]


def test_cli_checks_a_file_and_writes_junit(invoke, tmp_path):
    report = tmp_path / "report.xml"
    path = slipped(tmp_path, "neuron_sigmoid", "dz = -2 * (y - a) * a * (1 - a)", "dz = -2 * (y - a)")
    result = invoke("check", path, "--recipe", "beans0-backprop", "--steps", 10, "--junit", report, exit_code=1)
    assert "gradients differs at step 1: w11_1" in result.output
    suite = ElementTree.parse(report).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("testsuite", "3", "1", "0")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert sorted(cases) == ["forward (10 steps)", "gradients (10 steps)", "update (10 steps)"]
    assert cases["gradients (10 steps)"].find("failure").get("message").startswith("gradients differs at step 1")
    assert cases["forward (10 steps)"].find("failure") is None
    right = invoke("check", SOLUTIONS / "neuron_sigmoid.py", "--recipe", "beans0-backprop", "--steps", 10, "--json")
    summary = json.loads(right.output)
    assert summary["passed"] and [finding["passed"] for finding in summary["findings"]] == [True, True, True]


def test_cli_template_and_usage_errors(invoke, tmp_path):
    template = invoke("check", "--template", "beans7-matrix").output
    assert template == checker.template_text("beans7-matrix")
    assert "Error: give your file and its lesson" in invoke("check", exit_code=2).output
    assert "Error: beans4-hidden2 is not one of the NumPy lessons" in invoke(
        "check", SOLUTIONS / "matrix.py", "--recipe", "beans4-hidden2", exit_code=2).output
