"""What a run reports about itself: metrics.json against Keras's evaluate, and `eval`'s per-class
accuracy and gate against a network whose every prediction is known in advance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mnist_files import isolate_image_data, write_npz

from beanstrain import files, runs
from beanstrain.data import load_dataset
from beanstrain.devices import load_keras

keras = load_keras()


# Multiclass runs: tests/test_compiled_images.py.
@pytest.mark.parametrize("recipe", ["beans4-hidden2", "beans1-neuron"])
def test_metrics_json_is_keras_evaluate_of_the_saved_model(invoke, fit_json, no_pictures, recipe):
    summary = fit_json(recipe, "--epochs", "3", "--samples", "60")
    run_dir = Path(summary["run_dir"])
    metrics = json.loads((run_dir / runs.METRICS).read_text())
    config = json.loads((run_dir / runs.CONFIG).read_text())
    assert set(metrics) == {"train", "test", "train_seconds", "epochs", "warnings"}
    assert metrics["warnings"] == summary["warnings"] and isinstance(metrics["warnings"], list)
    assert metrics["epochs"] == 3 and metrics["train_seconds"] == config["train_seconds"] > 0
    assert summary["metrics"] == {"train": metrics["train"], "test": metrics["test"]}

    recipe_used = config["recipe"]
    dataset = load_dataset(recipe_used["dataset"], recipe_used["samples"], recipe_used["noise"], recipe_used["seed"])
    model = keras.saving.load_model(run_dir / runs.MODEL)
    regression = dataset.task == "regression"
    # Keras's own names: "accuracy" becomes binary or categorical accuracy by the loss.
    model.compile(loss=config["loss"], metrics=[] if regression else ["accuracy"])
    for split, x, y in (("train", dataset.x_train, dataset.y_train), ("test", dataset.x_test, dataset.y_test)):
        targets = y if y.ndim == 2 else y.reshape(len(y), 1)
        expected = model.evaluate(x, targets, batch_size=13, verbose=0, return_dict=True)
        assert set(metrics[split]) == ({"loss"} if regression else {"loss", "accuracy"})
        assert metrics[split] == pytest.approx(expected, rel=1e-5)
    shown = json.loads(invoke("eval", run_dir, "--json").stdout)["metrics"]
    assert shown == pytest.approx(metrics["test"], rel=1e-6)


# For each true class, the classes the network below predicts for its test images. Worked out by hand:
# 18 of 25 right; class 5 has no test image.
PREDICTIONS = {0: [0, 0, 0, 1], 1: [2, 2], 2: [2, 2, 2, 2, 2], 3: [3, 5], 4: [4, 4, 9], 5: [], 6: [6],
               7: [1, 7, 7, 7, 7], 8: [3], 9: [9, 9]}
PER_CLASS = {"0": 0.75, "1": 0.0, "2": 1.0, "3": 0.5, "4": 2 / 3, "5": None, "6": 1.0, "7": 0.8, "8": 0.0,
             "9": 1.0}
ACCURACY = 0.72


@pytest.fixture
def known_run(blob_run, tmp_path, monkeypatch):
    """A copy of the session's image run whose network predicts class c for an image whose pixel (0, c)
    is lit, and test data whose images light the pixel of PREDICTIONS."""
    isolate_image_data(tmp_path, monkeypatch)
    run_dir = Path(shutil.copytree(blob_run["summary"]["run_dir"], tmp_path / "run"))
    network = keras.Sequential([keras.Input(shape=(28, 28, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(units=10, activation="softmax")])
    kernel = np.zeros((784, 10), np.float32)
    kernel[np.arange(10), np.arange(10)] = 20.0
    network.set_weights([kernel, np.zeros(10, np.float32)])
    config = json.loads((run_dir / runs.CONFIG).read_text())
    config["model_sha256"] = files.write_with(run_dir / runs.MODEL, network.save)
    files.write_json(run_dir / runs.CONFIG, config)

    labels = np.array([true for true, predicted in PREDICTIONS.items() for _ in predicted], np.uint8)
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[np.arange(len(labels)), 0, [predicted for row in PREDICTIONS.values() for predicted in row]] = 255
    return run_dir, write_npz(tmp_path / "known.npz", (images, labels, images, labels))


def test_eval_per_class_accuracy_matches_the_hand_counted_confusion(invoke, known_run):
    run_dir, data = known_run
    result = json.loads(invoke("eval", run_dir, "--data", data, "--json").stdout)
    assert result["metrics"]["accuracy"] == pytest.approx(ACCURACY, abs=1e-12)
    assert result["per_class_accuracy"] == pytest.approx(PER_CLASS, abs=1e-12)
    text = invoke("eval", run_dir, "--data", data).stdout
    assert "25 test samples" in text and "accuracy 0.7200" in text
    assert "  class 4            accuracy 0.6667" in text and "  class 5: none" in text


@pytest.mark.parametrize("bar, passes", [(f"{ACCURACY!r}", True), ("0.7200000001", False), ("0.7199999999", True)],
                         ids=["at", "just-above", "just-below"])
def test_eval_gate_on_the_boundary(invoke, known_run, bar, passes):
    """The accuracy is exactly 18/25: a bar equal to it passes, a bar a hair above it does not."""
    run_dir, data = known_run
    result = invoke("eval", run_dir, "--data", data, "--min-accuracy", bar, "--json", exit_code=0 if passes else 1)
    assert json.loads(result.stdout)["passed"] is passes
    if not passes:
        assert result.stderr.strip() == f"Error: test accuracy 0.7200 is below --min-accuracy {float(bar)}"
    written = json.loads((run_dir / runs.EVAL).read_text())
    assert written["passed"] is passes and written["min_accuracy"] == float(bar)
