"""What `beanstrain fit` does, end to end, as library calls: a new run, or the resumption of one.

    >>> import tempfile
    >>> from beanstrain.recipes import resolve_recipe
    >>> out = Path(tempfile.mkdtemp())
    >>> summary = fit_run(resolve_recipe("beans4-hidden2", {"epochs": 3}), out=out, quiet=True)
    >>> summary["engine"], summary["recipe"], sorted(summary["metrics"]["test"])
    ('fit', 'beans4-hidden2', ['accuracy', 'loss'])
    >>> resume_run(Path(summary["run_dir"]), quiet=True)     # only an unfinished run resumes
    Traceback (most recent call last):
    beanstrain.errors.UsageError: --resume ...: the run is already finished; evaluate it with: beanstrain eval ...

Every value is checked before a run folder exists; the run folder records
everything the run used (resolved recipe, seed, device, engine, versions)
beside what it produced.  Judging a trained run is `beanstrain.evaluation`'s.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain import failures, files, runs
from beanstrain.data import Dataset, load_dataset
from beanstrain.diagnosis import PROBE_SAMPLES
from beanstrain.errors import RunError, UsageError, first_line
from beanstrain.evaluation import figures, per_class_accuracy, predictor
from beanstrain.models import model_inputs
from beanstrain.recipes import Recipe, as_dict, keeps_file, recipe_file, recipe_loss, recipe_toml
from beanstrain.report import page_when_done
from beanstrain.trace import read_trace, write_trace


def echo(message: str, stream=None) -> None:
    print(message, file=stream or sys.stderr, flush=True)


def check_finite(dataset: Dataset) -> None:
    """Refuse data with NaN or infinite values before training on it."""
    for split, values in (("train inputs", dataset.x_train), ("train targets", dataset.y_train),
                          ("test inputs", dataset.x_test), ("test targets", dataset.y_test)):
        if not np.all(np.isfinite(values)):
            raise RunError(f"{dataset.name}: the {split} contain NaN or infinite values; fix the data first")


def split_train(dataset: Dataset, recipe: Recipe):
    """Training arrays and the held-out set seen every epoch.

    Generated sets are checked against their own fresh test draw every epoch
    (it is cheap); image sets hold out the last `validation_split` of the
    training images, as Keras's `validation_split` does.  An image run with
    no validation split trains on every training image and measures the
    test set after every epoch instead, as the course's levels experiment
    and its GradientTape loop do.
    """
    x, y = model_inputs(recipe.model, dataset.x_train), dataset.y_train
    held = int(round(len(x) * recipe.validation_split)) if dataset.is_image else 0
    if held == 0:
        return x, y, model_inputs(recipe.model, dataset.x_test), dataset.y_test, "test"
    return x[:-held], y[:-held], x[-held:], y[-held:], "val"


def clamp_batch(batch_size: int, samples: int, stream) -> int:
    if batch_size > samples:
        echo(f"warning: batch size {batch_size} is larger than the {samples} training samples; using {samples}",
             stream)
        return samples
    return batch_size


def check_shared_batch(batch_size: int, devices: int) -> None:
    """Refuse a batch that several devices cannot share evenly (Keras's mirrored step fails on one)."""
    if batch_size % devices:
        below, above = batch_size - batch_size % devices, batch_size - batch_size % devices + devices
        raise UsageError(f"--devices {devices}: a batch of {batch_size} cannot be shared evenly by {devices} devices; "
                         f"use a --batch-size that {devices} divides, such as "
                         + (f"{below} or {above}" if below else f"{above}"))


@dataclass
class Session:
    """A recipe made ready to train: data, network, engine, before any run folder exists."""

    recipe: Recipe
    device: dict
    dataset: Dataset
    loss_name: str
    accuracy: str | None
    data: object  # engines.TrainData
    batch_size: int
    model: object
    engine: str
    strategy: object = None  # a tf.distribute strategy when the run trains on several devices
    animation: str = "gif"  # plots.animate.ANIMATIONS: how training.gif / training.mp4 is written, or "none"

    def placement(self):
        """The one device a run's work is placed on (on several devices the strategy places it)."""
        from beanstrain.devices import load_tensorflow

        return contextlib.nullcontext() if self.strategy else load_tensorflow().device(self.device["tf_device"])

    def replicas(self):
        """The strategy's scope, where the optimizer is made and training runs, on several devices.

        Only training belongs in it: Keras divides every loss computed in it by the number of
        devices (each replica's share of the summed gradient), so a run's figures are taken outside."""
        return self.strategy.scope() if self.strategy else contextlib.nullcontext()

    def make_trainer(self):
        from beanstrain.engines import make_trainer
        from beanstrain.engines.levels import LevelSettings
        from beanstrain.objectives import make_accuracy_metric, make_loss, make_optimizer
        from beanstrain.trace import snapshot_epochs, snapshot_steps

        recipe = self.recipe
        optimizer = make_optimizer(recipe.optimizer, recipe.learning_rate, self.engine)
        task = self.dataset.task
        levels = LevelSettings(recipe.levels, recipe.level_mapping, recipe.level_nonlinearity,
                               recipe.seed) if recipe.levels else None
        trainer = make_trainer(self.engine, self.model, make_loss(self.loss_name), optimizer, self.data,
                               self.batch_size, recipe.seed, self.accuracy, make_accuracy_metric(task, self.loss_name),
                               snapshot_epochs=snapshot_epochs(recipe.epochs), levels=levels)
        if hasattr(trainer, "snapshot_steps"):  # an engine that can snapshot inside epochs: spread over the steps
            trainer.snapshot_steps = frozenset(snapshot_steps(recipe.epochs * self.steps_per_epoch))
        return trainer

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch: a batch each, the last one partial."""
        return -(-len(self.data.x) // max(1, self.batch_size))

    def new_trace(self, saved=None):
        """The run's weight trace: the one a checkpoint carried (`saved`, its arrays), else an empty one."""
        from beanstrain.trace import Trace, weight_names

        if saved is not None:
            try:
                return Trace.from_arrays(saved)
            except (KeyError, ValueError) as error:
                raise RunError(f"the checkpoint's weight trace is damaged: {first_line(error)}") from None
        return Trace(weight_names(self.model), summarize=self.dataset.is_image, steps_per_epoch=self.steps_per_epoch)

    def encode(self, targets):
        from beanstrain.objectives import encode_targets

        dataset = self.dataset
        return None if targets is None else encode_targets(targets, dataset.task, self.loss_name, dataset.num_classes)


def prepare(recipe: Recipe, device: str, data_path: str | None, stream, batch_size: int | None = None,
            engine: str | None = None, devices: int = 1) -> Session:
    """Load and check the data and build the network; `batch_size` and `engine` are given when resuming.

    On several `devices` the network is built in the strategy's scope, so each device holds a mirror of it."""
    from beanstrain.devices import distribution_strategy, load_keras, select_devices
    from beanstrain.models import build_model, get_network, set_initial_weights
    from beanstrain.objectives import accuracy_kind
    from beanstrain.engines import TrainData, choose_engine, engine_for_rule

    requested = engine or engine_for_rule(recipe.engine, recipe.optimizer)
    if devices > 1:  # an engine or a batch that cannot be shared is refused before the devices are set up
        engine = choose_engine(requested, get_network(recipe.model).engine, steps=0, devices=devices)
        check_shared_batch(batch_size or recipe.batch_size, devices)
    chosen_device = select_devices(device, devices)
    strategy = distribution_strategy(chosen_device)
    keras = load_keras()
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed, data_path)
    check_finite(dataset)
    loss_name = recipe_loss(recipe)
    x, y, held_x, held_y, held_name = split_train(dataset, recipe)
    # Batch size 0 is the whole training set: full-batch gradient descent, one step an epoch.
    batch_size = batch_size or clamp_batch(recipe.batch_size or len(x), len(x), stream)
    check_shared_batch(batch_size, devices)  # again: a batch clamped to the training set
    # One seed fixes the initial weights and every shuffle, as well as the data draw above.
    keras.utils.set_random_seed(recipe.seed)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(recipe.model, dataset.input_shape, dataset.task, dataset.num_classes)
        set_initial_weights(model, recipe.initial_weights, recipe.seed)
    session = Session(recipe, chosen_device, dataset, loss_name, accuracy_kind(dataset.task, loss_name), None,
                      batch_size, model, engine or choose_engine(requested, get_network(recipe.model).engine,
                                                                 steps=recipe.epochs * math.ceil(len(x) / batch_size)),
                      strategy)
    session.data = TrainData(x, session.encode(y), held_x, session.encode(held_y), held_name)
    return session


