"""`fit`, `eval` and `data` on MNIST-format sets, through the CLI, on small files written in tmp_path.

The files hold learnable blobs (tests/mnist_files.py): 300 training and 100
test images, each class a bright square in its own place.  No test finds the
real datasets or tries a download.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from mnist_files import blob_splits, random_splits, write_file, write_idx_folder, write_npz

from beanstrain.data import list_datasets
from beanstrain.data.locate import search_places
from beanstrain.models import NETWORKS
from beanstrain.recipes import list_recipes

IMAGE_RECIPES = sorted(name for name, recipe in list_recipes().items() if recipe.dataset in list_datasets("image"))
IMAGE_PICTURES = ("samples.png", "confusion.png", "predictions.png", "wrong.png", "history.png")


pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def blobs_npz(tmp_path):
    return write_npz(tmp_path / "blobs.npz", blob_splits())


# Recipes that train on the whole training set in every step, as the course's GradientTape loop does:
# no images held out, and no final figure in the course to expect.
WHOLE_SET = {"mnist-tape"}


def test_course_image_recipes_exist():
    assert {"mnist-mlp", "mnist-mlp512", "mnist-dense128", "mnist-lenet", "fashion-lenet", *WHOLE_SET} <= set(
        IMAGE_RECIPES)
    for name in set(IMAGE_RECIPES) - WHOLE_SET:
        recipe = list_recipes()[name]
        # A run on levels measures the test set every epoch, as the course's experiment does.
        assert recipe.validation_split == (0.0 if recipe.levels else 0.1)
        assert recipe.course_result and recipe.expected_accuracy


def test_course_settings_of_mnist_tape():
    recipe = list_recipes()["mnist-tape"]
    assert (recipe.model, recipe.epochs, recipe.batch_size, recipe.optimizer, recipe.learning_rate, recipe.loss,
            recipe.validation_split, recipe.engine) == (
        "mlp-sigmoid", 100, 60_000, "adam", None, "sparse_categorical_crossentropy", 0.0, "compiled")


def test_course_settings_of_mnist_lenet():
    recipe = list_recipes()["mnist-lenet"]
    assert (recipe.model, recipe.epochs, recipe.batch_size, recipe.optimizer, recipe.learning_rate, recipe.loss) == (
        "lenet5", 50, 1024, "sgd", 0.05, "categorical_crossentropy")


@pytest.mark.parametrize("recipe", IMAGE_RECIPES)
def test_every_image_recipe_trains_through_the_cli(fit_json, blobs_npz, recipe):
    summary = fit_json(recipe, "--epochs", "1", "--data", blobs_npz)
    run_dir = Path(summary["run_dir"])
    assert summary["recipe"] == recipe
    on_levels = list_recipes()[recipe].levels
    # A dense network's trace measures each layer's gradient: gradients.png.
    dense = NETWORKS[list_recipes()[recipe].model].description is not None
    pictures = IMAGE_PICTURES + (("gradients.png",) if dense else ()) + (("levels.png",) if on_levels else ())
    for name in ("model.keras", "config.json", "metrics.json", "history.csv", *pictures):
        assert (run_dir / name).stat().st_size > 0, name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["state"] == "finished" and config["data_source"] == str(blobs_npz)
    assert config["pictures"] == list(pictures)
    with open(run_dir / "history.csv") as stream:
        rows = list(csv.DictReader(stream))
    # With no images held out, the test set is measured every epoch.
    held = "val" if list_recipes()[recipe].validation_split else "test"
    held_out = [f"{held}_loss", f"{held}_accuracy"]
    assert list(rows[0]) == ["epoch", "loss", "accuracy", *held_out] and len(rows) == 1
    assert 0.0 <= summary["metrics"]["test"]["accuracy"] <= 1.0


def test_dense128_learns_the_blobs(fit_json, blobs_npz):
    assert fit_json("mnist-dense128", "--epochs", "3", "--data", blobs_npz)["metrics"]["test"]["accuracy"] >= 0.9


def test_lenet_learns_the_blobs(blob_run):
    assert blob_run["summary"]["metrics"]["test"]["accuracy"] >= 0.9


def test_fit_on_an_idx_folder(fit_json, tmp_path):
    folder = write_idx_folder(tmp_path / "idx", blob_splits(train=60, test=20), gz=True)
    summary = fit_json("--dataset", "fashion-mnist", "--model", "mlp512", "--epochs", "1", "--data", folder)
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert summary["recipe"] == "fashion-mnist-mlp512" and config["data_source"] == str(folder)


def test_fit_finds_beanstrain_data(fit_json, tmp_path, monkeypatch):
    path = write_npz(tmp_path / "shared" / "mnist.npz", blob_splits(train=60, test=20))
    monkeypatch.setenv("BEANSTRAIN_DATA", str(tmp_path / "shared"))
    summary = fit_json("mnist-mlp512", "--epochs", "1")
    assert json.loads((Path(summary["run_dir"]) / "config.json").read_text())["data_source"] == str(path)


def test_fit_without_data_says_where_it_looked_and_how_to_get_it(invoke, tmp_path):
    result = invoke("fit", "mnist-lenet", "--out", tmp_path / "runs", exit_code=1)
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and "mnist was not found (looked in" in message
    assert "copy mnist.npz to" in message and "--data PATH" in message
    assert not list((tmp_path / "runs").glob("*/*"))  # no run folder for a run that never started


def test_fit_with_a_data_path_that_does_not_exist(invoke, tmp_path):
    result = invoke("fit", "mnist-lenet", "--data", tmp_path / "nowhere.npz", "--out", tmp_path, exit_code=2)
    assert "does not exist" in result.output


# --- eval: the gate and per-class accuracy -----------------------------------

def copy_run(blob_run, tmp_path, **config_changes) -> Path:
    """A copy of the session's LeNet run under tmp_path/runs, with config.json fields changed."""
    source = Path(blob_run["summary"]["run_dir"])
    run_dir = tmp_path / "runs" / "mnist-lenet" / source.name
    shutil.copytree(source, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, **config_changes}))
    return run_dir


