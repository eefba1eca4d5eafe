"""`beanstrain predict` of points: each point through the run's own features and network, answered per task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beanstrain import files, runs
from beanstrain.evaluation import load_run_model
from beanstrain.plots.replay import dense_layers, forward


def network_outputs(run_dir, points):
    """The oracle: the trained weights replayed in NumPy (features included), not the Keras network predict uses."""
    model = load_run_model(files.Path(run_dir), files.read_json(files.Path(run_dir) / runs.CONFIG))
    return forward(dense_layers(model), model.get_weights(), np.asarray(points, np.float64))[-1]


def test_points_of_a_features_run_are_answered_with_its_features(invoke, fit_json, tmp_path):
    run_dir = fit_json("spiral-features", "--epochs", "20", "--animation", "none")["run_dir"]
    result = invoke("predict", "--run", run_dir, "1.0,0.3", "-2,1.5", "--json")
    answers = json.loads(result.stdout)
    expected = network_outputs(run_dir, [[1.0, 0.3], [-2, 1.5]])[:, 0]
    for answer, probability in zip(answers, expected, strict=True):
        assert answer["probabilities"][1] == pytest.approx(probability, rel=1e-5)
        assert answer["predicted"] == int(probability > 0.5) and answer["label"] == str(answer["predicted"])
    text = invoke("predict", "--run", run_dir, "1.0,0.3").stdout.splitlines()
    assert text[1] == f"1.0,0.3: class {answers[0]['predicted']} (probability {answers[0]['probability']:.4f})"


def test_the_gender_net_says_female_or_male(invoke, fit_json):
    run_dir = fit_json("gender-softmax2", "--epochs", "3")["run_dir"]
    answers = json.loads(invoke("predict", "--run", run_dir, "0,0,0", "2,2,-2", "--json").stdout)
    expected = network_outputs(run_dir, [[0, 0, 0], [2, 2, -2]])
    for answer, row in zip(answers, expected, strict=True):
        np.testing.assert_allclose(answer["probabilities"], row, rtol=1e-5)
        assert answer["label"] == ("female", "male")[int(np.argmax(row))]


def test_a_regression_run_gives_its_value_and_a_csv_file_is_read(invoke, fit_json, tmp_path):
    run_dir = fit_json("beans1-neuron", "--epochs", "5")["run_dir"]
    points = tmp_path / "beans.csv"
    points.write_text("size\n0.5\n\n0.9\n")
    answers = json.loads(invoke("predict", "--run", run_dir, "--points", points, "--json").stdout)
    assert [answer["point"] for answer in answers] == ["0.5", "0.9"]
    np.testing.assert_allclose([answer["value"] for answer in answers], network_outputs(run_dir, [[0.5], [0.9]])[:, 0],
                               rtol=1e-5)


def test_a_bad_point_is_one_line_naming_it_and_the_others_are_answered(invoke, fit_json):
    run_dir = fit_json("beans4-hidden2", "--epochs", "2")["run_dir"]
    result = invoke("predict", "--run", run_dir, "1,1", "1,nan", "1,2,3", "a,b", "2,inf", "0.5,0.5", exit_code=1)
    lines = result.output.splitlines()
    assert "Error: point 1,nan: 'nan' is not a finite number" in lines
    assert "Error: point 1,2,3: 3 values, and the run's network takes 2 (one per input of its dataset)" in lines
    assert "Error: point a,b: 'a' is not a number" in lines
    assert "Error: point 2,inf: 'inf' is not a finite number" in lines
    assert sum(line.startswith(("1,1: ", "0.5,0.5: ")) for line in lines) == 2


@pytest.mark.parametrize("args, message", [
    (["--plot", "x.png", "1,1"], "--plot is for images, not points"),
    (["--points", "missing.csv"], "--points missing.csv: no such file"),
])
def test_points_refusals(invoke, fit_json, args, message):
    run_dir = fit_json("beans4-hidden2", "--epochs", "1")["run_dir"]
    result = invoke("predict", "--run", run_dir, *args, exit_code=2)
    assert result.output.strip() == f"Error: {message}"


def test_nothing_to_predict_is_refused(invoke, tmp_path):
    result = invoke("predict", "--out", tmp_path, exit_code=2)
    assert "give IMAGE files for an image run, or POINTs" in result.output
