"""What `beanstrain fit` and `beanstrain eval` do, end to end, as library calls.

    >>> recipe = resolve_recipe("beans4-hidden2")
    >>> summary = fit_run(recipe, out=Path("runs"))
    >>> summary["metrics"]["test"]["accuracy"]
    0.93
    >>> result = eval_run("beans4-hidden2", out=Path("runs"), min_accuracy=0.9)

Every value is checked before a run folder exists; the run folder records
everything the run used (resolved recipe, seed, device, engine, versions)
beside what it produced.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from beanstrain import runs
from beanstrain.datasets import REGRESSION, Dataset, load_dataset
from beanstrain.errors import RunError, UsageError
from beanstrain.recipes import Recipe, as_dict, recipe_loss


def echo(message: str, stream=None) -> None:
    print(message, file=stream or sys.stderr, flush=True)


def check_finite(dataset: Dataset) -> None:
    """Refuse data with NaN or infinite values before training on it."""
    for split, values in (("train inputs", dataset.x_train), ("train targets", dataset.y_train),
                          ("test inputs", dataset.x_test), ("test targets", dataset.y_test)):
        if not np.all(np.isfinite(values)):
            raise RunError(f"{dataset.name}: the {split} contain NaN or infinite values; fix the data first")


def model_inputs(model_name: str, x: np.ndarray) -> np.ndarray:
    """Flat networks see each sample as one vector (28x28x1 images become 784-vectors)."""
    from beanstrain.models import get_network

    if get_network(model_name).input_kind == "flat" and x.ndim > 2:
        return x.reshape(len(x), -1)
    return x


def split_train(dataset: Dataset, recipe: Recipe):
    """Training arrays and the held-out set seen every epoch.

    Generated sets are checked against their own fresh test draw every epoch
    (it is cheap); image sets hold out the last `validation_split` of the
    training images, as Keras's `validation_split` does.
    """
    x, y = model_inputs(recipe.model, dataset.x_train), dataset.y_train
    if not dataset.is_image:
        return x, y, model_inputs(recipe.model, dataset.x_test), dataset.y_test, "test"
    held = int(round(len(x) * recipe.validation_split))
    if held == 0:
        return x, y, None, None, "val"
    return x[:-held], y[:-held], x[-held:], y[-held:], "val"


def clamp_batch(batch_size: int, samples: int, stream) -> int:
    if batch_size > samples:
        echo(f"warning: batch size {batch_size} is larger than the {samples} training samples; using {samples}",
             stream)
        return samples
    return batch_size


def evaluate(model, x, y) -> dict:
    figures = model.evaluate(x, y, batch_size=1024, verbose=0, return_dict=True)
    return {name: float(value) for name, value in figures.items() if name in ("loss", "accuracy")}


def fit_run(recipe: Recipe, out: Path, device: str = "auto", quiet: bool = False, data_path: str | None = None,
            stream=None) -> dict:
    """Train a recipe into a new run folder and return the summary `fit --json` prints."""
    from beanstrain.backend import library_versions, load_keras, select_device
    from beanstrain.models import build_model
    from beanstrain.objectives import accuracy_kind, encode_targets, make_accuracy_metric, make_loss, make_optimizer
    from beanstrain.progress import Progress
    from beanstrain.train import TrainData, choose_engine, make_trainer

    stream = stream or sys.stderr
    out = runs.check_out_dir(out)
    chosen_device = select_device(device)
    keras = load_keras()
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed, data_path)
    check_finite(dataset)
    loss_name = recipe_loss(recipe)
    x, y, held_x, held_y, held_name = split_train(dataset, recipe)
    batch_size = clamp_batch(recipe.batch_size, len(x), stream)

    def encode(targets):
        return None if targets is None else encode_targets(targets, dataset.task, loss_name, dataset.num_classes)

    # One seed fixes the initial weights and every shuffle, as well as the data draw above.
    keras.utils.set_random_seed(recipe.seed)
    model = build_model(recipe.model, dataset.input_shape, dataset.task, dataset.num_classes)
    accuracy = accuracy_kind(dataset.task, loss_name)
    engine = choose_engine(recipe.engine, len(x), model.count_params())
    data = TrainData(x, encode(y), held_x, encode(held_y), held_name)

    run_dir = runs.create_run_dir(out, recipe.name)
    config = {
        "recipe": as_dict(recipe), "loss": loss_name, "batch_size": batch_size, "seed": recipe.seed,
        "device": chosen_device, "engine": engine, "data_source": dataset.source, "data_path": data_path,
        "parameters": model.count_params(), "versions": library_versions(),
        "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "state": runs.RUNNING,
    }
    runs.write_json(run_dir / runs.CONFIG, config)
    if not quiet:
        echo(f"{recipe.name}: {recipe.model} on {recipe.dataset}, {recipe.epochs} epochs, batch {batch_size}, "
             f"{recipe.optimizer} on {loss_name}, seed {recipe.seed}", stream)
        echo(f"device: {chosen_device['kind']} ({chosen_device['name']}); engine: {engine}; run: {run_dir}", stream)
    progress = Progress(recipe.epochs, stream=stream, quiet=quiet)
    with _recording_failure(run_dir, progress), _device_scope(chosen_device):
        optimizer = make_optimizer(recipe.optimizer, recipe.learning_rate)
        trainer = make_trainer(engine, model, make_loss(loss_name), optimizer, data, batch_size, recipe.seed,
                               accuracy, make_accuracy_metric(dataset.task, loss_name))
        started = time.perf_counter()
        history = trainer.run(0, recipe.epochs, on_chunk=lambda epoch, hist: progress.update(epoch, hist.last()))
        train_seconds = time.perf_counter() - started
        progress.close()
        runs.write_history(run_dir / runs.HISTORY, history.columns, history.rows)
        diverged = history.diverged_at()
        if not diverged:
            metrics = {"train": evaluate(model, x, data.y),
                       "test": evaluate(model, model_inputs(recipe.model, dataset.x_test), encode(dataset.y_test))}
            digest = runs.save_model(model, run_dir / runs.MODEL)
            runs.write_json(run_dir / runs.METRICS, {**metrics, "train_seconds": train_seconds,
                                                     "epochs": history.epochs_done})
            pictures = draw_pictures(run_dir, dataset, model, recipe, history.columns, history.rows)
    if diverged:
        runs.set_state(run_dir, runs.DIVERGED, diverged_epoch=diverged, train_seconds=train_seconds)
        raise RunError(f"training diverged at epoch {diverged} (the loss became NaN or infinite); "
                       f"try a lower --learning-rate. Run folder: {run_dir}")
    runs.set_state(run_dir, runs.FINISHED, model_sha256=digest, train_seconds=train_seconds,
                   epochs_done=history.epochs_done, pictures=pictures)
    return {"run_dir": str(run_dir), "recipe": recipe.name, "device": chosen_device["name"],
            "device_kind": chosen_device["kind"], "engine": engine, "train_seconds": round(train_seconds, 4),
            "metrics": metrics}


@contextlib.contextmanager
def _recording_failure(run_dir: Path, progress):
    """Mark the run `interrupted` (Ctrl-C) or `failed` (anything else) if the block does not finish."""
    try:
        yield
    except BaseException as error:
        progress.close()
        state = runs.INTERRUPTED if isinstance(error, KeyboardInterrupt) else runs.FAILED
        runs.set_state(run_dir, state, error=str(error) or type(error).__name__)
        raise


def _device_scope(device: dict):
    from beanstrain.backend import load_tensorflow

    return load_tensorflow().device(device["tf_device"])


def predictor(model, model_name: str):
    """A plain function inputs -> outputs for the pictures, in large batches without Keras's per-call overhead."""
    def predict(x):
        x = model_inputs(model_name, np.asarray(x, dtype=np.float32))
        return np.concatenate([model(x[start:start + 8192], training=False).numpy()
                               for start in range(0, len(x), 8192)])
    return predict