def fit_run(recipe: Recipe, out: Path, device: str = "auto", quiet: bool = False, data_path: str | None = None,
            stream=None, run_dir: Path | None = None, devices: int = 1, animation: str = "gif") -> dict:
    """Train a recipe into a new run folder and return the summary `fit --json` prints.

    `run_dir` is an empty folder already made by `runs.create_run_dir` under `out` (a sweep makes each
    trial's folder when it hands the trial out, so its record names the folder from the start)."""
    from beanstrain.devices import library_versions
    from beanstrain.plots.animate import check_animation

    stream = stream or sys.stderr
    out = runs.check_out_dir(out)
    check_animation(animation)
    session = prepare(recipe, device, data_path, stream, devices=devices)
    session.animation = animation
    try:
        run_dir = Path(run_dir) if run_dir is not None else runs.create_run_dir(out, recipe.name)
    except OSError as error:
        raise RunError(f"cannot create a run folder under {out}: {failures.reason(error)}; "
                       f"{failures.remedy(error)} and train again") from None
    with runs.holding(run_dir):
        config = {
            "recipe": as_dict(recipe), "loss": session.loss_name, "batch_size": session.batch_size,
            "seed": recipe.seed, "device": session.device, "engine": session.engine,
            "data_source": session.dataset.source, "data_path": data_path,
            "parameters": session.model.count_params(), "versions": library_versions(),
            "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "state": runs.RUNNING,
            "animation": animation,
        }
        kept = recipe_file(run_dir, recipe) if keeps_file(recipe) else None  # what `fit` trains it again from
        try:
            if kept is not None:
                files.write_text(kept, recipe_toml(recipe))
            files.write_json(run_dir / runs.CONFIG, config)
        except OSError as error:
            # Nothing else is in the folder yet: without config.json it is no run, so it goes.
            with contextlib.suppress(OSError):
                if kept is not None:
                    kept.unlink(missing_ok=True)
                run_dir.rmdir()
            raise RunError(f"{failures.reason(error, run_dir)}; nothing was saved and the empty run folder "
                           f"was removed; {failures.remedy(error)} and train again") from None
        return _train(run_dir, session, None, quiet, stream)


