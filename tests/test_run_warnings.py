"""Runs that train without learning finish with one warning line per dead end, naming the likely cause.

Each detector is checked on hand-made predictions at its exact threshold and
just past it; whole runs check the warnings reach stderr, metrics.json and
`--json`, and that a run which learns gets none.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain import diagnosis
from beanstrain.diagnosis import DeadLayer, Evidence

ABOVE = np.inf  # np.nextafter(value, ABOVE): the next float past a threshold


def evidence(**changes) -> Evidence:
    """A run that learned: falling loss, spread-out outputs, accuracy well above the majority's 0.5."""
    values = dict(losses=[0.25, 0.1], outputs=np.array([[0.1], [0.9], [0.2], [0.8]]),
                  targets=np.array([0.0, 1.0, 0.0, 1.0]), accuracy_kind="binary", test_accuracy=1.0,
                  learning_rate=0.05, output_activation="sigmoid")
    values.update(changes)
    return Evidence(**values)


def never_called():
    raise AssertionError("the relu probe runs only when a dead end was found")


# --- each detector at its threshold -------------------------------------------------------------------


def test_outputs_spanning_exactly_the_limit_are_constant_and_just_past_it_are_not():
    limit = diagnosis.CONSTANT_SPREAD
    assert diagnosis.constant_spread(np.array([[0.0], [limit], [limit / 2]]), scale=1.0) == limit
    assert diagnosis.constant_spread(np.array([[0.0], [np.nextafter(limit, ABOVE)]]), scale=1.0) is None
    assert diagnosis.constant_spread(np.full((50, 1), 0.73), scale=1.0) == 0.0


def test_the_widest_output_unit_counts_and_regression_scales_by_the_targets_range():
    # softmax over 3 classes: the first unit is constant, the third is not
    outputs = np.array([[0.2, 0.3, 0.5], [0.2, 0.5, 0.3]])
    assert diagnosis.constant_spread(outputs, scale=1.0) is None
    # a regression set whose targets span 4: the limit is 4 * CONSTANT_SPREAD
    limit = 4 * diagnosis.CONSTANT_SPREAD
    assert diagnosis.constant_spread(np.array([[0.0], [limit]]), scale=4.0) == limit
    assert diagnosis.constant_spread(np.array([[0.0], [np.nextafter(limit, ABOVE)]]), scale=4.0) is None


def test_a_final_loss_at_the_stall_line_is_no_lower_and_just_below_it_is():
    line = 1.0 * (1 - diagnosis.LOSS_STALL)
    assert diagnosis.loss_stalled([1.0, 0.7, line]) == (1.0, line)
    assert diagnosis.loss_stalled([1.0, 0.7, np.nextafter(line, 0.0)]) is None
    assert diagnosis.loss_stalled([0.4572, 0.5, 0.5]) == (0.4572, 0.5)  # it rose: no lower
    assert diagnosis.loss_stalled([0.5]) is None  # one epoch has nothing to compare


def test_accuracy_at_the_majority_share_plus_the_margin_is_flagged_and_just_above_is_not():
    labels = np.array([1, 1, 1, 0])  # class 1 is 0.75 of the set
    line = 0.75 + diagnosis.MAJORITY_MARGIN
    assert diagnosis.majority_rate(line, labels) == (1, 0.75)
    assert diagnosis.majority_rate(np.nextafter(line, ABOVE), labels) is None
    assert diagnosis.majority_rate(0.25, labels) == (1, 0.75)  # worse than guessing is flagged too


@pytest.mark.parametrize("kind, targets, labels", [
    ("binary", np.array([[0.0], [1.0], [1.0]]), [0, 1, 1]),
    ("sparse", np.array([3, 7, 7]), [3, 7, 7]),
    ("categorical", np.eye(10)[[3, 7, 7]], [3, 7, 7]),
])
def test_class_labels_read_every_target_encoding(kind, targets, labels):
    assert diagnosis.class_labels(targets, kind).tolist() == labels


# --- the cause named --------------------------------------------------------------------------------


def test_a_run_that_learned_gets_no_warning_and_no_relu_probe():
    assert diagnosis.dead_ends(evidence(), relu_check=never_called) == []


