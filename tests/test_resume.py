"""Ctrl-C, SIGTERM and divergence during `fit`: checkpoints, run states, and resuming to the exact same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from run_folders import config_of, only_run

from beanstrain import runs
from beanstrain.devices import load_keras
from beanstrain.trace import read_trace, snapshot_epochs, snapshot_steps

keras = load_keras()


def checkpoint_arrays(run_dir) -> Path:
    """The arrays file checkpoint.json names."""
    return Path(run_dir) / json.loads((Path(run_dir) / "checkpoint.json").read_text())["arrays"]


def assert_same_model(first_dir, second_dir):
    """Both runs' saved networks and optimizer states, bit for bit."""
    first = keras.saving.load_model(Path(first_dir) / runs.MODEL, safe_mode=True)
    second = keras.saving.load_model(Path(second_dir) / runs.MODEL, safe_mode=True)
    for mine, theirs in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(first.optimizer.variables, second.optimizer.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert (Path(first_dir) / runs.HISTORY).read_text() == (Path(second_dir) / runs.HISTORY).read_text()


# The numpy engine's case is a lesson of one bean a step: its trace is taken by step, inside epochs.
@pytest.mark.parametrize("recipe, engine, epochs", [("beans4-hidden2", "compiled", 400), ("beans4-hidden2", "fit", 12),
                                                    ("beans1-rosenblatt", "numpy", 400)])
def test_interrupt_then_resume_equals_an_uninterrupted_run(invoke, fit_json, tmp_path, monkeypatch, interrupt_at,
                                                            recipe, engine, epochs):
    args = [recipe, "--epochs", epochs, "--engine", engine, "--seed", 5]
    out = tmp_path / "stopped"
    interrupt_at(3)
    result = invoke("fit", *args, "--out", out, exit_code=130)
    monkeypatch.undo()
    run_dir = only_run(out)
    message = result.output.strip().splitlines()[-1]
    assert f"resume with: beanstrain fit --resume {run_dir}" in message
    config = config_of(run_dir)
    assert config["state"] == "interrupted" and config["error"] == "SIGINT"
    stopped_at = config["checkpoint_epoch"]
    assert 3 <= stopped_at < epochs
    assert checkpoint_arrays(run_dir).name == f"checkpoint-{stopped_at}.npz" and not (run_dir / runs.MODEL).exists()
    with np.load(checkpoint_arrays(run_dir), allow_pickle=False) as saved:  # it carries the trace so far
        assert 0 < saved["trace_epochs"][-1] <= stopped_at
    assert (run_dir / runs.HISTORY).read_text().count("\n") == stopped_at + 1

    resumed = json.loads(invoke("fit", "--resume", run_dir, "--json", "--quiet").stdout)
    assert resumed["run_dir"] == str(run_dir) and resumed["engine"] == engine
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["resumed"][0]["from_epoch"] == stopped_at
    assert not list(run_dir.glob("checkpoint*"))
    straight = fit_json(*args)
    assert_same_model(run_dir, straight["run_dir"])
    assert resumed["metrics"] == straight["metrics"]
    resumed_trace, straight_trace = read_trace(run_dir), read_trace(straight["run_dir"])
    if engine == "numpy":
        per_epoch = 100  # the recipe's 100 beans, one a step
        assert resumed_trace.steps == straight_trace.steps == snapshot_steps(epochs * per_epoch)
        assert resumed_trace.epochs == straight_trace.epochs == [step / per_epoch for step in straight_trace.steps]
        assert sum(0 < epoch < 1 for epoch in straight_trace.epochs) > 1  # inside the first epoch
    else:
        assert resumed_trace.epochs == straight_trace.epochs == snapshot_epochs(epochs)
    for index in range(len(straight_trace.names)):
        np.testing.assert_array_equal(resumed_trace.weight(index), straight_trace.weight(index))


def test_second_signal_stops_at_once_inside_the_epoch(invoke, fit_json, tmp_path, monkeypatch):
    """A SIGINT after batch 2 of epoch 3 asks to stop when that epoch ends; a second one after batch 5 stops
    right there: no further batch runs, and the checkpoint is that of epoch 2, the last whole one."""
    args = ["beans7-neuron", "--epochs", 5, "--engine", "fit", "--seed", 2]  # 10 batches an epoch
    batches_run = []

    class SignalsAtBatches(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            batches_run.append((self.epoch + 1, batch + 1))
            if batches_run[-1] in ((3, 2), (3, 5)):
                os.kill(os.getpid(), signal.SIGINT)

    fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda model, *positional, callbacks=(), **named: fit(
        model, *positional, callbacks=[*callbacks, SignalsAtBatches()], **named))
    result = invoke("fit", *args, "--out", tmp_path / "stopped", exit_code=130)
    monkeypatch.undo()
    assert batches_run[-1] == (3, 5)
    run_dir = only_run(tmp_path / "stopped")
    assert result.output.strip().splitlines()[-1] == (
        f"Error: interrupted; checkpoint after epoch 2 saved; resume with: beanstrain fit --resume {run_dir}")
    config = config_of(run_dir)
    assert config["state"] == "interrupted" and config["checkpoint_epoch"] == 2
    invoke("fit", "--resume", run_dir, "--quiet")
    assert_same_model(run_dir, fit_json(*args)["run_dir"])


HOOKED_CLI = Path(__file__).parent / "hooked_beanstrain.py"


def _start(arguments, stderr_path: Path, **hooks):
    """`beanstrain fit ARGUMENTS` in a new process, with the test hooks of tests/hooked_beanstrain.py."""
    stderr = open(stderr_path, "w")  # noqa: SIM115 (the child process writes to it until it is killed)
    environment = {**os.environ, **{name: str(value) for name, value in hooks.items()}}
    return subprocess.Popen([sys.executable, str(HOOKED_CLI), "fit", *map(str, arguments)],
                            stdout=subprocess.DEVNULL, stderr=stderr, env=environment), stderr


def _wait_for(path: Path, process, stderr_path: Path, timeout=180.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, stderr_path.read_text()
        assert time.monotonic() < deadline, "the run did not reach the epoch in time"
        time.sleep(0.05)


@pytest.mark.parametrize("number, arguments", [
    (signal.SIGINT, ["beans4-hidden2", "--epochs", 400]),  # 4000 steps: the compiled engine
    (signal.SIGTERM, ["beans4-hidden2", "--epochs", 8, "--engine", "fit"]),
], ids=["SIGINT-compiled", "SIGTERM-fit"])
def test_signal_to_a_real_process_then_resume(invoke, fit_json, tmp_path, number, arguments):
    """The process waits at the first chunk end from epoch 3 on (a test hook) until the signal sent from
    here reaches it, so the signal always lands while the run has epochs left."""
    out, stderr_path, ready = tmp_path / "stopped", tmp_path / "stderr.txt", tmp_path / "ready"
    process, stderr = _start([*arguments, "--out", out], stderr_path, BEANSTRAIN_TEST_WAIT_AT=3,
                             BEANSTRAIN_TEST_READY=ready)
    try:
        _wait_for(ready, process, stderr_path)
        run_dir = only_run(out)
        assert config_of(run_dir)["state"] == "running"
        process.send_signal(number)
        assert process.wait(timeout=120) == 130, stderr_path.read_text()
    finally:
        process.kill()
        stderr.close()
    last_line = stderr_path.read_text().strip().splitlines()[-1]
    assert last_line.startswith(f"Error: {number.name}: stopped after epoch ")
    assert last_line.endswith(f"resume with: beanstrain fit --resume {run_dir}")
    config = config_of(run_dir)
    assert config["state"] == "interrupted" and 3 <= config["checkpoint_epoch"] < arguments[2]
    if "fit" in arguments:  # the fit engine stops after the current epoch
        assert config["checkpoint_epoch"] == 3

    invoke("fit", "--resume", run_dir, "--quiet")
    assert config_of(run_dir)["state"] == "finished"
    assert_same_model(run_dir, fit_json(*arguments)["run_dir"])


def test_a_run_killed_with_sigkill_resumes_from_its_periodic_checkpoint(invoke, fit_json, tmp_path):
    """No handler runs on SIGKILL: the run stays `running`, and `--resume` continues it from the checkpoint
    the running job wrote on its own (its interval shortened by the hook, the kill right after a write)."""
    arguments = ["beans4-hidden2", "--epochs", 8, "--engine", "fit"]
    out, stderr_path = tmp_path / "killed", tmp_path / "stderr.txt"
    process, stderr = _start([*arguments, "--out", out, "--quiet"], stderr_path, BEANSTRAIN_TEST_KILL_AFTER=3)
    try:
        assert process.wait(timeout=300) == -signal.SIGKILL, stderr_path.read_text()
    finally:
        process.kill()
        stderr.close()
    run_dir = only_run(out)
    config = config_of(run_dir)
    saved = json.loads((run_dir / "checkpoint.json").read_text())["epoch"]
    assert config["state"] == "running" and saved == 3  # the fit engine's chunk is one epoch
    assert not (run_dir / runs.MODEL).exists()

    resumed = json.loads(invoke("fit", "--resume", run_dir, "--json", "--quiet").stdout)
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["resumed"][0]["from_epoch"] == saved
    straight = fit_json(*arguments)
    assert_same_model(run_dir, straight["run_dir"])
    assert resumed["metrics"] == straight["metrics"]
    # TensorBoard's own reader sees each epoch once, across the kill, with the figures history.csv has.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    assert len(list((run_dir / "tb" / "train").glob("events.out.tfevents.*"))) == 1  # written anew on resume
    board = EventAccumulator(str(run_dir / "tb" / "train"))
    board.Reload()
    shown = board.Tensors("epoch_loss")
    losses = [float(line.split(",")[1]) for line in (run_dir / "history.csv").read_text().split()[1:]]
    assert [event.step for event in shown] == list(range(1, 9))
    assert [float(make_ndarray(event.tensor_proto)) for event in shown] == pytest.approx(losses, rel=1e-6)


def test_resuming_a_finished_run_is_refused(invoke, fit_json):
    run_dir = fit_json("beans7-neuron", "--epochs", "2")["run_dir"]
    result = invoke("fit", "--resume", run_dir, exit_code=2)
    assert "already finished" in result.output and len(result.output.strip().splitlines()) == 1
    assert "or train it on with --epochs N (N epochs in all)" in result.output
    fewer = invoke("fit", "--resume", run_dir, "--epochs", "2", exit_code=2)
    assert "the run has trained 2 epochs already; give more" in fewer.output


@pytest.mark.parametrize(("engine", "epochs", "more"), [("compiled", 20, 50), ("fit", 3, 7), ("numpy", 3, 7)])
def test_a_finished_run_extended_equals_one_trained_that_long(invoke, fit_json, tmp_path, engine, epochs, more):
    """The batch order depends on the seed and the epoch alone, and the final state keeps the optimizer's: training
    on from epoch `epochs` to `more` gives the bits a run of `more` epochs from the start has."""
    args = ["beans4-hidden2", "--engine", engine, "--seed", 2, "--animation", "none"]
    run_dir = Path(fit_json(*args, "--epochs", epochs)["run_dir"])
    assert {"final-state.json", "final-state.npz"} <= {path.name for path in run_dir.iterdir()}
    extended = json.loads(invoke("fit", "--resume", run_dir, "--epochs", more, "--json", "--quiet").stdout)
    straight = fit_json(*args, "--epochs", more)
    assert_same_model(run_dir, straight["run_dir"])
    assert extended["metrics"] == straight["metrics"] and extended["run_dir"] == str(run_dir)
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["recipe"]["epochs"] == more
    assert config["extended"][0]["from_epoch"] == epochs and not list(run_dir.glob("checkpoint*"))
    assert json.loads((run_dir / "final-state.json").read_text())["epoch"] == more


@pytest.mark.parametrize("engine", ["compiled", "fit", "numpy"])
def test_divergence_stops_keeps_the_last_finite_weights_and_exits_1(invoke, fit_json, tmp_path, monkeypatch, engine):
    """SGD at 0.85 on beans1 is just past its stable rate: the loss grows for some twenty epochs, then
    overflows well after the first chunks. The run stops at that epoch and keeps the weights of the last
    finite chunk, which are those of a run of that many epochs, not the initial ones."""
    from beanstrain.engines import chunks, numpy_engine

    for engine_module in (chunks, numpy_engine):  # chunks of 1, 1, 10, 100... epochs
        monkeypatch.setattr(engine_module, "CHUNK_SECONDS", 1e9)
    args = ["--dataset", "beans1", "--model", "neuron", "--optimizer", "sgd", "--learning-rate", "0.85",
            "--engine", engine]
    out = tmp_path / "diverged"
    result = invoke("fit", *args, "--epochs", 300, "--out", out, "--quiet", exit_code=1)
    assert len(result.output.strip().splitlines()) == 1
    message = result.output
    run_dir = only_run(out)
    config = config_of(run_dir)
    assert config["state"] == "diverged"
    diverged, saved = config["diverged_epoch"], config["checkpoint_epoch"]
    assert f"diverged at epoch {diverged}" in message and "lower --learning-rate" in message
    assert f"weights after epoch {saved}" in message and f"kept in {checkpoint_arrays(run_dir)}" in message
    # compiled, numpy: the chunk of epochs 13-112 diverged, so the last finite chunk ended at 12; fit: each epoch
    assert saved == (diverged - 1 if engine == "fit" else 12) and 13 < diverged < 112
    assert (run_dir / runs.HISTORY).read_text().count("\n") == diverged + 1
    assert not (run_dir / runs.MODEL).exists()
    straight = keras.saving.load_model(Path(fit_json(*args, "--epochs", saved)["run_dir"]) / runs.MODEL)
    with np.load(checkpoint_arrays(run_dir), allow_pickle=False) as archive:
        assert len(archive["history"]) == saved
        assert all(np.all(np.isfinite(archive[name])) for name in archive.files if archive[name].dtype.kind == "f")
        kept = [archive[f"weight_{index}"] for index in range(len(straight.get_weights()))]
    for mine, theirs in zip(kept, straight.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    refused = invoke("fit", "--resume", run_dir, exit_code=2)
    assert "would diverge again" in refused.output
    not_evaluated = invoke("eval", run_dir, exit_code=1)
    assert "diverged, not finished" in not_evaluated.output


def test_a_failure_during_training_marks_the_run_failed_and_keeps_a_checkpoint(invoke, tmp_path, monkeypatch):
    from beanstrain import outputs
    from beanstrain.errors import RunError

    def no_space(*args, **kwargs):
        raise RunError("no space left on device")

    monkeypatch.setattr(outputs, "draw_pictures", no_space)
    result = invoke("fit", "beans7-neuron", "--epochs", 3, "--out", tmp_path, "--quiet", exit_code=1)
    run_dir = only_run(tmp_path)
    assert "no space left on device" in result.output and "fit --resume" in result.output
    assert config_of(run_dir)["state"] == "failed"
    monkeypatch.undo()
    invoke("fit", "--resume", run_dir, "--quiet")
    assert config_of(run_dir)["state"] == "finished"