def resume_run(run_dir: Path, device: str = "auto", quiet: bool = False, stream=None,
               devices: int | None = None) -> dict:
    """Continue an interrupted (or failed) run from its checkpoint, in its own folder, to its recipe's epochs.

    The recipe, data, batch size and engine are the ones config.json recorded;
    so is the number of devices, unless `devices` asks for another.
    """
    from beanstrain.checkpoints import has_checkpoint, read_checkpoint
    from beanstrain.engines import get_engine
    from beanstrain.recipes import check_recipe

    stream = stream or sys.stderr
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise UsageError(f"--resume {run_dir}: not a run folder (it has no {runs.CONFIG})")
    with runs.holding(run_dir):
        config = files.read_json(run_dir / runs.CONFIG)
        state = config.get("state")
        if state == runs.FINISHED and config.get("pictures_missing"):
            return _draw_missing_pictures(run_dir, config, quiet, stream)
        if state == runs.FINISHED:
            raise UsageError(f"--resume {run_dir}: the run is already finished; evaluate it with: "
                             f"beanstrain eval {run_dir}")
        if state == runs.DIVERGED:
            raise UsageError(f"--resume {run_dir}: the run diverged at epoch {config.get('diverged_epoch')} and "
                             "would diverge again; train a new run with a lower --learning-rate")
        if state not in (runs.RUNNING, runs.INTERRUPTED, runs.FAILED):
            raise UsageError(f"--resume {run_dir}: unknown run state {state!r} in {runs.CONFIG}")
        if not has_checkpoint(run_dir):
            raise UsageError(f"--resume {run_dir}: the run stopped before it saved a checkpoint; "
                             f"start it again with: beanstrain fit {config.get('recipe', {}).get('name', 'RECIPE')}")
        try:
            recipe = Recipe(**config["recipe"])
            check_recipe(recipe)
            batch_size, engine = int(config["batch_size"]), config["engine"]
            devices = devices if devices is not None else len(config.get("device", {}).get("devices") or [None])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RunError(f"{run_dir / runs.CONFIG} is damaged: {error}") from None
        if devices > 1 and not get_engine(engine).distributes:  # --engine cannot change on a resume
            raise UsageError(f"--resume {run_dir}: the run trains with the {engine} engine, which uses one device; "
                             "resume it without --devices")
        checkpoint = read_checkpoint(run_dir)
        session = prepare(recipe, device, config.get("data_path"), stream, batch_size, engine, devices)
        session.animation = _recorded_animation(config)
        resumes = config.get("resumed", []) + [{"from_epoch": checkpoint.epoch, "command": sys.argv,
                                                "started": time.strftime("%Y-%m-%dT%H:%M:%S")}]
        try:
            files.remove_temporaries(run_dir)
            runs.set_state(run_dir, runs.RUNNING, resumed=resumes, device=session.device, error=None)
        except OSError as error:
            raise RunError(f"{failures.reason(error, run_dir)}; nothing changed, the run is still {state}; "
                           f"{failures.remedy(error)} and resume again") from None
        return _train(run_dir, session, checkpoint, quiet, stream)