def test_each_symptom_is_one_line_ending_in_the_same_cause():
    stuck = evidence(losses=[0.4572, 0.5, 0.5], outputs=np.ones((4, 1)), test_accuracy=0.5, learning_rate=1e6)
    warnings = diagnosis.dead_ends(stuck, relu_check=lambda: ([DeadLayer("layer 1", 0, 8)], 4))
    assert len(warnings) == 3
    assert warnings[0].startswith("predictions constant over the test set (spread 0 of 1)")
    assert warnings[1].startswith("final loss 0.5 no lower than the first epoch's 0.4572")
    assert warnings[2].startswith("test accuracy 0.5000 no better than always answering the majority class 0")
    assert all("\n" not in warning for warning in warnings)
    assert {warning.split("; likely cause: ")[1] for warning in warnings} == {
        "a learning rate far too high (1e+06): the outputs are pinned at 0 or 1, where the sigmoid has no "
        "gradient; try one 100 to 10000 times lower"}


def test_dead_relu_units_are_named_only_when_they_explain_the_run():
    stuck = evidence(losses=[0.3, 0.3], test_accuracy=0.5)
    one_dead = diagnosis.likely_cause(stuck, [DeadLayer("layer 1", 1, 8), DeadLayer("layer 2", 0, 8)], 100)
    assert "dead relu" not in one_dead and "far too low" in one_dead
    whole_layer = diagnosis.likely_cause(stuck, [DeadLayer("layer 1", 1, 8), DeadLayer("layer 2", 8, 8)], 100)
    assert whole_layer.startswith("dead relu units (9 of 16 output 0 on all 100 training samples probed, "
                                  "all of layer 2)")
    most = diagnosis.likely_cause(stuck, [DeadLayer("layer 1", 5, 8), DeadLayer("layer 2", 4, 8)], 100)
    assert most.startswith("dead relu units (9 of 16")
    half = diagnosis.likely_cause(stuck, [DeadLayer("layer 1", 4, 8), DeadLayer("layer 2", 4, 8)], 100)
    assert "dead relu" not in half


@pytest.mark.parametrize("losses, outputs, expected", [
    ([0.3, 0.35, 0.32], [[0.4], [0.6]], "far too high (0.05): the loss rose"),
    ([0.3, 0.2999, 0.2998], [[0.4], [0.6]], "far too low (0.05)"),
    ([0.3, 0.2, 0.1], [[0.4], [0.6]], "too little training"),
    ([0.3, 0.2, 0.1], [[0.0], [1.0]], "far too high (0.05): the outputs are pinned at 0 or 1"),
])
def test_the_loss_curve_and_the_outputs_tell_a_rate_too_high_from_one_too_low(losses, outputs, expected):
    cause = diagnosis.likely_cause(evidence(losses=losses, outputs=np.array(outputs)), [], 100)
    assert expected in cause


def test_outputs_pinned_at_0_or_1_only_count_for_a_sigmoid_or_softmax():
    linear = evidence(losses=[0.3, 0.2], outputs=np.array([[0.0], [1.0]]), output_activation=None)
    assert "pinned" not in diagnosis.likely_cause(linear, [], 100)


# --- dead relu units, against Keras's own view of the layers -------------------------------------


def test_dead_relu_units_are_counted_on_the_training_inputs():
    from beanstrain.devices import load_keras

    keras = load_keras()
    layers = keras.layers
    model = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(3, activation="relu"),
                              layers.Dense(2, activation="sigmoid"), layers.Dense(1, activation="sigmoid")])
    # On inputs >= 0: unit 0 passes x0, unit 1 is always negative (dead), unit 2 is negative except at x = (2, 2)
    model.layers[0].set_weights([np.array([[1.0, -1.0, 1.0], [0.0, -1.0, 1.0]]), np.array([0.0, -0.5, -3.5])])
    x = np.array([[0.0, 0.0], [1.0, 0.5], [0.5, 1.0]], dtype=np.float32)
    assert [(layer.name, layer.dead, layer.units) for layer in diagnosis.dead_relu_layers(model, x)] == [
        ("layer 1", 2, 3)]
    with_alive_unit = np.concatenate([x, [[2.0, 2.0]]]).astype(np.float32)
    assert diagnosis.dead_relu_layers(model, with_alive_unit)[0].dead == 1


def test_a_convolution_channel_is_dead_only_when_it_is_zero_everywhere():
    from beanstrain.devices import load_keras

    keras = load_keras()
    model = keras.Sequential([keras.Input(shape=(4, 4, 1)), keras.layers.Conv2D(2, kernel_size=1, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[[[1.0, -1.0]]]]), np.zeros(2)])
    images = np.zeros((3, 4, 4, 1), dtype=np.float32)
    images[1, 3, 3, 0] = 1.0  # one bright pixel in one image lights channel 0 only
    assert diagnosis.dead_relu_layers(model, images)[0] == DeadLayer("layer 1", 1, 2)


