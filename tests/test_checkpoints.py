"""Checkpoints: written every two minutes while a run goes on, and never unpickled when read back."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from beanstrain import checkpoints, runs
from beanstrain.checkpoints import Keeper, capture, has_checkpoint, read_checkpoint, write_checkpoint
from beanstrain.models import build_model
from beanstrain.objectives import make_optimizer


@pytest.fixture
def clock(monkeypatch):
    """The checkpoints module's clock, moved on by hand: `clock.advance(seconds)`."""
    now = [1000.0]
    monkeypatch.setattr(checkpoints, "time", SimpleNamespace(
        monotonic=lambda: now[0], perf_counter=lambda: now[0], strftime=time.strftime))
    return SimpleNamespace(advance=lambda seconds: now.__setitem__(0, now[0] + seconds))


def _keeper(run_dir, **options):
    model = build_model("neuron", (2,), "binary", 2)
    optimizer = make_optimizer("adam", None)
    optimizer.build(model.trainable_variables)
    return Keeper(run_dir, model, optimizer, seed=0, **options), model


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
    """checkpoint.npz holds a pickled object where a weight belongs, and checkpoint.json names its SHA-256,
    so only `allow_pickle=False` stands between `--resume` and running the pickle."""
    from beanstrain.cli import cli
    from beanstrain.evaluation import load_run_model

    run_dir = Path(shutil.copytree(trained_run, tmp_path / "run"))
    runs.set_state(run_dir, runs.INTERRUPTED)
    model = load_run_model(run_dir, json.loads((run_dir / runs.CONFIG).read_text()))
    write_checkpoint(run_dir, capture(model, model.optimizer, 1, [[0.5, 0.5, 0.5, 0.5]], 0.1), seed=0)
    arrays_path, marker = run_dir / "checkpoint.npz", tmp_path / "unpickled"
    with np.load(arrays_path) as archive:
        members = {name: archive[name] for name in archive.files}
    members["weight_0"] = np.array([WritesAMarker(marker)], dtype=object)
    np.savez(arrays_path, **members)
    info = json.loads((run_dir / "checkpoint.json").read_text())
    info["sha256"] = runs.file_sha256(arrays_path)
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