@page_when_done  # finished, interrupted, diverged or failed: the run's report.html
def _train(run_dir: Path, session: Session, resume_from, quiet: bool, stream) -> dict:
    """Train (from scratch, or from the checkpoint `resume_from`), then save everything the run produced."""
    from beanstrain.checkpoints import Keeper, restore
    from beanstrain.interrupts import StopRequest
    from beanstrain.progress import Progress
    from beanstrain.engines import History

    recipe, dataset, model = session.recipe, session.dataset, session.model
    start_epoch = resume_from.epoch if resume_from else 0
    if not quiet:
        echo(f"{recipe.name}: {recipe.model} on {recipe.dataset}, {recipe.epochs} epochs, batch "
             f"{session.batch_size}, {recipe.optimizer} on {session.loss_name}, seed {recipe.seed}", stream)
        echo(f"device: {session.device['kind']} ({session.device['name']}); engine: {session.engine}; "
             f"run: {run_dir}" + (f"; resuming after epoch {start_epoch}" if resume_from else ""), stream)
    progress = Progress(recipe.epochs, stream=stream, quiet=quiet, start_epoch=start_epoch)
    keeper = None
    with failures.recording_failure(run_dir, progress, lambda: keeper), session.placement(), \
            contextlib.ExitStack() as training:
        training.enter_context(session.replicas())
        trainer = session.make_trainer()
        history = History(trainer.columns)
        trace = session.new_trace(resume_from.trace if resume_from else None)
        by_step = getattr(trainer, "snapshot_steps", None) is not None  # its snapshots are keyed by step
        if by_step and trace.steps is None:  # a checkpoint from before step snapshots: keep to epochs
            trainer.snapshot_steps, by_step = None, False
        if resume_from:
            restore(trainer, resume_from)
            history.rows.extend(resume_from.history_rows)
        keeper = Keeper(run_dir, trainer, recipe.seed, resume_from.train_seconds if resume_from else 0.0,
                        trace=trace)
        keeper.take(start_epoch, history.rows)

        def on_chunk(epoch, history):
            progress.update(epoch, history.last())
            trace.take(trainer.snapshots, by_step=by_step)
            keeper.take(epoch, history.rows)

        with StopRequest(stream) as stop:
            trainer.run(start_epoch, recipe.epochs, on_chunk=on_chunk, should_stop=stop.requested, history=history)
        training.close()  # the figures, the model file and the pictures are made as on one device
        trace.take(trainer.snapshots, by_step=by_step)
        train_seconds = keeper.train_seconds()
        progress.close()
        diverged = history.diverged_at()
        stopped = stop.requested() and not diverged and history.epochs_done < recipe.epochs
        unfinished = None
        if not (diverged or stopped):
            runs.write_history(run_dir / runs.HISTORY, history.columns, history.rows)
            predict = predictor(model, recipe.model)
            # One pass over the test set gives its figures, the dead-end checks and the image pictures.
            test_outputs = predict(dataset.x_test)
            y_test = session.encode(dataset.y_test)
            metrics = {"train": figures(session.data.y, predict(session.data.x), session.loss_name, session.accuracy),
                       "test": figures(y_test, test_outputs, session.loss_name, session.accuracy)}
            if dataset.is_image:  # the run's page shows it without a `beanstrain eval`
                metrics["per_class_accuracy"] = per_class_accuracy(test_outputs, dataset.y_test, dataset.class_names)
            warnings = _dead_ends(session, history, test_outputs, y_test, metrics)
            digest = files.write_with(run_dir / runs.MODEL, model.save)  # Keras writes the file itself
            files.write_json(run_dir / runs.METRICS, {**metrics, "train_seconds": train_seconds,
                                                      "epochs": history.epochs_done, "warnings": warnings})
            write_trace(run_dir, trace)
            unfinished = _draw_and_finish(
                run_dir, lambda: draw_pictures(run_dir, dataset, predict, test_outputs, history.columns, history.rows,
                                               model, trace, session.loss_name, session.animation, recipe),
                model_sha256=digest, train_seconds=train_seconds, epochs_done=history.epochs_done)
    if diverged or stopped:
        failures.stop_early(run_dir, keeper, history, diverged=diverged, signal_name=stop.signal_name,
                            epochs=recipe.epochs, learning_rate=recipe.learning_rate, train_seconds=train_seconds)
    if unfinished:
        raise unfinished
    from beanstrain.models import small_weights

    figures_only = {split: metrics[split] for split in ("train", "test")}  # per class: in metrics.json
    summary = _summary(run_dir, recipe.name, session.device, session.engine, train_seconds, figures_only, warnings)
    weights = small_weights(model)
    return summary if weights is None else {**summary, "weights": weights}


