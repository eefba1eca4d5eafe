"""The compiled loop on MNIST-format files: `fit --engine compiled` on an image network, every figure it
reports against Keras's `model.evaluate`, with a held-out set of more than one evaluation slice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from mnist_files import blob_splits, write_npz

from beanstrain.data import load_dataset
from beanstrain.devices import load_keras
from beanstrain.engines.compiled import EVAL_SLICE
from beanstrain.models import model_inputs

keras = load_keras()
TRAIN_IMAGES, VALIDATION_SPLIT = 2300, 0.9
HELD_OUT = round(TRAIN_IMAGES * VALIDATION_SPLIT)  # 2070: one whole slice of 2048 and a partial one


# The pictures are not under test here.
pytestmark = pytest.mark.usefixtures("isolated", "no_pictures")


def test_compiled_loop_on_images_reports_the_figures_of_keras_evaluate(fit_json, tmp_path):
    """dense128 (Flatten, 128 relu, softmax) takes 28x28x1 images, so the loop gathers and slices
    4-D tensors; its recipe's sparse loss counts accuracy against class numbers."""
    assert HELD_OUT > EVAL_SLICE and HELD_OUT % EVAL_SLICE
    data = write_npz(tmp_path / "blobs.npz", blob_splits(train=TRAIN_IMAGES, test=150))
    summary = fit_json("mnist-dense128", "--engine", "compiled", "--epochs", "2", "--batch-size", "64",
                       "--validation-split", str(VALIDATION_SPLIT), "--data", data)
    run_dir = Path(summary["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())
    assert summary["engine"] == config["engine"] == "compiled"
    with open(run_dir / "history.csv") as stream:
        last_epoch = list(csv.DictReader(stream))[-1]
    metrics = json.loads((run_dir / "metrics.json").read_text())

    dataset = load_dataset("mnist", data_path=str(data))
    name, loss = config["recipe"]["model"], config["loss"]
    model = keras.saving.load_model(run_dir / "model.keras")
    model.compile(loss=loss, metrics=["accuracy"])

    def evaluate(images, labels):
        targets = labels if loss.startswith("sparse") else np.eye(10, dtype=np.float32)[labels]
        return model.evaluate(model_inputs(name, images), targets, batch_size=500, verbose=0, return_dict=True)

    x, y = dataset.x_train, dataset.y_train
    held_out = evaluate(x[-HELD_OUT:], y[-HELD_OUT:])
    assert float(last_epoch["val_loss"]) == pytest.approx(held_out["loss"], rel=1e-5)
    assert float(last_epoch["val_accuracy"]) == pytest.approx(held_out["accuracy"], abs=1e-6)
    assert metrics["train"] == pytest.approx(evaluate(x[:-HELD_OUT], y[:-HELD_OUT]), rel=1e-5)
    assert metrics["test"] == pytest.approx(evaluate(dataset.x_test, dataset.y_test), rel=1e-5)
    assert metrics["test"]["accuracy"] > 0.3  # the blobs were learnt, so the figures are not all chance
