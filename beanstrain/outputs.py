"""Saving what a run produced: history, metrics, model, trace and pictures, then marking it finished.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from beanstrain.recipes import resolve_recipe
    >>> from beanstrain.training import fit_run
    >>> summary = fit_run(resolve_recipe("beans4-hidden2", {"epochs": 3}), out=Path(tempfile.mkdtemp()), quiet=True)
    >>> sorted(name for name in summary if name != "weights")
    ['device', 'device_kind', 'engine', 'metrics', 'recipe', 'run_dir', 'train_seconds', 'warnings']

The model and its metrics are saved before the pictures are drawn, so a disk
that fills up while drawing still leaves a finished run (marked
`pictures_missing`); `fit --resume` draws the missing pictures later
(`draw_missing_pictures`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from beanstrain import files, run_failures, runs
from beanstrain.checkpoints import remove_checkpoint
from beanstrain.data import Dataset, load_dataset
from beanstrain.devices import to_numpy
from beanstrain.diagnosis import PROBE_SAMPLES, Evidence, dead_ends, dead_relu_layers
from beanstrain.errors import RunError, first_line
from beanstrain.evaluation import compute_metrics, load_run_model, per_class_accuracy, predictor
from beanstrain.models import small_weights
from beanstrain.plots import RunOutputs, draw_run_pictures
from beanstrain.plots.animate import animation_available
from beanstrain.preparation import PreparedRun
from beanstrain.progress import echo
from beanstrain.recipes import Recipe
from beanstrain.trace import Trace, read_trace, write_trace


def save_finished_run(run_dir: Path, prepared: PreparedRun, history, trace: Trace,
                      train_seconds: float, stopping: dict | None = None) -> tuple[dict, RunError | None]:
    """Everything a run that trained all its epochs produced.

    Returns the summary `fit --json` prints, and the one-line error to raise once the run is no longer
    recording failures (`run_failures.unfinished`: the pictures or the finished state could not be
    written), or None."""
    recipe, dataset, model = prepared.recipe, prepared.dataset, prepared.model
    runs.write_history(run_dir / runs.HISTORY, history.columns, history.rows)
    predict = predictor(model, recipe.model)
    # One pass over the test set gives its metrics, the dead-end checks and the image pictures.
    test_outputs = predict(dataset.x_test)
    y_test = prepared.encode(dataset.y_test)
    loss_name, accuracy = prepared.loss_name, prepared.accuracy
    metrics = {"train": compute_metrics(prepared.data.y, predict(prepared.data.x), loss_name, accuracy),
               "test": compute_metrics(y_test, test_outputs, loss_name, accuracy)}
    if dataset.is_image:  # the run's page shows it without a `beanstrain eval`
        metrics["per_class_accuracy"] = per_class_accuracy(test_outputs, dataset.y_test, dataset.class_names)
    warnings = _dead_ends(prepared, history, test_outputs, y_test, metrics)
    digest = files.write_with(run_dir / runs.MODEL, model.save)  # Keras writes the file itself
    # Early stopping's verdict: the epoch whose weights these are, and the one it stopped after.
    stopped = {"early_stopping": stopping} if stopping else {}
    files.write_json(run_dir / runs.METRICS, {**metrics, "train_seconds": train_seconds,
                                              "epochs": history.epochs_done, "warnings": warnings, **stopped})
    write_trace(run_dir, trace)
    unfinished = _draw_and_finish(
        run_dir, lambda: draw_pictures(run_dir, dataset, predict, test_outputs, history.columns, history.rows,
                                       model, trace, prepared.loss_name, prepared.animation, recipe),
        model_sha256=digest, train_seconds=train_seconds, epochs_done=history.epochs_done)
    split_metrics = {split: metrics[split] for split in ("train", "test")}  # per class: in metrics.json
    summary = {**run_summary(run_dir, recipe.name, prepared.device, prepared.engine, train_seconds, split_metrics,
                             warnings), **stopped}
    weights = small_weights(model)
    return (summary if weights is None else {**summary, "weights": weights}), unfinished


def run_summary(run_dir: Path, recipe_name: str, device: dict, engine: str | None, train_seconds: float,
                metrics: dict, warnings: list[str]) -> dict:
    """What `fit --json` prints for a run; a network of a handful of weights adds them (`models.small_weights`)."""
    return {"run_dir": str(run_dir), "recipe": recipe_name, "device": device.get("name"),
            "device_kind": device.get("kind"), "engine": engine, "train_seconds": round(train_seconds, 4),
            "metrics": metrics, "warnings": warnings}


def _dead_ends(prepared: PreparedRun, history, test_outputs, y_test, metrics) -> list[str]:
    """The warnings of `beanstrain.diagnosis` for a run that trained without learning; [] when it learned."""
    output = prepared.model.layers[-1]
    activation = getattr(getattr(output, "activation", None), "__name__", None)
    evidence = Evidence(losses=history.column("loss"), outputs=test_outputs, targets=y_test,
                        accuracy_kind=prepared.accuracy, test_accuracy=metrics["test"].get("accuracy"),
                        learning_rate=float(to_numpy(prepared.model.optimizer.learning_rate)),
                        output_activation=activation if activation in ("sigmoid", "softmax") else None,
                        level_mapping=prepared.recipe.level_mapping if prepared.recipe.levels else None)
    probe = prepared.data.x[:PROBE_SAMPLES]
    return dead_ends(evidence, relu_check=lambda: (dead_relu_layers(prepared.model, probe), len(probe)))


def _draw_and_finish(run_dir: Path, draw, **fields) -> RunError | None:
    """Draw the pictures, then mark the run finished; returns the one-line error to raise, if any.

    The model and metrics are saved by now, so a picture that cannot be written (a full disk) still
    leaves a finished run, marked `pictures_missing`, and one line saying how to draw them once there
    is room (`fit --resume`).  A config.json that cannot say `finished` leaves the run unfinished.
    Any other error from drawing is the caller's to record."""
    try:
        pictures, picture_error = draw(), None
    except OSError as error:
        pictures = [name for name in runs.saved_outputs(run_dir) if name.endswith(runs.PICTURE_SUFFIXES)]
        picture_error = error
    state_error = run_failures.try_set_state(
        run_dir, runs.FINISHED, **fields, pictures=pictures, pictures_missing=picture_error is not None,
        checkpoint_epoch=None, error=run_failures.reason(picture_error, run_dir) if picture_error else None)
    if state_error is None:
        with contextlib.suppress(OSError):  # a leftover checkpoint beside a finished run does no harm
            remove_checkpoint(run_dir)
    if picture_error is not None or state_error is not None:
        return run_failures.unfinished(run_dir, picture_error, state_error)
    return None


