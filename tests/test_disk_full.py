"""A full disk (or any file error) during `fit` ends in one line, a recorded state and no traceback.

Every write of a run is made to fail in turn (a simulated ENOSPC, EACCES or
EIO raised while the file is being written), and then the line's advice is
followed to check it really works.  A real tmpfs of a few hundred KB shows
the same on an actual full file system (root only, as in CI).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from run_folders import config_of, only_run, run_folders

from beanstrain import files, runs
from beanstrain.checkpoints import is_checkpoint_file

# beans7-neuron's pictures, in the order drawn; beans4-hidden2 also gets neurons.png.
TOY_PICTURES = ["data.png", "boundary.png", "surface.png", "history.png", "training.gif", "network.png", "weights.png",
                "gradients.png"]
RECIPE = ("beans7-neuron", "--epochs", "3")


def the_one_line(result) -> str:
    """The error line: the only thing a --quiet run printed on stderr, and no traceback anywhere."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def assert_no_temporaries(run_dir: Path) -> None:
    assert [path.name for path in run_dir.iterdir() if path.name.startswith(".")] == []


@pytest.fixture
def failing_writes(monkeypatch):
    """`failing_writes("model.keras", ...)`: every atomic write of those files fails half-way with `error`.

    `skip={"config.json": 1}` lets the first write of config.json succeed (it is written at the start,
    then again for every change of state).  Returns the list of files that failed, in order.
    """
    original = files.atomic_path
    failed = []

    def arrange(*names, error=errno.ENOSPC, skip=None):
        skip = skip or {}
        seen = {}

        @contextlib.contextmanager
        def atomic_path(path):
            with original(path) as temporary:
                # A checkpoint's arrays file is named after its epoch: one name stands for them all.
                name = Path(path).name
                if is_checkpoint_file(name) and name.endswith(".npz"):
                    name = "checkpoint-<epoch>.npz"
                seen[name] = seen.get(name, 0) + 1
                if name in names and seen[name] > skip.get(name, 0):
                    Path(temporary).write_bytes(b"half a file")
                    failed.append(name)
                    raise OSError(error, os.strerror(error))
                yield temporary

        monkeypatch.setattr(files, "atomic_path", atomic_path)
        return failed

    return arrange


# --- a simulated full disk at each write ------------------------------------------------------------


def test_config_json_failing_at_the_start_leaves_no_run_folder(invoke, tmp_path, failing_writes):
    failing_writes("config.json")
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    assert line.startswith("Error: no space left on device writing config.json in ")
    assert line.endswith("; nothing was saved and the empty run folder was removed; free some space and train "
                         "again")
    assert run_folders(tmp_path) == []


@pytest.mark.parametrize("name, survived", [
    ("history.csv", "the checkpoint after epoch 3 was saved"),
    ("model.keras", "history.csv and the checkpoint after epoch 3 were saved"),
    ("metrics.json", "history.csv, model.keras and the checkpoint after epoch 3 were saved"),
])
def test_a_result_that_cannot_be_written_marks_the_run_failed_and_resume_finishes_it(
        invoke, tmp_path, failing_writes, monkeypatch, name, survived):
    failing_writes(name)
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path / "runs", "--quiet", exit_code=1))
    run_dir = only_run(tmp_path / "runs")
    config = config_of(run_dir)
    assert line == (f"Error: no space left on device writing {name} in {run_dir}; {survived} and the "
                    f"run is marked failed; free some space and resume with: beanstrain fit --resume {run_dir}")
    assert config["state"] == "failed" and config["checkpoint_epoch"] == 3
    assert config["error"] == f"no space left on device writing {name} in {run_dir}"
    assert_no_temporaries(run_dir)
    monkeypatch.undo()  # space was freed
    invoke("fit", "--resume", run_dir, "--quiet")
    assert config_of(run_dir)["state"] == "finished"
    assert pictures_in(run_dir) == sorted(TOY_PICTURES)
    assert not [path for path in run_dir.iterdir() if is_checkpoint_file(path.name)]
    # Resuming from the checkpoint after the last epoch trains nothing more: the model is the one a run
    # that never failed saves.
    clean = json.loads(invoke("fit", *RECIPE, "--out", tmp_path / "clean", "--quiet", "--json").stdout)
    assert (run_dir / "history.csv").read_text() == (Path(clean["run_dir"]) / "history.csv").read_text()
    assert_same_weights(run_dir / "model.keras", Path(clean["run_dir"]) / "model.keras")