def draw_pictures(run_dir: Path, dataset: Dataset, model, recipe: Recipe, columns, rows) -> list[str]:
    if dataset.is_image:
        from beanstrain.image_plots import plot_image_run

        return plot_image_run(run_dir, dataset, predictor(model, recipe.model), columns, rows)
    from beanstrain.plots import plot_toy_run

    return plot_toy_run(run_dir, dataset, predictor(model, recipe.model), columns, rows)


def load_run_model(run_dir: Path, config: dict):
    """The run's model, refused if its file changed since training (SHA-256 in config.json)."""
    from beanstrain.backend import load_keras

    path = run_dir / runs.MODEL
    if not path.is_file():
        raise RunError(f"{run_dir} has no {runs.MODEL}")
    expected = config.get("model_sha256")
    if expected and runs.file_sha256(path) != expected:
        raise RunError(f"{path} has changed since it was trained (SHA-256 differs from config.json); "
                       f"retrain with: beanstrain fit {config.get('recipe', {}).get('name', '')}")
    try:
        return load_keras().saving.load_model(path, safe_mode=True)
    except Exception as error:  # a corrupt archive can fail in many ways inside Keras
        raise RunError(f"{path} is not a loadable Keras model: {str(error).splitlines()[0]}") from None


def eval_run(target: str, out: Path, min_accuracy: float | None = None, data_path: str | None = None) -> dict:
    """Evaluate a finished run on its test data and write eval.json; `passed` honours the gate."""
    from beanstrain.objectives import encode_targets
    from beanstrain.recipes import Recipe

    if min_accuracy is not None and not 0.0 <= min_accuracy <= 1.0:
        raise UsageError(f"--min-accuracy must be between 0 and 1, got {min_accuracy}")
    run_dir = runs.resolve_run(target, out)
    config = runs.read_json(run_dir / runs.CONFIG)
    recipe = Recipe(**config["recipe"])
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed,
                           data_path or config.get("data_path"))
    if min_accuracy is not None and dataset.task == REGRESSION:
        raise UsageError(f"--min-accuracy does not apply to {recipe.dataset}: a regression set has no accuracy")
    model = load_run_model(run_dir, config)
    x_test = model_inputs(recipe.model, dataset.x_test)
    y_test = encode_targets(dataset.y_test, dataset.task, config["loss"], dataset.num_classes)
    metrics = evaluate(model, x_test, y_test)
    result = {"run_dir": str(run_dir), "recipe": recipe.name, "data_source": dataset.source,
              "test_samples": len(x_test), "metrics": metrics}
    if dataset.is_image:
        predicted = predictor(model, recipe.model)(dataset.x_test).argmax(axis=1)
        result["per_class_accuracy"] = {
            name: float(np.mean(predicted[dataset.y_test == index] == index)) if np.any(dataset.y_test == index)
            else None for index, name in enumerate(dataset.class_names)}
    passed = True
    if min_accuracy is not None:
        passed = metrics.get("accuracy", 0.0) >= min_accuracy
        result["min_accuracy"] = min_accuracy
    result["passed"] = passed
    runs.write_json(run_dir / runs.EVAL, result)
    return result