def draw_missing_pictures(run_dir: Path, config: dict, quiet: bool, stream) -> dict:
    """`fit --resume` of a finished run whose pictures a full disk kept it from drawing: draw them now."""
    if not quiet:
        echo(f"{run_dir} is trained; drawing the pictures it is missing", stream)
    try:
        recipe = Recipe(**config["recipe"])
    except (KeyError, TypeError) as error:
        raise RunError(f"{run_dir / runs.CONFIG} is damaged: {error}") from None
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed, config.get("data_path"),
                           recipe.test_fraction)
    model = load_run_model(run_dir, config)
    predict = predictor(model, recipe.model)
    try:
        columns, rows = runs.read_history(run_dir / runs.HISTORY)
        metrics = files.read_json(run_dir / runs.METRICS)
        trace = read_trace(run_dir)
    except (OSError, ValueError, StopIteration, RunError) as error:
        raise RunError(f"{run_dir} cannot be redrawn: {first_line(error)}; train again") from None
    unfinished = _draw_and_finish(run_dir, lambda: draw_pictures(run_dir, dataset, predict, predict(dataset.x_test),
                                                                 columns, rows, model, trace, config.get("loss"),
                                                                 recorded_animation(config), recipe))
    if unfinished:
        raise unfinished
    return run_summary(run_dir, recipe.name, config.get("device") or {}, config.get("engine"),
                       float(config.get("train_seconds") or metrics.get("train_seconds", 0.0)),
                       {split: metrics[split] for split in ("train", "test") if split in metrics},
                       metrics.get("warnings", []))


def recorded_animation(config: dict) -> str:
    """The animation a run asked for; a GIF when mp4 was asked for and ffmpeg has gone since."""
    animation = config.get("animation", "gif")
    return animation if animation_available(animation) else "gif"


def draw_pictures(run_dir: Path, dataset: Dataset, predict, test_outputs, columns, rows, model=None, trace=None,
                  loss_name=None, animation="gif", recipe: Recipe | None = None) -> list[str]:
    return draw_run_pictures(run_dir, RunOutputs(dataset, predict, test_outputs, columns, rows, recipe=recipe,
                                                 model=model, trace=trace, loss_name=loss_name, animation=animation))
