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

A run is prepared (`beanstrain.preparation`: every value checked before a
run folder exists), trained here by its engine's trainer, which tells the
run's listeners (`beanstrain.listeners`: progress, the weight trace, the
checkpoint keeper) after each chunk of epochs, and saved
(`beanstrain.outputs`).  However it ends, the run's page is written
(`report.write_page_after`).  The run folder records everything the run used
(resolved recipe, seed, device, engine, versions) beside what it produced.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from beanstrain import files, outputs, report, run_failures, runs
from beanstrain.backends import DEFAULT_BACKEND, use_backend
from beanstrain.board import BoardWriter
from beanstrain.checkpoints import FINAL_INFO, Keeper, has_checkpoint, keep_final_state, read_checkpoint, restore
from beanstrain.devices import library_versions
from beanstrain.engines import History, get_engine
from beanstrain.errors import RunError, UsageError
from beanstrain.interrupts import StopRequest
from beanstrain.listeners import Listeners
from beanstrain.plots.animate import check_animation
from beanstrain.preparation import PreparedRun, prepare
from beanstrain.progress import Progress, echo
from beanstrain.recipes import Recipe, as_dict, check_recipe, keeps_file, recipe_file, recipe_toml
from beanstrain.stopping import EarlyStopping
from beanstrain.trace import TraceRecorder


