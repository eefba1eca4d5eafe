"""Checkpoints: the arrays and checkpoint.json written as a pair that a kill cannot split, written every two
minutes while a run goes on, and never unpickled when read back."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from beanstrain import checkpoints, files, runs
from beanstrain.checkpoints import (
    CHECKPOINT_INFO,
    Keeper,
    TrainingState,
    has_checkpoint,
    read_checkpoint,
    remove_checkpoint,
    write_checkpoint,
)
from beanstrain.engines import EngineState
from beanstrain.errors import RunError
from beanstrain.models import build_model
from beanstrain.objectives import make_optimizer


def state_after(epoch: int) -> TrainingState:
    """A small state whose every value says which epoch it belongs to."""
    weights = [np.full((2, 3), epoch, np.float32), np.full(3, -epoch, np.float32)]
    return TrainingState(epoch, weights, [np.array(epoch, np.int64)], [[0.5 / (row + 1), 0.5] for row in range(epoch)],
                         train_seconds=epoch / 10)


def assert_state(read: TrainingState, expected: TrainingState):
    assert read.epoch == expected.epoch and read.train_seconds == expected.train_seconds
    for mine, theirs in zip(read.weights + read.optimizer_variables,
                            expected.weights + expected.optimizer_variables, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert read.history_rows == expected.history_rows[:expected.epoch]


def checkpoint_files(run_dir) -> list[str]:
    return sorted(path.name for path in run_dir.iterdir())


def killed(path, data):
    """files.write_json as a process killed before it writes checkpoint.json."""
    raise OSError("killed")


def test_a_checkpoint_reads_back_exactly(tmp_path):
    name = write_checkpoint(tmp_path, state_after(3), seed=7)
    assert name == "checkpoint-3.npz" and checkpoint_files(tmp_path) == sorted([CHECKPOINT_INFO, name])
    info = json.loads((tmp_path / CHECKPOINT_INFO).read_text())
    assert (info["epoch"], info["seed"], info["arrays"]) == (3, 7, name)
    assert info["sha256"] == files.file_sha256(tmp_path / name)
    assert has_checkpoint(tmp_path)
    assert_state(read_checkpoint(tmp_path), state_after(3))


def test_a_newer_checkpoint_replaces_the_pair(tmp_path):
    write_checkpoint(tmp_path, state_after(3), seed=0)
    write_checkpoint(tmp_path, state_after(8), seed=0)
    assert checkpoint_files(tmp_path) == sorted([CHECKPOINT_INFO, "checkpoint-8.npz"])
    assert_state(read_checkpoint(tmp_path), state_after(8))


def test_a_failed_second_write_leaves_the_previous_pair_resumable(tmp_path, monkeypatch):
    """A kill between the arrays and checkpoint.json: the first pair is intact, the new arrays are an orphan."""
    write_checkpoint(tmp_path, state_after(3), seed=0)
    monkeypatch.setattr(files, "write_json", killed)
    with pytest.raises(OSError, match="killed"):
        write_checkpoint(tmp_path, state_after(8), seed=0)
    assert checkpoint_files(tmp_path) == sorted([CHECKPOINT_INFO, "checkpoint-3.npz", "checkpoint-8.npz"])
    assert has_checkpoint(tmp_path)
    assert_state(read_checkpoint(tmp_path), state_after(3))

    monkeypatch.undo()
    write_checkpoint(tmp_path, state_after(9), seed=0)  # the next good write clears the orphan
    assert checkpoint_files(tmp_path) == sorted([CHECKPOINT_INFO, "checkpoint-9.npz"])


def test_the_same_epoch_saved_again_never_overwrites_the_named_file(tmp_path, monkeypatch):
    first = write_checkpoint(tmp_path, state_after(4), seed=0)
    named_before = (tmp_path / first).read_bytes()
    monkeypatch.setattr(files, "write_json", killed)
    with pytest.raises(OSError, match="killed"):
        write_checkpoint(tmp_path, state_after(4), seed=0)
    assert (tmp_path / first).read_bytes() == named_before
    assert_state(read_checkpoint(tmp_path), state_after(4))
    monkeypatch.undo()
    assert write_checkpoint(tmp_path, state_after(4), seed=0) not in (first, "checkpoint-4.2.npz")  # 4.2 was taken
    assert_state(read_checkpoint(tmp_path), state_after(4))


def test_a_checkpoint_of_an_earlier_version_still_reads(tmp_path):
    """Before versioned names the pair was checkpoint.npz and a checkpoint.json without "arrays"."""
    name = write_checkpoint(tmp_path, state_after(2), seed=0)
    (tmp_path / name).rename(tmp_path / "checkpoint.npz")
    info = json.loads((tmp_path / CHECKPOINT_INFO).read_text())
    del info["arrays"]
    (tmp_path / CHECKPOINT_INFO).write_text(json.dumps(info))
    assert has_checkpoint(tmp_path)
    assert_state(read_checkpoint(tmp_path), state_after(2))
    remove_checkpoint(tmp_path)
    assert checkpoint_files(tmp_path) == []


@pytest.mark.parametrize("named", ["../elsewhere.npz", "/etc/passwd", "model.keras", 7])
def test_checkpoint_json_naming_another_file_is_refused(tmp_path, named):
    write_checkpoint(tmp_path, state_after(2), seed=0)
    info = json.loads((tmp_path / CHECKPOINT_INFO).read_text())
    (tmp_path / CHECKPOINT_INFO).write_text(json.dumps({**info, "arrays": named}))
    with pytest.raises(RunError, match="is damaged"):
        read_checkpoint(tmp_path)


def test_missing_arrays_and_no_checkpoint(tmp_path):
    assert not has_checkpoint(tmp_path)
    name = write_checkpoint(tmp_path, state_after(2), seed=0)
    (tmp_path / name).unlink()
    assert not has_checkpoint(tmp_path)
    with pytest.raises(RunError, match=f"has {CHECKPOINT_INFO} but no {name}"):
        read_checkpoint(tmp_path)


class Recorder:
    """A stand-in trainer: its state is whatever was last put into it."""

    def __init__(self, state: EngineState):
        self.state = state

    def get_state(self) -> EngineState:
        return self.state

    def set_state(self, state: EngineState) -> None:
        self.state = state


def test_keeper_skips_a_diverged_chunk_and_restore_goes_through_the_trainer(tmp_path):
    saved = state_after(5)
    trainer = Recorder(EngineState(saved.weights, saved.optimizer_variables))
    keeper = Keeper(tmp_path, trainer, seed=1)
    assert keeper.save() is None and not has_checkpoint(tmp_path)
    keeper.take(5, saved.history_rows)
    trainer.state = EngineState([np.full((2, 3), np.nan, np.float32)], [])
    keeper.take(6, saved.history_rows + [[float("nan"), 0.0]])  # not finite: the epoch-5 copy stays
    assert keeper.save() == 5 and keeper.arrays_name == "checkpoint-5.npz"
    restored = Recorder(None)
    checkpoints.restore(restored, read_checkpoint(tmp_path))
    for mine, theirs in zip(restored.state.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(mine, theirs)



@pytest.fixture
def clock(monkeypatch):
    """The checkpoints module's clock, moved on by hand: `clock.advance(seconds)`."""
    now = [1000.0]
    monkeypatch.setattr(checkpoints, "time", SimpleNamespace(
        monotonic=lambda: now[0], perf_counter=lambda: now[0], strftime=time.strftime))
    return SimpleNamespace(advance=lambda seconds: now.__setitem__(0, now[0] + seconds))


