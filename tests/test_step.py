"""`beanstrain step`: the worked step's numbers are the numpy engine's, its gradients tf.GradientTape's."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from beanstrain.cli import cli
from beanstrain.preparation import prepare
from beanstrain.recipes import resolve_recipe
from beanstrain.worked_step import as_markdown, as_text, work_step

# (recipe, step, batch size): one sample, the whole set, a sign rule, Rosenblatt's, a batch of a 2-2-1 net.
CASES = [("beans3-backprop", 1, None), ("beans3-backprop", 137, None), ("beans1-batch", 3, None),
         ("beans1-sign", 4, None), ("beans1-rosenblatt", 250, None), ("beans4-hidden2", 23, None),
         ("beans0-backprop", 7, 5)]


def engine_weights_after(recipe_name: str, steps: int, batch_size: int | None) -> list[np.ndarray]:
    """The numpy engine's own weights after `steps` optimizer steps, from its snapshots."""
    recipe = resolve_recipe(recipe_name, {"batch_size": batch_size} if batch_size else {})
    prepared = prepare(recipe, "cpu", None, io.StringIO(), engine="numpy")
    trainer = prepared.make_trainer()
    trainer.snapshot_steps = frozenset([steps])
    trainer.run(0, -(-steps // prepared.steps_per_epoch))
    return trainer.snapshots[steps]


@pytest.mark.parametrize(("recipe", "step", "batch_size"), CASES)
def test_new_weights_are_the_engines_after_that_many_steps(recipe, step, batch_size):
    worked = work_step(recipe, at=step, batch_size=batch_size)
    expected = [value for array in engine_weights_after(recipe, step, batch_size) for value in array.reshape(-1)]
    assert [worked.after[name] for name in worked.names] == [float(value) for value in expected]
    assert worked.step == step and (batch_size is None or worked.batch_size == batch_size)


@pytest.mark.parametrize(("recipe", "step"), [("beans3-backprop", 40), ("beans4-hidden2", 5), ("beans1-batch", 2)])
def test_gradients_are_tf_gradient_tapes(recipe, step):
    import keras
    import tensorflow as tf

    from beanstrain.objectives import make_loss

    worked = work_step(recipe, at=step)
    prepared = prepare(resolve_recipe(recipe), "cpu", None, io.StringIO(), engine="numpy")
    model = prepared.model
    shapes = [weight.shape for weight in model.get_weights()]
    flat = iter(worked.before[name] for name in worked.names)
    model.set_weights([np.array([next(flat) for _ in range(int(np.prod(shape)))], "float32").reshape(shape)
                       for shape in shapes])
    inputs = np.stack([line.values for line in worked.lines if line.section == "batch" and line.name[0] == "x"], 1)
    targets = np.stack([line.values for line in worked.lines if line.section == "batch" and line.name[0] == "y"], 1)
    with tf.GradientTape() as tape:
        loss = make_loss(prepared.loss_name)(tf.constant(targets, "float32"), model(tf.constant(inputs, "float32")))
    tape_gradients = [keras.ops.convert_to_numpy(g).reshape(-1) for g in tape.gradient(loss, model.trainable_weights)]
    np.testing.assert_allclose([worked.gradients[name] for name in worked.names], np.concatenate(tape_gradients),
                               rtol=2e-5, atol=1e-7)
    assert worked.lines[[line.name for line in worked.lines].index("L")].values[0] == pytest.approx(float(loss),
                                                                                                    rel=1e-6)


def test_each_line_is_the_arithmetic_of_the_lines_before_it():
    """What a student checks by hand: dL/dz is dL/da times da/dz, and a weight's gradient dL/dz times its input."""
    worked = work_step("beans3-backprop", at=3)
    value = {line.name: line.values[0] for line in worked.lines}
    for unit in ("1_2", "1_1", "2_1"):
        assert value[f"dL/dz{unit}"] == pytest.approx(value[f"dL/da{unit}"] * value[f"da{unit}/dz{unit}"], rel=1e-6)
    assert value["dL/dw21_2"] == pytest.approx(value["dL/dz1_2"] * value["a2_1"], rel=1e-6)
    assert value["dL/da1_1"] == pytest.approx(value["dL/dz1_2"] * worked.before["w11_2"], rel=1e-6)
    assert value["a1_1"] == pytest.approx(1 / (1 + np.exp(-value["z1_1"])), rel=1e-6)
    assert value["z1_1"] == pytest.approx(worked.before["w11_1"] * value["x1"] + worked.before["b1_1"], rel=1e-6)
    for name in worked.names:
        assert worked.after[name] == pytest.approx(worked.before[name] - worked.rate * worked.gradients[name], rel=1e-6)


def test_the_page_and_the_text_name_every_weight():
    worked = work_step("beans3-backprop", at=1)
    text, page = as_text(worked), as_markdown(worked)
    for name in worked.names:
        assert f"  {name} " in text and f"dL/d{name} " in text
    assert "z1_2         = w11_2*a1_1 + w21_2*a2_1 + b1_2" in text
    assert r"$\frac{\partial L}{\partial w^{(1)}_{11}}" in page and r"\leftarrow" in page
    assert page.count("$") % 2 == 0


def test_command_prints_writes_markdown_and_json(runner, tmp_path):
    page = tmp_path / "step.md"
    done = runner.invoke(cli, ["step", "beans1-sgd", "--at", "2", "--markdown", str(page)])
    assert done.exit_code == 0, done.output
    assert "beans1-sgd: step 2 (epoch 1, batch 2 of 500)" in done.output and "The update" in done.output
    assert page.read_text().startswith("# beans1-sgd: step 2")
    done = runner.invoke(cli, ["step", "beans1-sgd", "--at", "2", "--json"])
    numbers = json.loads(done.output)
    assert numbers["weights_after"]["w11_1"] == pytest.approx(
        numbers["weights_before"]["w11_1"] - 0.1 * numbers["gradients"]["w11_1"], rel=1e-6)


def test_a_run_folder_is_worked_with_its_own_recipe(runner, tmp_path):
    done = runner.invoke(cli, ["fit", "beans1-sgd", "--epochs", "1", "--seed", "3", "--out", str(tmp_path), "--quiet",
                               "--animation", "none", "--json"])
    assert done.exit_code == 0, done.output
    run_dir = json.loads(done.stdout)["run_dir"]
    from_run = json.loads(runner.invoke(cli, ["step", run_dir, "--at", "5", "--json"]).output)
    assert from_run["seed"] == 3 and from_run["step"] == 5
    seeded, unseeded = work_step("beans1-sgd", at=5, seed=3), work_step("beans1-sgd", at=5)
    assert from_run["weights_after"] == seeded.after != unseeded.after


@pytest.mark.parametrize(("arguments", "message"), [
    (["spiral-deep8"], "has 177 weights, more than step writes out at once (30); show one layer of it with --layer"),
    (["spiral-deep8", "--layer", "9"], "--layer must be between 1 and 4"),
    (["mnist-mlp"], "trains on images"),
    (["beans1-sgd", "--at", "250001"], "--at must be between 1 and 250000, the steps of beans1-sgd's 500 epochs"),
    (["beans1-sgd", "--at", "0"], "--at counts steps from 1"),
    (["spiral-features"], "trains with adam; step works the course's update rules"),
    (["nothing-like-this"], "unknown recipe"),
])
def test_refusals_are_one_line(runner, arguments, message):
    done = runner.invoke(cli, ["step", *arguments])
    assert done.exit_code == 2, done.output
    assert message in done.output and len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output