def _summary(run_dir: Path, recipe_name: str, device: dict, engine: str | None, train_seconds: float,
             metrics: dict, warnings: list[str]) -> dict:
    """What `fit --json` prints for a run; a network of a handful of weights adds them (`models.small_weights`)."""
    return {"run_dir": str(run_dir), "recipe": recipe_name, "device": device.get("name"),
            "device_kind": device.get("kind"), "engine": engine, "train_seconds": round(train_seconds, 4),
            "metrics": metrics, "warnings": warnings}


def _dead_ends(session: Session, history, test_outputs, y_test, metrics) -> list[str]:
    """The warnings of `beanstrain.diagnosis` for a run that trained without learning; [] when it learned."""
    from beanstrain.diagnosis import Evidence, dead_ends, dead_relu_layers

    output = session.model.layers[-1]
    activation = getattr(getattr(output, "activation", None), "__name__", None)
    evidence = Evidence(losses=history.column("loss"), outputs=test_outputs, targets=y_test,
                        accuracy_kind=session.accuracy, test_accuracy=metrics["test"].get("accuracy"),
                        learning_rate=float(session.model.optimizer.learning_rate.numpy()),
                        output_activation=activation if activation in ("sigmoid", "softmax") else None,
                        level_mapping=session.recipe.level_mapping if session.recipe.levels else None)
    probe = session.data.x[:PROBE_SAMPLES]
    return dead_ends(evidence, relu_check=lambda: (dead_relu_layers(session.model, probe), len(probe)))


