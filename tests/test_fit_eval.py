"""`beanstrain fit` and `beanstrain eval` through the CLI: run folders, metrics, gates."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from beanstrain.models import HANDFUL
from beanstrain.recipes import list_recipes
from beanstrain.runs import create_run_dir

TOY_RECIPES = sorted(name for name, recipe in list_recipes().items()
                     if recipe.dataset not in ("mnist", "fashion-mnist"))


@pytest.mark.parametrize("recipe", TOY_RECIPES)
def test_every_recipe_trains_through_the_cli(fit_json, recipe):
    summary = fit_json(recipe, "--epochs", "2")
    run_dir = Path(summary["run_dir"])
    assert summary["recipe"] == recipe and run_dir.parent.name == recipe
    for name in ("model.keras", "config.json", "metrics.json", "history.csv", "data.png", "history.png"):
        assert (run_dir / name).stat().st_size > 0, name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["state"] == "finished" and config["recipe"]["epochs"] == 2
    assert config["device"]["kind"] in ("cpu", "gpu") and config["versions"]["keras"].startswith("3.")
    with open(run_dir / "history.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    regression = "accuracy" not in summary["metrics"]["test"]
    assert ("test_accuracy" in rows[0]) != regression
    assert set(summary["metrics"]) == {"train", "test"}
    # A network of a handful of weights prints them, as the course prints `w=`.
    assert ("weights" in summary) == (config["parameters"] <= HANDFUL)


def test_two_d_run_draws_boundary_and_surface(fit_json):
    run_dir = Path(fit_json("--dataset", "xor", "--model", "deep8", "--epochs", "3", "--samples", "40")["run_dir"])
    assert (run_dir / "boundary.png").exists() and (run_dir / "surface.png").exists()


def test_one_d_run_draws_the_fitted_curve(fit_json):
    assert (Path(fit_json("beans3-hidden2", "--epochs", "2")["run_dir"]) / "fit.png").exists()


def test_beans4_reaches_its_accuracy_at_course_settings(fit_json):
    summary = fit_json("--dataset", "beans4", "--model", "hidden2")
    assert summary["engine"] == "compiled"
    assert json.loads((Path(summary["run_dir"]) / "config.json").read_text())["engine"] == "compiled"
    assert summary["metrics"]["test"]["accuracy"] >= 0.9


def test_same_seed_same_result_other_seed_other_result(fit_json):
    first, again, other = (fit_json("beans4-hidden2", "--epochs", "20", "--seed", seed) for seed in (3, 3, 4))
    assert first["metrics"] == again["metrics"]
    assert first["metrics"] != other["metrics"]


def test_flags_override_the_recipe(fit_json):
    summary = fit_json("--dataset", "spiral", "--model", "deep8", "--optimizer", "adam", "--learning-rate", "0.01",
                       "--epochs", "3", "--batch-size", "25")
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    recorded = (config["recipe"]["optimizer"], config["recipe"]["learning_rate"], config["batch_size"])
    assert recorded == ("adam", 0.01, 25)


def test_short_run_takes_fit_and_records_it(fit_json):
    summary = fit_json("beans4-hidden2", "--epochs", "3")  # 30 steps: compiling would not pay off
    assert summary["engine"] == "fit"
    assert json.loads((Path(summary["run_dir"]) / "config.json").read_text())["engine"] == "fit"


def test_fit_engine_gives_same_layout(fit_json):
    summary = fit_json("beans4-hidden2", "--epochs", "3", "--engine", "fit")
    assert summary["engine"] == "fit"
    assert (Path(summary["run_dir"]) / "history.csv").read_text().count("\n") == 4


def test_batch_larger_than_data_is_clamped_with_a_warning(invoke, tmp_path):
    result = invoke("fit", "beans4-hidden2", "--epochs", "2", "--batch-size", "500", "--out", tmp_path, "--json")
    assert "batch size 500 is larger than the 100 training samples; using 100" in result.stderr
    config = json.loads((Path(json.loads(result.stdout)["run_dir"]) / "config.json").read_text())
    assert config["batch_size"] == 100


def test_human_output_and_json_output(invoke, tmp_path):
    human = invoke("fit", "beans7-neuron", "--epochs", "5", "--out", tmp_path)
    assert "run folder:" in human.stdout and "epoch 5/5" in human.stderr
    machine = invoke("fit", "beans7-neuron", "--epochs", "5", "--out", tmp_path, "--json")
    summary = json.loads(machine.stdout)
    assert set(summary) >= {"run_dir", "recipe", "device", "train_seconds", "metrics"}
    assert "epoch 5/5" in machine.stderr


def test_quiet_silences_progress(invoke, tmp_path):
    result = invoke("fit", "beans7-neuron", "--epochs", "10", "--out", tmp_path, "--quiet")
    assert "epoch" not in result.stderr


def test_progress_in_a_log_stays_short(invoke, tmp_path):
    result = invoke("fit", "beans7-neuron", "--epochs", "3000", "--out", tmp_path)
    assert 2 <= result.stderr.count("epoch ") <= 13


def test_run_folders_are_never_reused(tmp_path):
    folders = {create_run_dir(tmp_path, "beans4-hidden2") for _ in range(20)}
    assert len(folders) == 20


def test_eval_gate(invoke, fit_json, tmp_path):
    summary = fit_json("beans4-hidden2")
    out = tmp_path / "runs"
    passed = json.loads(invoke("eval", "beans4-hidden2", "--out", out, "--min-accuracy", "0.9", "--json").stdout)
    assert passed["passed"] is True and passed["run_dir"] == summary["run_dir"]
    assert passed["metrics"]["accuracy"] == pytest.approx(summary["metrics"]["test"]["accuracy"])
    failed = invoke("eval", "beans4-hidden2", "--out", out, "--min-accuracy", "0.999", exit_code=1)
    assert "below --min-accuracy 0.999" in failed.output
    written = json.loads((Path(summary["run_dir"]) / "eval.json").read_text())
    assert written["passed"] is False and written["min_accuracy"] == 0.999
    by_folder = invoke("eval", summary["run_dir"], "--json")
    assert json.loads(by_folder.stdout)["passed"] is True


def test_eval_without_a_run_names_the_command(invoke, tmp_path):
    result = invoke("eval", "spiral-deep8", "--out", tmp_path, exit_code=1)
    assert "beanstrain fit spiral-deep8" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_eval_skips_unfinished_runs(invoke, fit_json, tmp_path):
    summary = fit_json("beans7-neuron", "--epochs", "2")
    config_path = Path(summary["run_dir"]) / "config.json"
    config = json.loads(config_path.read_text())
    config["state"] = "running"
    config_path.write_text(json.dumps(config))
    invoke("eval", "beans7-neuron", "--out", tmp_path / "runs", exit_code=1)


def test_eval_bad_min_accuracy(invoke, fit_json, tmp_path):
    fit_json("beans7-neuron", "--epochs", "2")
    result = invoke("eval", "beans7-neuron", "--out", tmp_path / "runs", "--min-accuracy", "5", exit_code=2)
    assert "between 0 and 1" in result.output


def test_eval_regression_has_no_accuracy_gate(invoke, fit_json, tmp_path):
    fit_json("beans1-neuron", "--epochs", "2")
    result = invoke("eval", "beans1-neuron", "--out", tmp_path / "runs", "--min-accuracy", "0.5", exit_code=2)
    assert "regression set has no accuracy" in result.output
    shown = invoke("eval", "beans1-neuron", "--out", tmp_path / "runs")
    assert "loss" in shown.output


def test_device_gpu_without_gpu_is_a_usage_error(invoke, tmp_path):
    from beanstrain.devices import load_tensorflow

    if load_tensorflow().config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    result = invoke("fit", "beans4-hidden2", "--device", "gpu", "--out", tmp_path, exit_code=2)
    assert "sees no GPU" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_quiet_run_prints_nothing_on_stderr(tmp_path):
    """TensorFlow's native start-up notices are kept out of beanstrain's output."""
    import os
    import subprocess
    import sys

    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    finished = subprocess.run([sys.executable, "-m", "beanstrain", "fit", "beans7-neuron", "--epochs", "10",
                               "--quiet", "--json", "--out", str(tmp_path)],
                              capture_output=True, text=True, env=environment, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    assert json.loads(finished.stdout)["recipe"] == "beans7-neuron"
