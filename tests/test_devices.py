"""`fit --devices N`: one run mirrored over two logical CPU devices against the same run on one device.

TensorFlow fixes its devices when its runtime starts, and this test process
started it long ago with one CPU device; so the two-device run is what a
user runs, `beanstrain fit --devices 2`, in processes of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from run_folders import config_of, only_run

from beanstrain import runs
from beanstrain.devices import load_keras, load_tensorflow

HOOKED_CLI = Path(__file__).parent / "hooked_beanstrain.py"
# 100 beans in batches of 10: every batch splits evenly, so each replica's mean gradient, averaged,
# is the batch's mean gradient; Adam's slots make the resumed optimizer state count.
ARGUMENTS = ["beans4-hidden2", "--epochs", "6", "--engine", "fit", "--optimizer", "adam", "--learning-rate", "0.05"]


def _beanstrain(*arguments, **hooks) -> subprocess.CompletedProcess:
    environment = {**os.environ, **{name: str(value) for name, value in hooks.items()}}
    return subprocess.run([sys.executable, str(HOOKED_CLI), *map(str, arguments)], capture_output=True, text=True,
                          env=environment, timeout=300)


def _weights(run_dir) -> list[np.ndarray]:
    return load_keras().saving.load_model(Path(run_dir) / runs.MODEL, safe_mode=True).get_weights()


def test_two_devices_killed_and_resumed_end_with_one_devices_weights(invoke, fit_json, tmp_path):
    """The two-device run is killed (SIGKILL) after its epoch-3 checkpoint and resumed with no --devices,
    so on the two devices config.json recorded; it ends where one device, never stopped, ends, and so
    does a copy of it resumed on one device."""
    out = tmp_path / "two"
    killed = _beanstrain("fit", *ARGUMENTS, "--devices", 2, "--out", out, "--quiet", BEANSTRAIN_TEST_KILL_AFTER=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = only_run(out)
    assert config_of(run_dir)["state"] == "running" and not (run_dir / runs.MODEL).exists()
    on_one = tmp_path / "on-one" / run_dir.name
    shutil.copytree(run_dir, on_one)

    resumed = _beanstrain("fit", "--resume", run_dir, "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["resumed"][0]["from_epoch"] == 3
    assert config["device"]["strategy"] == "MirroredStrategy"
    assert config["device"]["devices"] == ["/CPU:0", "/CPU:1"]

    one = fit_json(*ARGUMENTS)
    assert config_of(one["run_dir"])["device"]["strategy"] is None
    two_weights, one_weights = _weights(run_dir), _weights(one["run_dir"])
    for two_weight, one_weight in zip(two_weights, one_weights, strict=True):
        np.testing.assert_allclose(two_weight, one_weight, rtol=1e-5, atol=1e-6)
    columns, rows = runs.read_history(run_dir / runs.HISTORY)
    losses = [row[columns.index("loss")] for row in rows]
    assert losses[-1] < losses[0] - 0.01  # it trained: equal weights are not two untouched networks
    two = json.loads(resumed.stdout)
    for split in ("train", "test"):
        assert two["metrics"][split] == pytest.approx(one["metrics"][split], rel=1e-5)

    evaluated = json.loads(invoke("eval", run_dir, "--json").stdout)
    assert evaluated["metrics"] == pytest.approx(one["metrics"]["test"], rel=1e-5)

    # The same checkpoint, continued on one device in this process, ends there too.
    invoke("fit", "--resume", on_one, "--devices", 1, "--quiet")
    assert config_of(on_one)["device"]["devices"] == ["/CPU:0"]
    for resumed_weight, one_weight in zip(_weights(on_one), one_weights, strict=True):
        np.testing.assert_allclose(resumed_weight, one_weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arguments, message", [
    (["--devices", 0], "Error: --devices must be 1 or more, got 0"),
    (["--devices", 2, "--engine", "compiled"],
     "Error: --devices 2: the compiled engine trains on one device only; use --engine fit"),
    (["--devices", 2, "--device", "gpu"], "Error: --device gpu: TensorFlow sees no GPU"),
    (["--devices", 2, "--batch-size", 33],
     "Error: --devices 2: a batch of 33 cannot be shared evenly by 2 devices; use a --batch-size that 2 divides, "
     "such as 32 or 34"),
    (["--devices", 2, "--batch-size", 1], "Error: --devices 2: a batch of 1 cannot be shared evenly by 2 devices; "
                                          "use a --batch-size that 2 divides, such as 2"),
    (["--devices", (os.cpu_count() or 1) + 1, "--batch-size", (os.cpu_count() or 1) + 1, "--device", "cpu"],
     f"Error: --devices {(os.cpu_count() or 1) + 1}: with no GPU in use the CPU is split into logical devices, at "
     f"most one per core ({os.cpu_count()}); use --devices {os.cpu_count()} or fewer"),
    # This process's TensorFlow started with one CPU device: a new process is what works.
    (["--devices", 2, "--device", "cpu"], "Error: --devices 2: TensorFlow already started in this process with 1 "
                                          "CPU device"),
], ids=["none", "compiled", "no-gpu", "uneven-batch", "batch-of-one", "more-than-cores", "started"])
def test_devices_refused_in_one_line(invoke, tmp_path, arguments, message):
    load_tensorflow().constant(0)  # this process's runtime has started (with one CPU device), whichever test ran first
    result = invoke("fit", "beans4-hidden2", "--epochs", 1, "--out", tmp_path, *arguments, exit_code=2)
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "beans4-hidden2").exists()


def test_more_devices_than_gpus_refused(invoke, tmp_path, monkeypatch):
    """One GPU seen (a stand-in: this machine has none) and two asked for."""
    config = load_tensorflow().config
    listed = config.list_physical_devices
    monkeypatch.setattr(config, "list_physical_devices",
                        lambda kind=None: [SimpleNamespace(name="/physical_device:GPU:0")] if kind == "GPU"
                        else listed(kind))
    monkeypatch.setattr(config.experimental, "get_device_details", lambda device: {"device_name": "a GPU"})
    result = invoke("fit", "beans4-hidden2", "--epochs", 1, "--out", tmp_path, "--devices", 2, exit_code=2)
    assert result.output == ("Error: --devices 2: TensorFlow sees 1 GPU on this machine; use --devices 1 or fewer, "
                             "or --device cpu for 2 logical CPU devices\n")


def test_a_compiled_run_is_not_resumed_on_several_devices(invoke, tmp_path, interrupt_at):
    """--engine cannot be given with --resume, so the line says what can be done instead."""
    interrupt_at(2)
    invoke("fit", "beans7-neuron", "--epochs", 4, "--engine", "compiled", "--out", tmp_path, "--quiet", exit_code=130)
    run_dir = only_run(tmp_path)
    result = invoke("fit", "--resume", run_dir, "--devices", 2, exit_code=2)
    assert result.output == (f"Error: --resume {run_dir}: the run trains with the compiled engine, which uses one "
                             "device; resume it without --devices\n")
    assert config_of(run_dir)["state"] == "interrupted"