def assert_same_weights(first: Path, second: Path) -> None:
    from beanstrain.devices import load_keras

    keras = load_keras()
    for mine, theirs in zip(keras.saving.load_model(first).get_weights(),
                            keras.saving.load_model(second).get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def pictures_in(run_dir: Path) -> list[str]:
    return sorted(path.name for path in run_dir.iterdir() if path.suffix in runs.PICTURE_SUFFIXES)


@pytest.mark.parametrize("picture", TOY_PICTURES[:5])
def test_a_picture_that_cannot_be_written_leaves_a_finished_run_and_resume_draws_it(
        invoke, tmp_path, failing_writes, monkeypatch, picture):
    failing_writes(picture)
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    drawn = TOY_PICTURES[:TOY_PICTURES.index(picture)]
    saved = ["history.csv", "model.keras", "metrics.json", "trace.npz", *drawn]
    assert line == (f"Error: no space left on device writing {picture} in {run_dir}; {', '.join(saved[:-1])} and "
                    f"{saved[-1]} were saved and the run is marked finished (eval and predict can use it); free "
                    f"some space and draw the missing pictures with: beanstrain fit --resume {run_dir}")
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["pictures_missing"] is True
    assert config["pictures"] == drawn
    assert not [path for path in run_dir.iterdir() if is_checkpoint_file(path.name)]
    assert_no_temporaries(run_dir)
    evaluated = json.loads(invoke("eval", run_dir, "--json").stdout)  # the model is usable as it is
    assert evaluated["metrics"] == json.loads((run_dir / "metrics.json").read_text())["test"]

    monkeypatch.undo()
    redrawn = invoke("fit", "--resume", run_dir, "--json")
    assert "drawing the pictures it is missing" in redrawn.stderr
    assert not [line for line in redrawn.stderr.splitlines() if line.startswith("epoch ")]  # no training again
    assert json.loads(redrawn.stdout)["metrics"]["test"] == evaluated["metrics"]
    config = config_of(run_dir)
    assert config["state"] == "finished" and config["pictures_missing"] is False and config["error"] is None
    assert config["pictures"] == TOY_PICTURES
    assert pictures_in(run_dir) == sorted(TOY_PICTURES)
    refused = invoke("fit", "--resume", run_dir, exit_code=2)  # nothing is missing now
    assert "already finished" in refused.output


def test_a_checkpoint_that_cannot_be_written_either_does_not_hide_the_first_failure(
        invoke, tmp_path, failing_writes):
    failed = failing_writes("model.keras", "checkpoint-<epoch>.npz")
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    assert failed == ["model.keras", "checkpoint-<epoch>.npz"]
    assert line == (f"Error: no space left on device writing model.keras in {run_dir}; the checkpoint could not "
                    f"be saved either (no space left on device); history.csv was saved and the run is marked "
                    f"failed; free some space and train again")
    config = config_of(run_dir)
    assert config["state"] == "failed" and config["checkpoint_epoch"] is None
    assert "model.keras" in config["error"]
    assert_no_temporaries(run_dir)


def test_the_checkpoint_written_during_training_failing_marks_the_run_failed(
        invoke, tmp_path, failing_writes, monkeypatch):
    from beanstrain import checkpoints

    monkeypatch.setattr(checkpoints, "SAVE_EVERY_SECONDS", 0.0)  # write one after every chunk
    failed = failing_writes("checkpoint-<epoch>.npz")
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    assert failed == ["checkpoint-<epoch>.npz"]  # not tried a second time while handling the first failure
    assert re.fullmatch(re.escape("Error: no space left on device writing ") + r"checkpoint-\d+\.npz"
                        + re.escape(f" in {run_dir}; nothing was saved and the run is marked failed; "
                                    "free some space and train again"), line), line
    assert config_of(run_dir)["state"] == "failed"


def test_config_json_that_cannot_be_replaced_is_written_in_place_to_record_the_state(
        invoke, tmp_path, failing_writes):
    """On a disk too full for a second copy of config.json, the state still gets recorded."""
    failing_writes("config.json", "model.keras", skip={"config.json": 1})
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    assert "and the run is marked failed; free some space and resume with" in line
    config = config_of(run_dir)
    assert config["state"] == "failed" and config["checkpoint_epoch"] == 3
    assert config["recipe"]["name"] == "beans7-neuron"  # the whole file, not a torn one
    assert_no_temporaries(run_dir)


def test_when_config_json_cannot_be_written_at_all_the_line_says_so(invoke, tmp_path, failing_writes, monkeypatch):
    monkeypatch.setattr(runs, "_overwrite_in_place", lambda path, text: False)
    failing_writes("config.json", "surface.png", skip={"config.json": 1})
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    assert line == (f"Error: no space left on device writing surface.png in {run_dir}; config.json could not be "
                    f"updated either (no space left on device), so it does not say finished; history.csv, "
                    "model.keras, metrics.json, trace.npz, data.png and boundary.png were saved, "
                    "but the run is not marked "
                    f"finished; free some space and train again")
    assert config_of(run_dir)["state"] == "running"  # what it said before: the line tells the truth about it


def test_a_diverged_run_whose_files_cannot_be_written_still_says_it_diverged(invoke, tmp_path, failing_writes):
    failing_writes("history.csv", "checkpoint-<epoch>.npz")
    line = the_one_line(invoke("fit", "--dataset", "beans1", "--model", "neuron", "--optimizer", "sgd",
                               "--learning-rate", "1e6", "--epochs", 50, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    assert line.startswith("Error: training diverged at epoch ")
    assert line.endswith("The last finite weights could not be kept; history.csv could not be written (no space "
                         "left on device); the checkpoint could not be saved (no space left on device)")
    config = config_of(run_dir)
    assert config["state"] == "diverged" and config["checkpoint_epoch"] is None


def test_an_interrupted_run_whose_checkpoint_cannot_be_written_says_both(
        invoke, tmp_path, failing_writes, interrupt_at):
    failing_writes("checkpoint-<epoch>.npz")
    interrupt_at(1)
    result = invoke("fit", "beans7-neuron", "--epochs", 50, "--engine", "fit", "--out", tmp_path, "--quiet",
                    exit_code=130)
    line = result.stderr.strip().splitlines()[-1]
    run_dir = only_run(tmp_path)
    assert line.startswith("Error: SIGINT: stopped after epoch ")
    assert line.endswith("; the checkpoint could not be saved (no space left on device); train again")
    assert config_of(run_dir)["state"] == "interrupted"


@pytest.mark.parametrize("number, remedy", [(errno.EACCES, "make the run folder writable"),
                                            (errno.EIO, "check the disk")])
@pytest.mark.parametrize("name", ["model.keras", "surface.png"])
def test_other_file_errors_end_in_one_line_too(invoke, tmp_path, failing_writes, number, remedy, name):
    failing_writes(name, error=number)
    line = the_one_line(invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1))
    run_dir = only_run(tmp_path)
    problem = os.strerror(number)
    assert line.startswith(f"Error: {problem[0].lower()}{problem[1:]} writing {name} in {run_dir}; ")
    assert f"; {remedy} and " in line
    assert config_of(run_dir)["state"] == ("finished" if name.endswith(".png") else "failed")


def test_a_resume_that_cannot_record_itself_leaves_the_run_as_it_was(invoke, tmp_path, failing_writes, monkeypatch):
    failing_writes("model.keras")
    invoke("fit", *RECIPE, "--out", tmp_path, "--quiet", exit_code=1)
    run_dir = only_run(tmp_path)
    monkeypatch.undo()
    monkeypatch.setattr(runs, "_overwrite_in_place", lambda path, text: False)
    failing_writes("config.json")
    line = the_one_line(invoke("fit", "--resume", run_dir, "--quiet", exit_code=1))
    assert line == (f"Error: no space left on device writing config.json in {run_dir}; nothing changed, the run "
                    f"is still failed; free some space and resume again")
    assert config_of(run_dir)["state"] == "failed"


# --- a real full file system -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size)`: a tmpfs of `size` mounted under tmp_path (root only); unmounted after the test."""
    mounted = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CI and the dev container run as root)")
        point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def grow(point: Path, size: str) -> None:
    """Free space the way a person would see it: the file system gets bigger."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(point)], check=True)


@pytest.mark.parametrize("size", ["8k", "40k", "120k"])
def test_a_real_full_disk_ends_in_one_line_whose_advice_works(invoke, small_disk, size):
    """beans4-hidden2 for 300 epochs writes about 250 KB, so each size runs out at another point (the
    issue's case is 120k: the model, metrics and history fit, a picture does not)."""
    from beanstrain.devices import load_keras

    disk = small_disk(size)
    out = disk / "runs"
    args = ("fit", "--dataset", "beans4", "--model", "hidden2", "--epochs", 300, "--out", out, "--quiet")
    line = the_one_line(invoke(*args, exit_code=1))
    run_dir = only_run(out)
    config = config_of(run_dir)
    assert_no_temporaries(run_dir)
    assert line.startswith("Error: no space left on device writing ")
    if config["state"] == "finished":
        assert config["pictures_missing"] is True and "draw the missing pictures with: " in line
    else:
        assert config["state"] == "failed" and "the run is marked failed" in line
    said_saved = line.split("; ")[-2]
    on_disk = runs.saved_outputs(run_dir)
    assert all(name in said_saved for name in on_disk) and (on_disk or "nothing was saved" in said_saved)
    if "model.keras" in on_disk:
        load_keras().saving.load_model(run_dir / "model.keras")  # whole, not cut short

    grow(disk, "4m")
    advice = line.rsplit("; ", 1)[1]
    if "fit --resume" in advice:
        invoke("fit", "--resume", run_dir, "--quiet")
        finished = run_dir
    else:
        assert advice == "free some space and train again"
        invoke(*args)
        finished = max(run_folders(out))
    config = config_of(finished)
    assert config["state"] == "finished" and config["pictures_missing"] is False
    assert pictures_in(finished) == sorted([*TOY_PICTURES, "neurons.png"])
    invoke("eval", finished, "--min-accuracy", "0.5")
