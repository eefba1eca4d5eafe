"""The course's hand-written lessons through the command line: every numpy recipe, the rules, initial weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain.data import load_dataset
from beanstrain.engines import ENGINES
from beanstrain.engines.order import epoch_permutation
from beanstrain.recipes import list_recipes
from beanstrain.trace import read_trace

# Every recipe, these lessons too, trains through the command line in tests/test_fit_eval.py.
HAND_ENGINES = {name for name, engine in ENGINES.items() if engine.optimizers == "rules"}
LESSONS = sorted(name for name, recipe in list_recipes().items() if recipe.engine in HAND_ENGINES)


def test_the_lessons_are_the_courses_nine():
    assert len(LESSONS) == 9 and all(name.startswith(("beans0", "beans1", "beans3", "beans7")) for name in LESSONS)


def flat(weights: dict) -> list[float]:
    return [float(value) for value in np.ravel(np.concatenate([np.ravel(v) for v in weights.values()]))]


def test_rosenblatt_takes_the_courses_steps(fit_json):
    """w += alpha * (y - w x) * x, bean by bean in the epoch's order, from w = 0.05: worked out here."""
    summary = fit_json("beans1-rosenblatt", "--epochs", "1", "--samples", "5")
    dataset = load_dataset("beans1", 5, 0.0, 0, None)
    w = np.float32(0.05)
    for index in epoch_permutation(0, 0, 5):
        x, y = dataset.x_train.reshape(-1)[index], dataset.y_train[index]
        w = w + np.float32(0.05) * (y - w * x) * x
    assert summary["weights"]["w"] == pytest.approx(float(w), rel=1e-6)


def test_full_batch_is_one_step_an_epoch(fit_json):
    summary = fit_json("beans1-batch", "--epochs", "3", "--samples", "20")
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["batch_size"] == 20 and config["recipe"]["batch_size"] == 0


@pytest.mark.parametrize("engine", ["fit", "numpy"])
def test_a_keras_engine_and_numpy_start_from_the_recipes_weights(fit_json, engine):
    """A rate too small to move a float32 weight leaves the recipe's W = [0.1, 0.1], b = 0.1 as they were."""
    summary = fit_json("beans7-matrix", "--engine", engine, "--optimizer", "sgd", "--learning-rate", "1e-30",
                       "--epochs", "1", "--samples", "10")
    assert summary["weights"] == {"W": [[pytest.approx(0.1)], [pytest.approx(0.1)]], "b": pytest.approx(0.1)}


def test_uniform_initial_weights_are_the_seeded_draw(fit_json):
    summary = fit_json("beans3-backprop", "--engine", "fit", "--learning-rate", "1e-30", "--epochs", "1",
                       "--samples", "10", "--seed", "4")
    generator = np.random.default_rng(4)
    expected = [generator.random(shape) for shape in ((1, 2), (2,), (2, 1), (1,))]
    np.testing.assert_allclose(flat(summary["weights"]), np.concatenate([e.ravel() for e in expected]), rtol=1e-6)


