"""Ctrl-C, SIGTERM and divergence during `fit`: checkpoints, run states, and resuming to the exact same weights."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from beanstrain import runs
from beanstrain.devices import load_keras

keras = load_keras()


def config_of(run_dir) -> dict:
    return json.loads((Path(run_dir) / runs.CONFIG).read_text())


def only_run(out: Path) -> Path:
    (run_dir,) = [path for parent in out.iterdir() for path in parent.iterdir()]
    return run_dir


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


@pytest.mark.parametrize("engine, epochs", [("compiled", 400), ("fit", 12)])
def test_interrupt_then_resume_equals_an_uninterrupted_run(invoke, fit_json, tmp_path, monkeypatch, interrupt_at,
                                                            engine, epochs):
    args = ["beans4-hidden2", "--epochs", epochs, "--engine", engine, "--seed", 5]
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
    assert (run_dir / runs.HISTORY).read_text().count("\n") == stopped_at + 1

    resumed = json.loads(invoke("fit", "--resume", run_dir, "--json", "--quiet").stdout)
    assert resumed["run_dir"] == str(run_dir) and resumed["engine"] == engine
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["resumed"][0]["from_epoch"] == stopped_at
    assert not list(run_dir.glob("checkpoint*"))
    straight = fit_json(*args)
    assert_same_model(run_dir, straight["run_dir"])
    assert resumed["metrics"] == straight["metrics"]


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_chunk(invoke, fit_json, tmp_path, monkeypatch, interrupt_at):
    args = ["beans7-neuron", "--epochs", 300, "--seed", 2]
    out = tmp_path / "stopped"
    interrupt_at(2, times=2)
    result = invoke("fit", *args, "--out", out, exit_code=130)
    monkeypatch.undo()
    run_dir = only_run(out)
    assert "resume with: beanstrain fit --resume" in result.output
    assert config_of(run_dir)["state"] == "interrupted"
    invoke("fit", "--resume", run_dir, "--quiet")
    assert_same_model(run_dir, fit_json(*args)["run_dir"])


def _start(arguments, stderr_path: Path):
    stderr = open(stderr_path, "w")
    return subprocess.Popen([sys.executable, "-m", "beanstrain", "fit", *map(str, arguments)],
                            stdout=subprocess.DEVNULL, stderr=stderr), stderr


def _wait_until_training(process, out: Path, stderr_path: Path, timeout=180.0) -> Path:
    """Until config.json says running and the progress display has shown an epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, stderr_path.read_text()
        configs = list(out.glob("*/*/config.json"))
        if configs and "epoch " in stderr_path.read_text():
            if json.loads(configs[0].read_text())["state"] == "running":
                return configs[0].parent
        time.sleep(0.05)
    raise AssertionError("the run did not start training in time")


@pytest.mark.parametrize("number, arguments", [
    (signal.SIGINT, ["beans4-hidden2", "--epochs", 6000]),
    (signal.SIGTERM, ["beans4-hidden2", "--epochs", 40, "--engine", "fit"]),
], ids=["SIGINT-compiled", "SIGTERM-fit"])
def test_signal_to_a_real_process_then_resume(invoke, fit_json, tmp_path, number, arguments):
    out, stderr_path = tmp_path / "stopped", tmp_path / "stderr.txt"
    process, stderr = _start([*arguments, "--out", out], stderr_path)
    try:
        run_dir = _wait_until_training(process, out, stderr_path)
        process.send_signal(number)
        assert process.wait(timeout=120) == 130, stderr_path.read_text()
    finally:
        process.kill()
        stderr.close()
    last_line = stderr_path.read_text().strip().splitlines()[-1]
    assert last_line.startswith(f"Error: {number.name}: stopped after epoch ")
    assert last_line.endswith(f"resume with: beanstrain fit --resume {run_dir}")
    config = config_of(run_dir)
    assert config["state"] == "interrupted" and config["checkpoint_epoch"] < arguments[2]

    invoke("fit", "--resume", run_dir, "--quiet")
    assert config_of(run_dir)["state"] == "finished"
    assert_same_model(run_dir, fit_json(*arguments)["run_dir"])


def test_resuming_a_finished_run_is_refused(invoke, fit_json):
    run_dir = fit_json("beans7-neuron", "--epochs", "2")["run_dir"]
    result = invoke("fit", "--resume", run_dir, exit_code=2)
    assert "already finished" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("engine", ["compiled", "fit"])
def test_divergence_stops_keeps_the_last_finite_weights_and_exits_1(invoke, tmp_path, engine):
    out = tmp_path / "runs"
    result = invoke("fit", "--dataset", "beans1", "--model", "neuron", "--optimizer", "sgd", "--learning-rate",
                    "1e6", "--epochs", "50", "--engine", engine, "--out", out, "--quiet", exit_code=1)
    assert len(result.output.strip().splitlines()) == 1
    message = result.output
    run_dir = only_run(out)
    config = config_of(run_dir)
    assert config["state"] == "diverged"
    diverged = config["diverged_epoch"]
    assert f"diverged at epoch {diverged}" in message and "lower --learning-rate" in message
    saved = config["checkpoint_epoch"]
    assert saved is not None and saved < diverged
    assert f"kept in {checkpoint_arrays(run_dir)}" in message
    with np.load(checkpoint_arrays(run_dir), allow_pickle=False) as archive:
        assert all(np.all(np.isfinite(archive[name])) for name in archive.files)
        assert len(archive["history"]) == saved
    assert (run_dir / runs.HISTORY).read_text().count("\n") == diverged + 1
    assert not (run_dir / runs.MODEL).exists()
    refused = invoke("fit", "--resume", run_dir, exit_code=2)
    assert "would diverge again" in refused.output
    not_evaluated = invoke("eval", run_dir, exit_code=1)
    assert "diverged, not finished" in not_evaluated.output


def test_a_failure_during_training_marks_the_run_failed_and_keeps_a_checkpoint(invoke, tmp_path, monkeypatch):
    from beanstrain import session as pipeline
    from beanstrain.errors import RunError

    def no_space(*args, **kwargs):
        raise RunError("no space left on device")

    monkeypatch.setattr(pipeline, "draw_pictures", no_space)
    result = invoke("fit", "beans7-neuron", "--epochs", 3, "--out", tmp_path, "--quiet", exit_code=1)
    run_dir = only_run(tmp_path)
    assert "no space left on device" in result.output and "fit --resume" in result.output
    assert config_of(run_dir)["state"] == "failed"
    monkeypatch.undo()
    invoke("fit", "--resume", run_dir, "--quiet")
    assert config_of(run_dir)["state"] == "finished"