def fit_run(recipe: Recipe, out: Path, device: str = "auto", quiet: bool = False, data_path: str | None = None,
            stream=None, run_dir: Path | None = None, devices: int = 1, animation: str = "gif",
            tensorboard: bool = True) -> dict:
    """Train a recipe into a new run folder and return the summary `fit --json` prints.

    `run_dir` is an empty folder already made by `runs.create_run_dir` under `out` (a sweep makes each
    trial's folder when it hands the trial out, so its record names the folder from the start)."""
    stream = stream or sys.stderr
    out = runs.check_out_dir(out)
    check_animation(animation)
    prepared = prepare(recipe, device, data_path, stream, devices=devices, animation=animation)
    try:
        run_dir = Path(run_dir) if run_dir is not None else runs.create_run_dir(out, recipe.name)
    except OSError as error:
        raise RunError(f"cannot create a run folder under {out}: {run_failures.reason(error)}; "
                       f"{run_failures.remedy(error)} and train again") from None
    with runs.holding(run_dir):
        config = {
            "recipe": as_dict(recipe), "loss": prepared.loss_name, "batch_size": prepared.batch_size,
            "seed": recipe.seed, "device": prepared.device, "engine": prepared.engine, "backend": prepared.backend,
            "data_source": prepared.dataset.source, "data_path": data_path,
            "parameters": prepared.model.count_params(), "versions": library_versions(),
            "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "state": runs.RUNNING,
            "animation": animation, "tensorboard": tensorboard,
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
            raise RunError(f"{run_failures.reason(error, run_dir)}; nothing was saved and the empty run folder "
                           f"was removed; {run_failures.remedy(error)} and train again") from None
        return report.write_page_after(run_dir, stream, lambda: train(run_dir, prepared, None, quiet, stream,
                                                                      tensorboard))


def resume_run(run_dir: Path, device: str = "auto", quiet: bool = False, stream=None,
               devices: int | None = None, backend: str | None = None, epochs: int | None = None) -> dict:
    """Continue an interrupted (or failed) run from its checkpoint, in its own folder, to its recipe's epochs;
    or, with `epochs`, extend a finished run from its final state to that many epochs in all.

    The recipe, data, batch size, engine and backend are the ones config.json recorded; so is the number
    of devices, unless `devices` asks for another.  A `backend` other than the recorded one is refused:
    the checkpoint's optimizer state and the batches after it are exact on the backend that made them.
    """
    stream = stream or sys.stderr
    run_dir = Path(run_dir)
    if not (run_dir / runs.CONFIG).is_file():
        raise UsageError(f"--resume {run_dir}: not a run folder (it has no {runs.CONFIG})")
    with runs.holding(run_dir):
        config = files.read_json(run_dir / runs.CONFIG)
        state = config.get("state")
        recorded = config.get("backend", DEFAULT_BACKEND)
        if backend is not None and backend != recorded:
            raise UsageError(f"--resume {run_dir}: the run trains on the {recorded} backend and resumes on it only; "
                             f"drop --backend {backend}, or train a new run on {backend}")
        use_backend(recorded)
        if epochs is not None:
            return report.write_page_after(run_dir, stream, lambda: _extend(run_dir, config, epochs, device, quiet,
                                                                            stream, devices))
        if state == runs.FINISHED and config.get("pictures_missing"):
            return report.write_page_after(
                run_dir, stream, lambda: outputs.draw_missing_pictures(run_dir, config, quiet, stream))
        if state == runs.FINISHED:
            raise UsageError(f"--resume {run_dir}: the run is already finished; evaluate it with: "
                             f"beanstrain eval {run_dir}, or train it on with --epochs N (N epochs in all)")
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
        prepared = prepare(recipe, device, config.get("data_path"), stream, batch_size, engine, devices,
                           animation=outputs.recorded_animation(config))
        resumes = config.get("resumed", []) + [{"from_epoch": checkpoint.epoch, "command": sys.argv,
                                                "started": time.strftime("%Y-%m-%dT%H:%M:%S")}]
        try:
            files.remove_temporaries(run_dir)
            runs.set_state(run_dir, runs.RUNNING, resumed=resumes, device=prepared.device, error=None)
        except OSError as error:
            raise RunError(f"{run_failures.reason(error, run_dir)}; nothing changed, the run is still {state}; "
                           f"{run_failures.remedy(error)} and resume again") from None
        return report.write_page_after(run_dir, stream, lambda: train(run_dir, prepared, checkpoint, quiet, stream,
                                                                      config.get("tensorboard", True)))


def _extend(run_dir: Path, config: dict, epochs: int, device: str, quiet: bool, stream, devices) -> dict:
    """A finished run trained on from its final state to `epochs` in all, as if it had been asked for them."""
    import dataclasses

    if config.get("state") != runs.FINISHED:
        raise UsageError(f"--resume {run_dir} --epochs: only a finished run is extended; resume this "
                         f"{config.get('state')} one first, without --epochs")
    if not (run_dir / FINAL_INFO).is_file():
        raise UsageError(f"--resume {run_dir} --epochs: the run kept no final state (it was trained by an "
                         "older beanstrain, or its disk was full), so it cannot be trained on; train a new run "
                         f"with --epochs {epochs}")
    try:
        recipe = Recipe(**config["recipe"])
        batch_size, engine = int(config["batch_size"]), config["engine"]
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{run_dir / runs.CONFIG} is damaged: {error}") from None
    if recipe.patience:
        raise UsageError(f"--resume {run_dir} --epochs: a run with --patience ends where its held-out figure "
                         f"stopped improving; train a new run with --epochs {epochs} --patience {recipe.patience}")
    final = read_checkpoint(run_dir, FINAL_INFO)
    if epochs <= final.epoch:
        raise UsageError(f"--epochs {epochs}: the run has trained {final.epoch} epochs already; give more "
                         "(the epochs in all, not the epochs to add)")
    recipe = dataclasses.replace(recipe, epochs=epochs)
    devices = devices if devices is not None else len(config.get("device", {}).get("devices") or [None])
    prepared = prepare(recipe, device, config.get("data_path"), stream, batch_size, engine, devices,
                       animation=outputs.recorded_animation(config))
    extended = config.get("extended", []) + [{"from_epoch": final.epoch, "to_epochs": epochs, "command": sys.argv,
                                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")}]
    try:
        runs.set_state(run_dir, runs.RUNNING, recipe=as_dict(recipe), extended=extended, device=prepared.device,
                       error=None)
    except OSError as error:
        raise RunError(f"{run_failures.reason(error, run_dir)}; nothing changed, the run is still finished; "
                       f"{run_failures.remedy(error)} and try again") from None
    return train(run_dir, prepared, final, quiet, stream, config.get("tensorboard", True))


def train(run_dir: Path, prepared: PreparedRun, resume_from, quiet: bool, stream, tensorboard: bool = True) -> dict:
    """Train (from scratch, or from the checkpoint `resume_from`), then save everything the run produced.

    The loop itself is the engine's (`Trainer.run`); this tells the run's listeners about each chunk of
    epochs and the end, and records a run that stops early (Ctrl-C, divergence) or fails."""
    recipe = prepared.recipe
    start_epoch = resume_from.epoch if resume_from else 0
    if not quiet:
        echo(f"{recipe.name}: {recipe.model} on {recipe.dataset}, {recipe.epochs} epochs, batch "
             f"{prepared.batch_size}, {recipe.optimizer} on {prepared.loss_name}, seed {recipe.seed}", stream)
        echo(f"device: {prepared.device['kind']} ({prepared.device['name']}); engine: {prepared.engine}; "
             f"run: {run_dir}" + (f"; resuming after epoch {start_epoch}" if resume_from else ""), stream)
    listeners = Listeners([Progress(recipe.epochs, stream=stream, quiet=quiet, start_epoch=start_epoch)])
    unfinished = None
    with run_failures.recording_failure(run_dir, listeners), prepared.placement(), \
            contextlib.ExitStack() as training:
        training.enter_context(prepared.replicas())
        trainer = prepared.make_trainer()
        history = History(trainer.columns)
        trace = prepared.new_trace(resume_from.trace if resume_from else None)
        by_step = getattr(trainer, "snapshot_steps", None) is not None  # its snapshots are keyed by step
        if by_step and trace.steps is None:  # a checkpoint from before step snapshots: keep to epochs
            trainer.snapshot_steps, by_step = None, False
        if resume_from:
            restore(trainer, resume_from)
            history.rows.extend(resume_from.history_rows)
        keeper = Keeper(run_dir, trainer, recipe.seed, resume_from.train_seconds if resume_from else 0.0,
                        trace=trace)
        keeper.take(start_epoch, history.rows)
        # The trace takes each chunk's snapshots before the keeper copies the trace into its checkpoint.
        listeners.append(TraceRecorder(trace, trainer, by_step))
        if tensorboard:  # after the trace, whose new snapshots it writes
            listeners.append(BoardWriter(run_dir, trainer.columns, trace, start_epoch))
        early = None
        if recipe.patience:  # before the keeper: a checkpoint then holds the epoch it judged
            early = EarlyStopping(prepared.model, trainer.columns, recipe.patience, recipe.monitor, history.rows,
                                  run_dir)
            trainer.most_epochs_per_chunk = 1
            listeners.append(early)
        listeners.append(keeper)
        with StopRequest(stream) as stop:
            trainer.run(start_epoch, recipe.epochs, on_chunk=listeners.on_chunk,
                        should_stop=(lambda: stop.requested() or early.should_stop()) if early else stop.requested,
                        history=history)
        training.close()  # the metrics, the model file and the pictures are made as on one device
        listeners.on_end(history)
        train_seconds = keeper.train_seconds()
        diverged = history.diverged_at()
        stopped = stop.requested() and not diverged and history.epochs_done < recipe.epochs
        if not (diverged or stopped):
            if early:
                early.finish()
            summary, unfinished = outputs.save_finished_run(run_dir, prepared, history, trace, train_seconds,
                                                            early.record() if early else None)
    if diverged or stopped:
        run_failures.stop_early(run_dir, keeper, history, diverged=diverged, signal_name=stop.signal_name,
                                epochs=recipe.epochs, learning_rate=recipe.learning_rate,
                                train_seconds=train_seconds)
    if unfinished:
        raise unfinished
    with contextlib.suppress(OSError, RunError):  # without it the run is whole, only not extendable
        if keeper.save() == history.epochs_done:
            keep_final_state(run_dir)
    return summary
