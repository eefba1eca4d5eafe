"""A run's weight trace (trace.npz) and its animation, through the command line, on every engine."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_folders import run_folders

from beanstrain import runs
from beanstrain.devices import load_keras
from beanstrain.engines import ENGINES
from beanstrain.errors import RunError
from beanstrain.plots.animate import FPS, PAUSE_SECONDS
from beanstrain.trace import TRACE, read_trace, snapshot_epochs


def saved_weights(run_dir) -> list[np.ndarray]:
    return load_keras().saving.load_model(Path(run_dir) / runs.MODEL, safe_mode=True).get_weights()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_snapshot_at_epoch_k_is_the_run_stopped_at_epoch_k(fit_json, engine):
    args = ["beans4-hidden2", "--engine", engine, "--seed", 4]
    stopped = fit_json(*args, "--epochs", 5, "--animation", "none")
    traced = fit_json(*args, "--epochs", 12)
    trace = read_trace(traced["run_dir"])
    if engine == "numpy":  # snapshots by step, inside epochs: 100 beans in tens, all 120 steps
        assert trace.steps == list(range(121)) and trace.epochs == [step / 10 for step in range(121)]
    else:
        assert trace.epochs == snapshot_epochs(12) == list(range(13))
    for index, weight in enumerate(saved_weights(stopped["run_dir"])):
        np.testing.assert_array_equal(trace.weight(index)[trace.epochs.index(5)], weight)
    for index, weight in enumerate(saved_weights(traced["run_dir"])):  # the last snapshot is model.keras
        np.testing.assert_array_equal(trace.weight(index)[-1], weight)
    assert not (Path(stopped["run_dir"]) / "training.gif").exists()  # --animation none

    with Image.open(Path(traced["run_dir"]) / "training.gif") as gif:
        assert gif.n_frames == len(trace.epochs)
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == round(1000 * PAUSE_SECONDS)
        assert np.abs(np.asarray(gif.convert("RGB")).astype(int) - first).sum() > 0
        gif.seek(1)
        assert gif.info["duration"] == round(1000 / FPS)


def test_a_trace_that_is_not_plain_arrays_is_refused(tmp_path):
    (tmp_path / TRACE).write_bytes(b"not a zip")
    with pytest.raises(RunError, match="not a .npz archive"):
        read_trace(tmp_path)
    with open(tmp_path / TRACE, "wb") as stream:
        np.savez(stream, epochs=np.array([0, 1]), names=np.array([{"a": 1}], dtype=object))
    with pytest.raises(RunError, match="cannot be read"):
        read_trace(tmp_path)
    assert zipfile.is_zipfile(tmp_path / TRACE)


def test_an_image_run_keeps_percentiles_of_each_layer(blob_run):
    (run_dir,) = [path for path in run_folders(blob_run["out"]) if path.name in blob_run["summary"]["run_dir"]]
    trace = read_trace(run_dir)
    assert trace.summarize and trace.epochs == list(range(11))
    weights = saved_weights(run_dir)
    assert len(trace.names) == len(weights)
    for index, weight in enumerate(weights):  # the last row summarizes the saved weights
        np.testing.assert_allclose(trace.weight(index)[-1], np.percentile(weight, [0, 5, 25, 50, 75, 95, 100]),
                                   rtol=1e-5, atol=1e-6)


def test_mp4_is_written_by_ffmpeg(fit_json):
    import shutil

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not on PATH")
    run_dir = Path(fit_json("beans1-neuron", "--epochs", 3, "--animation", "mp4")["run_dir"])
    assert (run_dir / "training.mp4").read_bytes()[4:8] == b"ftyp"
    assert not (run_dir / "training.gif").exists()


def test_mp4_without_ffmpeg_is_refused_before_training(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    result = invoke("fit", "beans1-neuron", "--epochs", 3, "--animation", "mp4", "--out", tmp_path / "runs",
                    exit_code=2)
    assert result.output.strip().splitlines() == [
        "Error: --animation mp4 needs ffmpeg, which is not on PATH; install it (apt-get install ffmpeg) or use "
        "--animation gif"]
    assert run_folders(tmp_path / "runs") == []


def test_a_trace_written_before_steps_still_reads(tmp_path):
    """Whole-number epochs and no `steps`: the trace.npz of older runs."""
    with open(tmp_path / TRACE, "wb") as stream:
        np.savez(stream, epochs=np.array([0, 1, 3]), names=np.array(["dense/kernel"]),
                 weight_0=np.arange(3, dtype=np.float32).reshape(3, 1, 1))
    trace = read_trace(tmp_path)
    assert trace.epochs == [0, 1, 3] and trace.steps is None
    assert trace.weight(0).reshape(-1).tolist() == [0.0, 1.0, 2.0]