def test_initial_weights_that_do_not_fit_are_refused_before_training(invoke, tmp_path):
    result = invoke("fit", "beans7-matrix", "--dataset", "beans1", "--out", tmp_path / "runs", exit_code=2)
    assert "initial_weights gives 2 values for a kernel of shape (1, 1)" in result.output
    recipe = tmp_path / "three.toml"
    recipe.write_text('dataset = "beans1"\nmodel = "slope"\ninitial_weights = [0.1, 0.2, 0.3]\n')
    result = invoke("fit", recipe, "--out", tmp_path / "runs", exit_code=2)
    assert "initial_weights gives 3 arrays, and slope has 1: kernel (1, 1)" in result.output
    recipe.write_text('dataset = "beans1"\nmodel = "slope"\ninitial_weights = "ones"\n')
    assert "initial_weights must be" in invoke("fit", recipe, "--out", tmp_path / "runs", exit_code=2).output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["beans1-rosenblatt", "--engine", "compiled"], "optimizer 'rosenblatt' is an update rule of --engine numpy"),
    (["beans1-rosenblatt", "--devices", "2"], "the numpy engine trains on one device only; train without --devices"),
    (["beans4-hidden2", "--engine", "numpy", "--optimizer", "adam"],
     "optimizer 'adam' is Keras's, for the Keras engines; --engine numpy takes the update rules sgd, rosenblatt"),
    (["--dataset", "mnist", "--model", "lenet5", "--engine", "numpy"], "--engine numpy trains slope, neuron"),
    (["--dataset", "mnist", "--model", "mlp", "--engine", "numpy"], "mlp takes 784-vectors"),
    (["beans1-batch", "--batch-size", "-1"], "batch size must be a positive integer, or 0 for the whole"),
    (["beans1-sgd", "--optimizer", "rosenblat"], "did you mean 'rosenblatt'?"),
])
def test_rules_and_engines_that_do_not_go_together_are_one_line(invoke, tmp_path, args, message):
    result = invoke("fit", *args, "--out", tmp_path / "runs", exit_code=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_auto_picks_the_numpy_engine_for_a_rule_only_it_has(fit_json):
    """beans1 with slope resolves to a lesson recipe (engine numpy): `--engine auto` undoes that."""
    summary = fit_json("--dataset", "beans1", "--model", "slope", "--engine", "auto", "--optimizer", "sign",
                       "--learning-rate", "0.01", "--epochs", "1", "--samples", "5")
    assert summary["engine"] == "numpy"
    assert fit_json("--dataset", "beans1", "--model", "slope", "--engine", "auto", "--optimizer", "sgd",
                    "--epochs", "1", "--samples", "5")["engine"] == "fit"


def test_each_rule_leaves_its_own_path_inside_the_first_epoch(fit_json):
    """The trace is taken by step: sign moves w by exactly its step each update, Rosenblatt by shrinking ones."""
    sign = read_trace(Path(fit_json("beans1-sign", "--epochs", "2", "--samples", "100")["run_dir"]))
    rosenblatt = read_trace(Path(fit_json("beans1-rosenblatt", "--epochs", "2", "--samples", "30")["run_dir"]))
    for trace, per_epoch in ((sign, 10), (rosenblatt, 30)):  # 100 beans in tens, 30 beans one at a time
        assert trace.steps == list(range(2 * per_epoch + 1))  # fewer steps than snapshots: every one
        assert trace.epochs == [step / per_epoch for step in trace.steps]
    moves = np.diff(sign.weight(0).reshape(-1))
    np.testing.assert_allclose(np.abs(moves), 0.01, rtol=1e-4)  # the step, up or down, update after update
    first = rosenblatt.weight(0).reshape(-1)[:31]  # epoch 1, bean by bean
    assert len(np.unique(first)) > 10
    assert np.ptp(np.abs(np.diff(first))) > 0.01  # steps of alpha * (y - w x) * x: no two rules alike


def test_every_frame_reports_the_loss_of_the_weights_it_draws(fit_json):
    """Each snapshot's figures are the run's loss on the training points for those very weights (Keras's)."""
    from beanstrain.devices import load_keras
    from beanstrain.plots import RunOutputs
    from beanstrain.plots.replay import Replay

    summary = fit_json("beans1-rosenblatt", "--epochs", "1")  # 100 beans, one a step
    run_dir = Path(summary["run_dir"])
    keras = load_keras()
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    trace = read_trace(run_dir)
    dataset = load_dataset("beans1", 100, 0.0, 0, None)
    replay = Replay.of(RunOutputs(dataset, None, None, [], [], model=model, trace=trace, loss_name="mse"))
    assert len(replay.losses) == len(trace.epochs) == 101
    for index in (0, 7, 100):
        model.set_weights(trace.snapshots[index])
        expected = model.evaluate(dataset.x_train, dataset.y_train.reshape(-1, 1), verbose=0)
        assert replay.losses[index] == pytest.approx(expected if np.isscalar(expected) else expected[0], rel=1e-4)
    assert replay.losses[-1] == pytest.approx(summary["metrics"]["train"]["loss"], rel=1e-4)