def _keeper(run_dir, **options):
    """A Keeper of a trainer that holds a neuron's weights and Adam's variables."""
    model = build_model("neuron", (2,), "binary", 2)
    optimizer = make_optimizer("adam", None)
    optimizer.build(model.trainable_variables)
    trainer = Recorder(EngineState(model.get_weights(), [variable.numpy() for variable in optimizer.variables]))
    return Keeper(run_dir, trainer, seed=0, **options), model


def _chunks(keeper, clock, run_dir):
    """`chunk(epoch, seconds)`: a chunk ending at `epoch` that took `seconds`; returns the epoch on disk."""
    rows = []

    def chunk(epoch, seconds):
        clock.advance(seconds)
        rows.extend([[0.5]] * (epoch - len(rows)))
        keeper.take(epoch, rows)
        return read_checkpoint(run_dir).epoch if has_checkpoint(run_dir) else None

    return chunk


def test_a_running_job_writes_its_checkpoint_every_two_minutes(tmp_path, clock):
    keeper, model = _keeper(tmp_path)
    chunk = _chunks(keeper, clock, tmp_path)
    assert chunk(10, 119.0) is None
    assert chunk(20, 1.0) == 20  # two minutes after the start
    state = read_checkpoint(tmp_path)
    assert state.train_seconds == pytest.approx(120.0)
    for saved, live in zip(state.weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, live)
    assert chunk(30, 119.0) == 20
    assert chunk(40, 1.0) == 40  # two minutes after the last write


def test_the_interval_can_be_shortened(tmp_path, clock):
    chunk = _chunks(_keeper(tmp_path, save_every=5.0)[0], clock, tmp_path)
    assert chunk(1, 4.9) is None
    assert chunk(2, 0.1) == 2


class WritesAMarker:
    """Unpickling this object writes a file: the proof that something was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "unpickled")


def test_a_pickled_checkpoint_is_refused_and_never_unpickled(runner, trained_run, tmp_path):
    """The arrays file holds a pickled object where a weight belongs, and checkpoint.json names its SHA-256,
    so only `allow_pickle=False` stands between `--resume` and running the pickle."""
    from beanstrain.cli import cli
    from beanstrain.evaluation import load_run_model

    run_dir = Path(shutil.copytree(trained_run, tmp_path / "run"))
    runs.set_state(run_dir, runs.INTERRUPTED)
    model = load_run_model(run_dir, json.loads((run_dir / runs.CONFIG).read_text()))
    state = TrainingState(1, model.get_weights(), [variable.numpy() for variable in model.optimizer.variables],
                          [[0.5, 0.5, 0.5, 0.5]], 0.1)
    arrays_path, marker = run_dir / write_checkpoint(run_dir, state, seed=0), tmp_path / "unpickled"
    with np.load(arrays_path) as archive:
        members = {name: archive[name] for name in archive.files}
    members["weight_0"] = np.array([WritesAMarker(marker)], dtype=object)
    np.savez(arrays_path, **members)
    info = json.loads((run_dir / "checkpoint.json").read_text())
    info["sha256"] = files.file_sha256(arrays_path)
    (run_dir / "checkpoint.json").write_text(json.dumps(info))

    result = runner.invoke(cli, ["fit", "--resume", str(run_dir), "--quiet"])
    assert not marker.exists()
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"Error: {arrays_path} cannot be read: Object arrays cannot be loaded when allow_pickle=False"]
    assert json.loads((run_dir / runs.CONFIG).read_text())["state"] == runs.INTERRUPTED
    # The bait is real: reading the file with pickles allowed runs it.
    with np.load(arrays_path, allow_pickle=True) as archive:
        archive["weight_0"]
    assert marker.read_text() == "unpickled"