# --- whole runs ---------------------------------------------------------------------------------------


def test_the_issue_command_warns_but_finishes(invoke, tmp_path):
    """`fit --dataset spiral --model deep8 --learning-rate 1e6`: loss stuck at 0.5, exit 0."""
    result = invoke("fit", "--dataset", "spiral", "--model", "deep8", "--learning-rate", "1e6", "--epochs", 5,
                    "--out", tmp_path, "--quiet", "--json")
    summary = json.loads(result.stdout)
    assert summary["metrics"]["test"]["accuracy"] == 0.5
    assert len(summary["warnings"]) == 3
    assert all("far too high (1e+06)" in warning for warning in summary["warnings"])
    assert [line for line in result.stderr.splitlines() if line.startswith("warning: ")] == [
        f"warning: {warning}" for warning in summary["warnings"]]
    run_dir = Path(summary["run_dir"])
    assert json.loads((run_dir / "metrics.json").read_text())["warnings"] == summary["warnings"]
    assert json.loads((run_dir / "config.json").read_text())["state"] == "finished"


def test_a_run_that_learns_has_an_empty_warning_list(invoke, tmp_path):
    result = invoke("fit", "beans7-neuron", "--epochs", 10, "--out", tmp_path, "--quiet", "--json")
    summary = json.loads(result.stdout)
    assert summary["warnings"] == []
    assert "warning" not in result.stderr
    assert json.loads((Path(summary["run_dir"]) / "metrics.json").read_text())["warnings"] == []


def test_a_learning_rate_far_too_low_is_named_as_such(invoke, tmp_path):
    result = invoke("fit", "--dataset", "beans4", "--model", "hidden2", "--learning-rate", "1e-6", "--epochs", 20,
                    "--out", tmp_path, "--quiet")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert any(line.startswith("warning: final loss ") for line in warnings)
    assert all("a learning rate far too low (1e-06)" in line for line in warnings)
    assert not any("dead relu" in line or "too high" in line for line in warnings)
    assert "run folder:" in result.stdout


def test_dead_relu_units_named_in_a_run_are_dead_by_keras_own_forward_pass(invoke, tmp_path):
    """The count in the warning is checked against each relu layer's output from a Keras functional model."""
    import re

    from beanstrain.data import load_dataset
    from beanstrain.devices import load_keras

    keras = load_keras()
    result = invoke("fit", "--dataset", "circle", "--model", "deep8", "--optimizer", "sgd", "--learning-rate", 5,
                    "--epochs", 20, "--out", tmp_path, "--quiet", "--json")
    summary = json.loads(result.stdout)
    found = re.search(r"dead relu units \((\d+) of (\d+) output 0 on all (\d+) training samples probed",
                      summary["warnings"][0])
    assert found, summary["warnings"]
    model = keras.saving.load_model(Path(summary["run_dir"]) / "model.keras", safe_mode=True)
    recipe = json.loads((Path(summary["run_dir"]) / "config.json").read_text())["recipe"]
    dataset = load_dataset(recipe["dataset"], recipe["samples"], recipe["noise"], recipe["seed"], None)
    relu_outputs = [layer.output for layer in model.layers if layer.get_config().get("activation") == "relu"]
    activations = keras.Model(model.inputs, relu_outputs)([dataset.x_train])
    dead = sum(int(np.sum(np.asarray(values).max(axis=0) <= 0)) for values in activations)
    assert (int(found[1]), int(found[2]), int(found[3])) == (dead, 24, len(dataset.x_train))


def test_a_run_on_a_nonlinear_level_mapping_names_the_mapping_not_the_learning_rate():
    stuck = dict(outputs=np.full((4, 1), 0.5), losses=[0.25, 0.26])
    for mapping in ("ltp", "ltp-ltd"):
        warnings = diagnosis.dead_ends(evidence(**stuck, level_mapping=mapping), relu_check=lambda: ([], 4))
        assert warnings and all(f"likely cause: the level mapping '{mapping}'" in line for line in warnings)
    linear = diagnosis.dead_ends(evidence(**stuck, level_mapping="linear"), relu_check=lambda: ([], 4))
    assert linear and all("learning rate far too high" in line for line in linear)