def _draw_and_finish(run_dir: Path, draw, **fields) -> RunError | None:
    """Draw the pictures, then mark the run finished; returns the one-line error to raise, if any.

    The model and metrics are saved by now, so a picture that cannot be written (a full disk) still
    leaves a finished run, marked `pictures_missing`, and one line saying how to draw them once there
    is room (`fit --resume`).  A config.json that cannot say `finished` leaves the run unfinished.
    Any other error from drawing is the caller's to record."""
    from beanstrain.checkpoints import remove_checkpoint

    try:
        pictures, picture_error = draw(), None
    except OSError as error:
        pictures = [name for name in runs.saved_outputs(run_dir) if name.endswith(runs.PICTURE_SUFFIXES)]
        picture_error = error
    state_error = failures.try_set_state(
        run_dir, runs.FINISHED, **fields, pictures=pictures, pictures_missing=picture_error is not None,
        checkpoint_epoch=None, error=failures.reason(picture_error, run_dir) if picture_error else None)
    if state_error is None:
        with contextlib.suppress(OSError):  # a leftover checkpoint beside a finished run does no harm
            remove_checkpoint(run_dir)
    if picture_error is not None or state_error is not None:
        return failures.unfinished(run_dir, picture_error, state_error)
    return None


@page_when_done
def _draw_missing_pictures(run_dir: Path, config: dict, quiet: bool, stream) -> dict:
    """`fit --resume` of a finished run whose pictures a full disk kept it from drawing: draw them now."""
    from beanstrain.evaluation import load_run_model

    if not quiet:
        echo(f"{run_dir} is trained; drawing the pictures it is missing", stream)
    try:
        recipe = Recipe(**config["recipe"])
    except (KeyError, TypeError) as error:
        raise RunError(f"{run_dir / runs.CONFIG} is damaged: {error}") from None
    dataset = load_dataset(recipe.dataset, recipe.samples, recipe.noise, recipe.seed, config.get("data_path"))
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
                                                                 _recorded_animation(config), recipe))
    if unfinished:
        raise unfinished
    return _summary(run_dir, recipe.name, config.get("device") or {}, config.get("engine"),
                    float(config.get("train_seconds") or metrics.get("train_seconds", 0.0)),
                    {split: metrics[split] for split in ("train", "test") if split in metrics},
                    metrics.get("warnings", []))


def _recorded_animation(config: dict) -> str:
    """The animation a run asked for; a GIF when mp4 was asked for and ffmpeg has gone since."""
    from beanstrain.plots.animate import animation_available

    animation = config.get("animation", "gif")
    return animation if animation_available(animation) else "gif"


def draw_pictures(run_dir: Path, dataset: Dataset, predict, test_outputs, columns, rows, model=None, trace=None,
                  loss_name=None, animation="gif", recipe: Recipe | None = None) -> list[str]:
    from beanstrain.plots import RunOutputs, draw_run_pictures

    return draw_run_pictures(run_dir, RunOutputs(dataset, predict, test_outputs, columns, rows, recipe=recipe,
                                                 model=model, trace=trace, loss_name=loss_name, animation=animation))
