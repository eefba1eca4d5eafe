"""Networks a student describes: the flags and recipe keys, the input features, refusals, every command on one."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from beanstrain import files
from beanstrain.features import FEATURES, apply_features


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def no_data_read(monkeypatch):
    """A refusal must come before any data is drawn or read: drawing fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("data was read before the refusal")

    monkeypatch.setattr("beanstrain.preparation.load_dataset", refuse)


@pytest.mark.parametrize("flags, message", [
    (["--hidden", "0,3"], "--hidden 0,3: every hidden layer needs at least one unit (0 alone means no hidden layer)"),
    (["--hidden", "-1"], "--hidden -1: every hidden layer needs at least one unit"),
    (["--hidden", "a,b"], "--hidden a,b: give the units of each hidden layer as whole numbers"),
    (["--hidden", "100000000,100000000"], "--hidden 100000000,100000000: a network of 10,000,000,500,000,001 "
                                          "weights needs about"),
    (["--activation", "tanhh"], "unknown activation 'tanhh'; did you mean 'tanh'?"),
    (["--activation", "tanh,relu"], "activation lists 2 activations (tanh, relu) for 1 hidden layer"),
    (["--features", "x3"], "--features: unknown feature 'x3'"),
    (["--features", "x1,x1"], "--features: a feature is given twice"),
    (["--l2", "-1"], "--l2 must be a finite number >= 0"),
    (["--l1", "nan"], "--l1 must be a finite number >= 0"),
    (["--dropout", "1.5"], "--dropout must be a rate in [0, 1)"),
])
def test_a_bad_description_is_one_line_before_any_data(invoke, tmp_path, no_data_read, flags, message):
    result = invoke("fit", "beans4-hidden2", *flags, "--out", tmp_path / "runs", exit_code=2)
    assert message in one_line(result)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["mnist-lenet", "--hidden", "3"], "model 'lenet5' is not a stack of dense layers"),
    (["beans3-hidden2", "--features", "x1,x2"], "--features: beans3 has one input, x1; x2 need a second"),
    (["gender-softmax2", "--features", "x1"], "--features are for the 1-D and 2-D sets; gender has 3 inputs"),
])
def test_a_description_that_does_not_fit_is_refused(invoke, tmp_path, no_data_read, args, message):
    result = invoke("fit", *args, "--out", tmp_path / "runs", exit_code=2)
    assert message in one_line(result)


def test_a_bad_description_in_a_recipe_file_is_refused(invoke, tmp_path, no_data_read):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('dataset = "beans4"\nmodel = "hidden2"\nhidden = [2, 2]\nactivation = ["tanh", "relu", "relu"]\n')
    result = invoke("fit", recipe, "--out", tmp_path / "runs", exit_code=2)
    assert "activation lists 3 activations (tanh, relu, relu) for 2 hidden layers" in one_line(result)


def test_every_feature_is_its_formula():
    x = np.random.default_rng(0).normal(size=(50, 2))
    x1, x2 = x[:, 0], x[:, 1]
    formulas = {"x1": x1, "x2": x2, "x1^2": x1 ** 2, "x2^2": x2 ** 2, "x1*x2": x1 * x2, "sin(x1)": np.sin(x1),
                "sin(x2)": np.sin(x2)}
    assert set(formulas) == set(FEATURES)
    columns = apply_features(list(formulas), x)
    for column, formula in zip(columns.T, formulas.values(), strict=True):
        np.testing.assert_allclose(column, formula)


def test_the_keras_layer_computes_the_same_features():
    from beanstrain.features import features_layer

    x = np.random.default_rng(1).normal(size=(9, 2)).astype("float32")
    layer = features_layer()(names=list(FEATURES))
    np.testing.assert_allclose(np.asarray(layer(x)), apply_features(list(FEATURES), x), rtol=1e-6, atol=1e-6)


def test_a_described_network_through_fit_eval_compare_and_report(invoke, fit_json, tmp_path):
    """--hidden, --activation, --l2, --dropout and --features: recorded in config.json, applied again by eval,
    drawn by every picture of a 2-D run, compared with the course's network."""
    features = "x1,x2,x1^2,x2^2,x1*x2"
    described = fit_json("beans4-hidden2", "--epochs", "30", "--hidden", "3,2", "--activation", "tanh", "--l2",
                         "0.001", "--dropout", "0.1", "--features", features)
    plain = fit_json("beans4-hidden2", "--epochs", "30")
    run_dir = described["run_dir"]
    config = files.read_json(f"{run_dir}/config.json")
    recipe = config["recipe"]
    assert (recipe["hidden"], recipe["activation"], recipe["l2"], recipe["dropout"], recipe["features"]) == \
        ([3, 2], "tanh", 0.001, 0.1, features.split(","))
    for picture in ("boundary.png", "neurons.png", "weights.png", "training.gif", "report.html"):
        assert (tmp_path / "runs").joinpath(run_dir).exists()
        assert (files.Path(run_dir) / picture).is_file(), picture
    result = json.loads(invoke("eval", run_dir, "--json").stdout)
    assert result["metrics"] == pytest.approx(described["metrics"]["test"], rel=1e-5)
    table = invoke("compare", run_dir, plain["run_dir"], "--out", tmp_path / "runs").stdout
    assert "hidden" in table and "3,2" in table
    assert invoke("report", run_dir).exit_code == 0


