"""Judging a trained network: its metrics on a dataset, loading a run's model safely, `beanstrain eval`.

    >>> import tempfile
    >>> from beanstrain.recipes import resolve_recipe
    >>> from beanstrain.training import fit_run
    >>> out = Path(tempfile.mkdtemp())
    >>> summary = fit_run(resolve_recipe("beans7-neuron", {"epochs": 2}), out=out, quiet=True)
    >>> result = eval_run("beans7-neuron", out=out, min_accuracy=0.0)
    >>> result["passed"], result["metrics"] == summary["metrics"]["test"]
    (True, True)

A run's model is loaded only after its file matches the SHA-256 recorded when
it was saved, and only in Keras's safe mode, so a model file can never run
code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from beanstrain import files, runs
from beanstrain.data import load_dataset
from beanstrain.devices import load_keras, to_numpy
from beanstrain.errors import RunError, UsageError, first_line
from beanstrain.features import features_layer
from beanstrain.models import model_inputs
from beanstrain.objectives import accuracy_kind, count_correct, encode_targets, make_loss
from beanstrain.recipes import Recipe
from beanstrain.tasks import REGRESSION

# Forward passes outside training take this many samples at a time.
PREDICT_SLICE = 8192


def predictor(model, model_name: str):
    """A plain function inputs -> outputs, in large slices, without `model.predict`'s per-call tracing."""
    def predict(x):
        x = model_inputs(model_name, np.asarray(x, dtype=np.float32))
        return np.concatenate([to_numpy(model(x[start:start + PREDICT_SLICE], training=False))
                               for start in range(0, len(x), PREDICT_SLICE)])
    return predict


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, loss_name: str, accuracy: str | None) -> dict:
    """Loss and accuracy of predictions, the metrics `model.evaluate` reports."""
    results = {"loss": float(make_loss(loss_name)(y_true, y_pred))}
    if accuracy:
        results["accuracy"] = count_correct(accuracy, y_true, y_pred) / len(y_true)
    return results


def per_class_accuracy(outputs: np.ndarray, labels: np.ndarray, class_names) -> dict:
    """Each class's accuracy on the test set from the network's class probabilities (None for a class absent there).

    >>> per_class_accuracy(np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]]), np.array([0, 0, 0]), ["a", "b"])
    {'a': 0.6666666666666666, 'b': None}
    """
    predicted = np.asarray(outputs).argmax(axis=1)
    labels = np.asarray(labels)
    return {name: float(np.mean(predicted[labels == index] == index)) if np.any(labels == index) else None
            for index, name in enumerate(class_names)}


def load_run_model(run_dir: Path, config: dict):
    """The run's model, refused if its file changed since training (SHA-256 in config.json)."""
    path = run_dir / runs.MODEL
    retrain = f"retrain with: beanstrain fit {config.get('recipe', {}).get('name', 'RECIPE')}"
    if not path.is_file():
        raise RunError(f"{run_dir} has no {runs.MODEL}; {retrain}")
    expected = config.get("model_sha256")
    if not expected:
        raise RunError(f"{run_dir / runs.CONFIG} records no SHA-256 for {runs.MODEL}, so the file cannot be "
                       f"checked and is not loaded; {retrain}")
    if files.file_sha256(path) != expected:
        raise RunError(f"{path} has changed since it was trained (SHA-256 differs from config.json); {retrain}")
    if not zipfile.is_zipfile(path):
        raise RunError(f"{path} is not a .keras archive (a zip file); {retrain}")
    features_layer()  # registered first: a network with input features has it as its first layer
    try:
        return load_keras().saving.load_model(path, safe_mode=True)
    except Exception as error:  # a corrupt archive can fail in many ways inside Keras
        raise RunError(f"{path} is not a loadable Keras model: {first_line(error, limit=None)}") from None


def eval_run(target: str, out: Path, min_accuracy: float | None = None, data_path: str | None = None) -> dict:
    """Evaluate a finished run on its test data and write eval.json; `passed` honours the gate."""
    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise UsageError(f"--min-accuracy must be between 0 and 1, got {min_accuracy}")
    run_dir = runs.resolve_run(target, out)
    config = files.read_json(run_dir / runs.CONFIG)
    runs.require_finished(run_dir, config)
    recipe = Recipe(**config["recipe"])
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed,
                           data_path or config.get("data_path"), recipe.test_fraction)
    if min_accuracy is not None and dataset.task == REGRESSION:
        raise UsageError(f"--min-accuracy does not apply to {recipe.dataset}: a regression set has no accuracy")
    model = load_run_model(run_dir, config)
    y_test = encode_targets(dataset.y_test, dataset.task, config["loss"], dataset.num_classes)
    # One pass over the test set gives the metrics and, for images, the per-class accuracy.
    y_pred = predictor(model, recipe.model)(dataset.x_test)
    metrics = compute_metrics(y_test, y_pred, config["loss"], accuracy_kind(dataset.task, config["loss"]))
    result = {"run_dir": str(run_dir), "recipe": recipe.name, "data_source": dataset.source,
              "test_samples": len(y_test), "metrics": metrics}
    if dataset.is_image:
        result["per_class_accuracy"] = per_class_accuracy(y_pred, dataset.y_test, dataset.class_names)
    passed = True
    if min_accuracy is not None:
        passed = metrics.get("accuracy", 0.0) >= min_accuracy
        result["min_accuracy"] = min_accuracy
    result["passed"] = passed
    files.write_json(run_dir / runs.EVAL, result)
    return result