def test_eval_gate_and_per_class_accuracy(invoke, blob_run, tmp_path):
    from beanstrain.report import run_context

    run_dir = copy_run(blob_run, tmp_path)
    fitted = json.loads((run_dir / "metrics.json").read_text())["per_class_accuracy"]
    assert len(run_context(run_dir)["per_class"]) == 10  # a fresh run's page shows them, before any eval
    out = tmp_path / "runs"
    passed = invoke("eval", "mnist-lenet", "--out", out, "--min-accuracy", "0.5")
    assert "100 test samples" in passed.output
    for digit in "0123456789":
        assert f"  class {digit} " in passed.output
    failed = invoke("eval", "mnist-lenet", "--out", out, "--min-accuracy", "1.0", "--data", blob_run["data"],
                    exit_code=1 if blob_run["summary"]["metrics"]["test"]["accuracy"] < 1.0 else 0)
    if failed.exit_code:
        assert "below --min-accuracy 1.0" in failed.output
    written = json.loads((run_dir / "eval.json").read_text())
    assert set(written["per_class_accuracy"]) == set("0123456789") and written["min_accuracy"] == 1.0
    assert fitted == pytest.approx(written["per_class_accuracy"])  # fit's figures are eval's, on the same data
    assert written["metrics"]["accuracy"] == pytest.approx(blob_run["summary"]["metrics"]["test"]["accuracy"])


def test_eval_on_other_data(invoke, blob_run, tmp_path):
    run_dir = copy_run(blob_run, tmp_path)
    other = write_npz(tmp_path / "other.npz", blob_splits(seed=5, train=30, test=40))
    result = json.loads(invoke("eval", run_dir, "--data", other, "--min-accuracy", "0.5", "--json").stdout)
    assert result["passed"] is True and set(result["per_class_accuracy"]) == set("0123456789")
    noise = write_npz(tmp_path / "noise.npz", random_splits(seed=1, train=30, test=200))
    gate = invoke("eval", run_dir, "--data", noise, "--min-accuracy", "0.9", "--json", exit_code=1)
    assert json.loads(gate.stdout)["passed"] is False


def test_eval_when_the_data_is_gone(invoke, blob_run, tmp_path):
    gone = tmp_path / "moved.npz"
    run_dir = copy_run(blob_run, tmp_path, data_path=str(gone))
    result = invoke("eval", run_dir, exit_code=2)
    assert f"data path {gone} does not exist" in result.output


# --- data: where each set was found ----------------------------------------

def test_data_lists_every_image_set(invoke):
    output = invoke("data").output
    for name in list_datasets("image"):
        assert f"{name}: not found; looked in:" in output
        for place in search_places(name):
            assert f"    {place}\n" in output


def test_data_found_and_sizes(invoke, tmp_path):
    path = write_npz(tmp_path / "keras-home" / "datasets" / "mnist.npz", random_splits(train=30, test=12))
    assert invoke("data", "mnist").output == f"mnist: {path} (30 train / 12 test)\n"
    listing = json.loads(invoke("data", "--json").stdout)
    assert [info["name"] for info in listing] == list(list_datasets("image"))
    assert listing[0] == {"name": "mnist", "found": str(path), "looked_in": [str(path)], "train": 30, "test": 12,
                          "problem": None}
    assert listing[1]["found"] is None


def test_data_given_path_and_environment(invoke, tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "idx", random_splits(train=25, test=5))
    assert "(25 train / 5 test)" in invoke("data", "fashion-mnist", "--data", folder).output
    monkeypatch.setenv("BEANSTRAIN_DATA", str(tmp_path))
    write_npz(tmp_path / "fashion-mnist.npz", random_splits(train=7, test=3))
    expected = f"fashion-mnist: {tmp_path / 'fashion-mnist.npz'} (7 train / 3 test)\n"
    assert invoke("data", "fashion-mnist").output == expected


def test_data_named_and_missing_or_broken_exits_1(invoke, tmp_path):
    missing = invoke("data", "mnist", exit_code=1)
    assert "to get it: copy mnist.npz to" in missing.output
    broken = write_file(tmp_path / "keras-home" / "datasets" / "mnist.npz", b"not a zip")
    result = invoke("data", "mnist", exit_code=1)
    assert f"but it cannot be read: {broken}: is not a .npz file" in result.output


def test_data_unknown_name_is_a_usage_error(invoke):
    assert "did you mean 'fashion-mnist'" in invoke("data", "fashion", exit_code=2).output
