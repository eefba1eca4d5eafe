"""`fit --data points.csv`: a CSV of points in place of a generated set, on every engine, through eval,
predict and resume.

The oracle is the generated set itself: a CSV holding a generated draw, its rows placed where the split
from the seed puts train and test, must train to exactly the run on the generated set.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from run_folders import config_of, only_run

from beanstrain.data import TEST_STREAM, TRAIN_STREAM, generate, points_file


def write_as_split(path, name: str, samples: int, seed: int, columns: str) -> str:
    """The generated draw of (name, samples, seed) as a CSV whose split from `seed` gives back its train and test."""
    x_train, y_train = generate(name, samples, 0.0, seed, TRAIN_STREAM)
    x_test, y_test = generate(name, samples, 0.0, seed, TEST_STREAM)
    train, test = points_file.split_rows(2 * samples, 0.5, seed)
    rows = np.empty((2 * samples, x_train.shape[1] + 1), np.float64)
    rows[train] = np.column_stack([x_train, y_train])
    rows[test] = np.column_stack([x_test, y_test])
    np.savetxt(path, rows, delimiter=",", header=columns, comments="", fmt="%.9g")  # float32 survives 9 digits
    return str(path)


@pytest.mark.parametrize("engine", ["fit", "compiled", "numpy"])
def test_a_csv_of_a_generated_draw_trains_as_the_generated_set(fit_json, tmp_path, engine):
    csv_file = write_as_split(tmp_path / "disc.csv", "beans4", 100, 0, "x1,x2,y")
    settings = ["--epochs", 6, "--engine", engine]
    generated = fit_json("beans4-hidden2", *settings)
    mine = fit_json("beans4-hidden2", "--data", csv_file, *settings)
    assert mine["recipe"] == "disc-hidden2" and mine["metrics"] == generated["metrics"]
    assert mine["weights"] == generated["weights"]
    run_dir = mine["run_dir"]
    assert config_of(run_dir)["recipe"]["dataset"] == csv_file
    names = {path.name for path in (tmp_path / "runs" / "disc-hidden2").glob("*/*.png")}
    assert {"data.png", "boundary.png", "surface.png", "network.png", "history.png"} <= names


def test_eval_predict_and_resume_read_the_csv_back(invoke, fit_json, tmp_path, interrupt_at, monkeypatch):
    csv_file = write_as_split(tmp_path / "line.csv", "beans1", 40, 3, "x,y")
    straight = fit_json("--data", csv_file, "--model", "neuron", "--epochs", 8, "--seed", 3, "--engine", "fit")
    evaluated = json.loads(invoke("eval", straight["run_dir"], "--json").stdout)
    assert evaluated["metrics"] == straight["metrics"]["test"]
    answer = invoke("predict", "0.5", "--run", straight["run_dir"], "--json").stdout
    assert "value" in json.loads(answer)[0]  # a regression run answers with a number

    stopped = tmp_path / "stopped"
    interrupt_at(3)
    invoke("fit", "--data", csv_file, "--model", "neuron", "--epochs", 8, "--seed", 3, "--engine", "fit",
           "--out", stopped, "--quiet", exit_code=130)
    monkeypatch.undo()
    resumed = json.loads(invoke("fit", "--resume", only_run(stopped), "--json", "--quiet").stdout)
    assert resumed["metrics"] == straight["metrics"]


def test_a_lesson_recipe_and_the_test_fraction(fit_json, tmp_path):
    csv_file = write_as_split(tmp_path / "sizes.csv", "beans1", 50, 0, "x,y")
    lesson = fit_json("beans1-rosenblatt", "--data", csv_file, "--epochs", 2)
    assert lesson["engine"] == "numpy" and "cost.png" in {path.name for path in
                                                           (tmp_path / "runs" / "sizes-slope").glob("*/*.png")}
    quarter = fit_json("--data", csv_file, "--model", "neuron", "--epochs", 1, "--test-fraction", 0.2)
    assert json.loads((tmp_path / "runs" / "sizes-neuron").joinpath(
        quarter["run_dir"].split("/")[-1], "metrics.json").read_text())


@pytest.mark.parametrize(("arguments", "says"), [
    (["--model", "hidden2", "--features", "x1,x2"], "x2"),
    (["--model", "neuron", "--samples", "50"], "drop --samples"),
    (["--model", "neuron", "--test-fraction", "1.5"], "test fraction must be between 0 and 1"),
])
def test_refusals_are_one_line(invoke, tmp_path, arguments, says):
    csv_file = write_as_split(tmp_path / "line.csv", "beans1", 10, 0, "x,y")
    result = invoke("fit", "--data", csv_file, *arguments, "--out", tmp_path, exit_code=2)
    assert says in result.output and result.output.count("\n") == 1


def test_the_test_fraction_is_for_a_csv_only(invoke, tmp_path):
    result = invoke("fit", "beans4-hidden2", "--test-fraction", "0.3", "--out", tmp_path, exit_code=2)
    assert "--test-fraction splits a CSV of points" in result.output