def test_a_named_description_is_the_named_network(fit_json):
    """--hidden 2 --activation sigmoid is beans4-hidden2 itself: the same run to the bit."""
    plain = fit_json("beans4-hidden2", "--epochs", "20")
    described = fit_json("beans4-hidden2", "--epochs", "20", "--hidden", "2", "--activation", "sigmoid")
    assert plain["metrics"] == described["metrics"]
    assert not math.isnan(plain["metrics"]["test"]["loss"])


DESCRIBED_FLAGS = ["--hidden", "3,2", "--activation", "tanh", "--l2", "0.001", "--dropout", "0.2", "--features",
                   "x1,x2,x1*x2"]


@pytest.mark.parametrize("engine", ["numpy", "compiled"])
def test_a_described_run_interrupted_then_resumed_equals_an_uninterrupted_one(invoke, fit_json, tmp_path,
                                                                               monkeypatch, interrupt_at, engine):
    from run_folders import config_of, only_run
    from test_resume import assert_same_model

    args = ["beans4-hidden2", "--epochs", 300, "--engine", engine, *DESCRIBED_FLAGS]
    interrupt_at(3)
    invoke("fit", *args, "--out", tmp_path / "stopped", exit_code=130)
    monkeypatch.undo()
    run_dir = only_run(tmp_path / "stopped")
    assert config_of(run_dir)["state"] == "interrupted"
    resumed = json.loads(invoke("fit", "--resume", run_dir, "--json", "--quiet").stdout)
    straight = fit_json(*args)
    assert_same_model(run_dir, straight["run_dir"])
    assert resumed["metrics"] == straight["metrics"]
    from beanstrain.trace import read_trace

    resumed_trace, straight_trace = read_trace(run_dir), read_trace(straight["run_dir"])
    assert len(resumed_trace.gradient_norms) == len(resumed_trace.epochs) > 100
    np.testing.assert_array_equal(np.stack(resumed_trace.gradient_norms), np.stack(straight_trace.gradient_norms))


def test_the_command_that_trains_a_described_run_again():
    from pathlib import Path

    from beanstrain.recipes import fit_words, resolve_recipe

    recipe = resolve_recipe("beans4-hidden2", {"hidden": [3, 2], "activation": ["tanh", "relu"], "l1": 0.01,
                                               "features": ["x1", "x1*x2"]})
    assert fit_words(recipe, Path("runs/r")) == ["beanstrain", "fit", "beans4-hidden2", "--hidden", "3,2",
                                                  "--activation", "tanh,relu", "--l1", "0.01", "--features",
                                                  "x1,x1*x2"]


def test_a_sweep_grid_of_descriptions():
    from beanstrain.recipes import resolve_recipe
    from beanstrain.sweep import combinations, describe, parse_grid, trial_recipe

    grid = parse_grid(["hidden=1,2,3:3", "activation=tanh,relu"])
    assert grid == {"hidden": [[1], [2], [3, 3]], "activation": ["tanh", "relu"]}
    trials = [trial_recipe(resolve_recipe("beans4-hidden2"), settings) for settings in combinations(grid)]
    assert [(trial.hidden, trial.activation) for trial in trials][-1] == ([3, 3], "relu")
    assert describe(combinations(grid)[-1]) == "hidden=3:3 activation=relu"
    with pytest.raises(Exception, match="unknown activation 'tan'"):
        trial_recipe(resolve_recipe("beans4-hidden2"), parse_grid(["activation=tan"]) and {"activation": "tan"})


@pytest.mark.parametrize("flags, units", [(["--hidden", "3"], 3), (["--hidden", "2", "--features", "x1,x2,x1*x2"], 2),
                                          (["--hidden", "4,4"], None)])
