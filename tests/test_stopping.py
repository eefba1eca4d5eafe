"""Early stopping (--patience): the epoch Keras's own EarlyStopping stops at, and the best epoch's weights kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain.cli import cli

# beans4-hidden2 at a rate of 3: its test loss falls, then wanders, so a patience of 10 stops it early.
SETTINGS = ["beans4-hidden2", "--learning-rate", "3", "--epochs", "120", "--animation", "none", "--quiet", "--json",
            "--no-tensorboard"]


class Snapshots:
    """What Keras's callback sees of a model: its weights after each epoch, from a whole run's trace."""

    def __init__(self, trace):
        self.trace, self.epoch, self.stop_training = trace, 0, False

    def get_weights(self):
        return [np.array(weight) for weight in self.trace_weights(self.epoch) or []]

    def trace_weights(self, epoch):
        """The weights after `epoch`; None where the trace has no snapshot there (the numpy engine's are by step)."""
        epochs = list(self.trace["epochs"])
        if epoch not in epochs:
            return None
        return [self.trace[f"weight_{number}"][epochs.index(epoch)] for number in range(len(self.trace["names"]))]

    def set_weights(self, weights):
        self.restored = weights


def keras_verdict(run_dir: Path, patience: int, monitor: str):
    """Keras's EarlyStopping, fed the whole run's held-out figures epoch by epoch: (stopped, best) 1-based."""
    import keras

    columns, *rows = [line.split(",") for line in (run_dir / "history.csv").read_text().split()]
    index = columns.index(f"test_{monitor}")
    callback = keras.callbacks.EarlyStopping(monitor=f"val_{monitor}", patience=patience, restore_best_weights=True,
                                             mode="min" if monitor == "loss" else "max")
    with np.load(run_dir / "trace.npz") as trace:
        model = Snapshots({key: trace[key] for key in trace.files})
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, row in enumerate(rows):
            model.epoch = epoch + 1
            callback.on_epoch_end(epoch, {f"val_{monitor}": float(row[index])})
            if model.stop_training:
                break
        callback.on_train_end()
        best_weights = model.trace_weights(callback.best_epoch + 1)
    return callback.stopped_epoch + 1 if callback.stopped_epoch else None, callback.best_epoch + 1, best_weights


@pytest.mark.parametrize("engine", ["compiled", "fit", "numpy"])
def test_stops_where_keras_stops_and_keeps_the_best_weights(runner, tmp_path, engine):
    import keras

    whole = runner.invoke(cli, ["fit", *SETTINGS, "--engine", engine, "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    stopped, best, best_weights = keras_verdict(Path(json.loads(whole.stdout)["run_dir"]), 10, "loss")
    assert stopped is not None and best < stopped < 120  # the case stops early: the test means something
    if best_weights is None:  # no snapshot at that epoch: a run of exactly that many epochs has its weights
        shorter = runner.invoke(cli, ["fit", *SETTINGS, "--engine", engine, "--epochs", str(best), "--out",
                                      str(tmp_path / "shorter")])
        shorter_dir = Path(json.loads(shorter.stdout)["run_dir"])
        best_weights = keras.saving.load_model(shorter_dir / "model.keras").get_weights()
    done = runner.invoke(cli, ["fit", *SETTINGS, "--engine", engine, "--patience", "10", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    run_dir = Path(summary["run_dir"])
    assert summary["early_stopping"] == {"monitor": "test_loss", "patience": 10, "best_epoch": best,
                                         "best": pytest.approx(summary["early_stopping"]["best"]),
                                         "stopped_epoch": stopped}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == stopped and metrics["early_stopping"]["best_epoch"] == best
    assert json.loads((run_dir / "config.json").read_text())["state"] == "finished"
    saved = keras.saving.load_model(run_dir / "model.keras").get_weights()
    for ours, oracle in zip(saved, best_weights, strict=True):
        np.testing.assert_array_equal(ours, oracle)
    assert metrics["test"]["loss"] == pytest.approx(summary["early_stopping"]["best"], rel=1e-5)


def test_monitor_accuracy_follows_keras_too(runner, tmp_path):
    whole = runner.invoke(cli, ["fit", *SETTINGS, "--engine", "numpy", "--out", str(tmp_path / "whole")])
    stopped, best, _ = keras_verdict(Path(json.loads(whole.stdout)["run_dir"]), 5, "accuracy")
    done = runner.invoke(cli, ["fit", *SETTINGS, "--engine", "numpy", "--patience", "5", "--monitor", "accuracy",
                               "--out", str(tmp_path)])
    record = json.loads(done.stdout)["early_stopping"]
    assert (record["stopped_epoch"], record["best_epoch"], record["monitor"]) == (stopped, best, "test_accuracy")


@pytest.mark.parametrize(("arguments", "message"), [
    (["beans4-hidden2", "--patience", "-1"], "patience must be a whole number of epochs"),
    (["beans1-neuron", "--patience", "5", "--monitor", "accuracy"], "--monitor accuracy needs a classification set"),
])
def test_refusals_are_one_line(runner, tmp_path, arguments, message):
    done = runner.invoke(cli, ["fit", *arguments, "--out", str(tmp_path)])
    assert done.exit_code == 2 and message in done.output, done.output


def test_interrupted_after_its_best_epoch_it_resumes_to_the_same_best_weights(invoke, fit_json, tmp_path,
                                                                             monkeypatch, interrupt_at):
    """The best epoch (66) comes before the interruption (70): its weights come back from best-weights.npz."""
    from run_folders import config_of, only_run

    from beanstrain.devices import load_keras

    arguments = [*[value for value in SETTINGS if value not in ("--quiet", "--json")], "--engine", "numpy",
                 "--patience", "10"]
    out = tmp_path / "stopped"
    interrupt_at(70)
    invoke("fit", *arguments, "--out", out, exit_code=130)
    monkeypatch.undo()
    run_dir = only_run(out)
    assert config_of(run_dir)["checkpoint_epoch"] == 70 and (run_dir / "best-weights.npz").is_file()
    resumed = json.loads(invoke("fit", "--resume", run_dir, "--json", "--quiet").stdout)
    straight = fit_json(*arguments)
    assert resumed["early_stopping"] == straight["early_stopping"] and straight["early_stopping"]["best_epoch"] < 70
    keras = load_keras()
    for ours, oracle in zip(keras.saving.load_model(run_dir / "model.keras").get_weights(),
                            keras.saving.load_model(Path(straight["run_dir"]) / "model.keras").get_weights()):
        np.testing.assert_array_equal(ours, oracle)
    assert not (run_dir / "best-weights.npz").exists()