def test_each_hidden_units_line_lies_where_its_input_is_zero(fit_json, flags, units):
    """The lines boundary.png and the animation draw: on each, the unit's input w . x + b is 0, by the formula."""
    from beanstrain.data import load_dataset
    from beanstrain.evaluation import load_run_model
    from beanstrain.plots.pictures import unit_inputs_of
    from beanstrain.plots.toy import _grid, unit_lines

    run_dir = files.Path(fit_json("beans4-hidden2", "--epochs", "30", *flags)["run_dir"])
    model = load_run_model(run_dir, files.read_json(run_dir / "config.json"))
    inputs_of = unit_inputs_of(model)
    if units is None:
        assert inputs_of is None  # two hidden layers: no straight lines to draw
        return
    grid_x, grid_y, grid = _grid(load_dataset("beans4", 100, 0.0, 0))
    kernel, bias = model.get_weights()[:2]
    names = flags[3].split(",") if "--features" in flags else ["x1", "x2"]
    checked = 0
    for unit, segments in enumerate(unit_lines(grid_x, grid_y, inputs_of(grid))):
        for segment in segments:
            points = segment[:: max(1, len(segment) // 5)]
            unit_input = apply_features(names, points) @ kernel[:, unit] + bias[unit]
            scale = np.abs(kernel[:, unit]).sum() * 0.01  # a grid cell's worth of the input
            np.testing.assert_allclose(unit_input, 0.0, atol=scale)
            checked += len(points)
    assert checked > 0
    assert (run_dir / "boundary.png").is_file()


def test_compare_draws_the_boundaries_of_runs_on_one_2d_set(invoke, fit_json, tmp_path):
    """Three widths on one draw of beans4: a boundary panel each, with the units' lines of the one-layer nets;
    another seed is another draw of the data, so no panels."""
    from beanstrain.compare import load_runs, shared_boundaries

    run_dirs = [fit_json("beans4-hidden2", "--epochs", "5", "--hidden", units, "--animation", "none")["run_dir"]
                for units in ("1", "3", "4,4")]
    compared = load_runs(run_dirs, tmp_path / "runs")
    assert [run.label for run in compared] == ["hidden 1", "hidden 3", "hidden 4,4"]
    dataset, panels = shared_boundaries(compared)
    assert dataset.name == "beans4" and len(panels) == 3
    grid = np.array([[0.5, 0.5], [1.5, 1.0]], "float32")
    assert [None if unit_inputs is None else unit_inputs(grid).shape for _, unit_inputs in panels] == \
        [(2, 1), (2, 3), None]
    plot = tmp_path / "widths.png"
    invoke("compare", *run_dirs, "--plot", plot)
    assert plot.stat().st_size > 0
    other = fit_json("beans4-hidden2", "--epochs", "5", "--seed", "1", "--animation", "none")["run_dir"]
    assert shared_boundaries(load_runs([run_dirs[0], other], tmp_path / "runs")) is None


@pytest.mark.parametrize("args", [
    ["beans4-hidden2"],                                                     # 2-2-1
    ["spiral-deep8"],                                                       # 8-8-8
    ["spiral-deep8", "--hidden", "4,4,4,4,4,4,4,4", "--activation", "tanh"],  # deeper than drawn
    ["spiral-deep8", "--hidden", "12,3"],                                   # wider than drawn
    ["beans3-hidden2"],                                                     # a 1-D set
    ["spiral-features"],                                                    # the features recipe
    ["gender-softmax2"],                                                    # three inputs: plain nodes
])
def test_every_dense_run_gets_its_network_picture(fit_json, args):
    from beanstrain.plots.network import MOST_LAYERS, MOST_UNITS

    run_dir = files.Path(fit_json(*args, "--epochs", "3", "--animation", "none")["run_dir"])
    assert (run_dir / "network.png").stat().st_size > 10_000
    assert MOST_UNITS == 8 and MOST_LAYERS == 6  # the Playground's limits


def test_the_network_pictures_inputs_are_its_features():
    from beanstrain.models import build_model, describe
    from beanstrain.plots.network import input_names, layer_kernels

    model = build_model("deep8", (2,), "binary", 2, describe("deep8", hidden=[3], features=["x1", "sin(x2)"]))
    assert input_names(model, 2, "spiral") == ["x1", "sin(x2)"]
    assert [kernel.shape for kernel in layer_kernels(model)] == [(2, 3), (3, 1)]
    assert input_names(build_model("softmax2", (3,), "multiclass", 2), 3, "gender") == ["weight", "height", "age"]


@pytest.mark.parametrize("engine", ["compiled", "fit", "numpy"])
def test_every_engine_records_each_layers_gradient_as_gradient_tape_measures_it(fit_json, engine):
    """The trace's gradient norms at the last snapshot (the trained weights) against GradientTape's on the same
    training samples; gradients.png is drawn from them."""
    import tensorflow as tf

    from beanstrain.data import load_dataset
    from beanstrain.evaluation import load_run_model
    from beanstrain.objectives import encode_targets, make_loss
    from beanstrain.trace import read_trace

    epochs = 3 if engine == "fit" else 20
    run_dir = files.Path(fit_json("spiral-deep8", "--epochs", epochs, "--engine", engine, "--hidden", "4,4",
                                  "--activation", "sigmoid", "--features", "x1,x2,x1*x2", "--l2", "0.01",
                                  "--animation", "none")["run_dir"])
    trace = read_trace(run_dir)
    assert len(trace.gradient_layers) == 3 and trace.gradient_layers[-1] == "output"
    assert len(trace.gradient_norms) == len(trace.epochs)
    model = load_run_model(run_dir, files.read_json(run_dir / "config.json"))
    dataset = load_dataset("spiral", 100, 0.0, 0)
    x = dataset.x_train
    y = encode_targets(dataset.y_train, dataset.task, "mse", dataset.num_classes)
    with tf.GradientTape() as tape:
        loss = make_loss("mse")(y, model(x, training=False)) + tf.add_n(model.losses)
    kernels = [layer.kernel for layer in model.layers if type(layer).__name__ == "Dense"]
    expected = [float(tf.norm(gradient)) for gradient in tape.gradient(loss, kernels)]
    np.testing.assert_allclose(trace.gradient_norms[-1], expected, rtol=1e-4)
    assert (run_dir / "gradients.png").stat().st_size > 0
