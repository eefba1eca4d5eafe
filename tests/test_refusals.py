"""Input refused before any work starts (exit 2, one line, no run folder) and run files refused before loading."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain import files, runs
from beanstrain.data import DATASETS


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("text, message", [
    ('dataset = "beans4"\nmodel = "hidden2"\nepochs = 0\n', "epochs must be a positive integer, got 0"),
    ('dataset = "beans4"\nmodel = "hidden2"\nepochs = "ten"\n', "'epochs' must be an integer, got 'ten'"),
    ('dataset = "beans4"\nmodel = "hidden2"\nbatch_size = -1\n', "batch size must be a positive integer"),
    ('dataset = "beans4"\nmodel = "hidden2"\nlearning_rate = -0.5\n', "learning rate must be a positive finite"),
    ('dataset = "beans4"\nmodel = "hidden2"\nlearning_rate = inf\n', "learning rate must be a positive finite"),
    ('dataset = "beans4"\nmodel = "hidden2"\noptimizer = "adamw"\n', "unknown optimizer 'adamw'"),
    ('dataset = "beans4"\nmodel = "hidden2"\nloss = "sparse_categorical_crossentropy"\n', "does not fit a binary"),
    ('dataset = "beans4"\nmodel = "hidden2"\nsamples = 3\n', "--samples must be at least 4"),
    ('dataset = "beans4"\nmodel = "hidden2"\nvalidation_split = 1.5\n', "validation split must be in [0, 1)"),
    ('dataset = "beans4"\nmodel = "hidden2"\nengine = "turbo"\n', "engine must be one of"),
    ('dataset = "beans4"\nmodel = "hidden2"\nseed = -1\n', "seed must be between 0 and"),
    ('dataset = "beans4"\nmodel = "hidden2"\nepoch = 5\n', "unknown key 'epoch'; did you mean 'epochs'?"),
    ('dataset = "beans4"\n', "must set both 'dataset' and 'model'"),
    ('dataset = "beans4\nmodel = "hidden2"\n', "is not valid TOML"),
    ('dataset = "bean4"\nmodel = "hidden2"\n', "unknown dataset 'bean4'"),
    ('import os\n', "is not valid TOML"),
    ('dataset = "mnist"\nmodel = "dense128"\nlevels = 100\n',
     "levels need a network without biases (dense128-nobias); model 'dense128' has biases"),
    ('dataset = "mnist"\nmodel = "dense128-nobias"\nlevels = -1\n', "levels must be an integer from 0 (off)"),
    ('dataset = "mnist"\nmodel = "dense128-nobias"\nlevels = 100\nlevel_mapping = "ltd"\n',
     "unknown level mapping 'ltd'; did you mean 'ltp'?"),
    ('dataset = "mnist"\nmodel = "dense128-nobias"\nlevels = 100\nlevel_nonlinearity = 0\n',
     "level nonlinearity must be a positive finite number"),
])
def test_bad_recipe_file_values(invoke, tmp_path, text, message):
    recipe = tmp_path / "mine.toml"
    recipe.write_text(text)
    result = invoke("fit", recipe, "--out", tmp_path / "runs", exit_code=2)
    assert message in one_line(result)
    assert not (tmp_path / "runs").exists()


def test_out_that_cannot_be_written(invoke, tmp_path):
    (tmp_path / "file").write_text("x")
    result = invoke("fit", "beans4-hidden2", "--out", tmp_path / "file" / "runs", exit_code=2)
    assert "is not writable" in one_line(result)


def test_resume_of_a_folder_that_is_not_a_run(invoke, tmp_path):
    assert "not a run folder" in one_line(invoke("fit", "--resume", tmp_path, exit_code=2))
    assert "not a run folder" in one_line(invoke("fit", "--resume", tmp_path / "missing", exit_code=2))


def test_resume_takes_no_other_settings(invoke, tmp_path):
    """Only --epochs, which trains a finished run on (test_resume.py); any other setting is the run's own."""
    result = invoke("fit", "beans4-hidden2", "--resume", tmp_path, "--epochs", "9", "--learning-rate", "0.1",
                    "--out", tmp_path, exit_code=2)
    assert "drop --learning-rate, RECIPE, --out" in one_line(result)


def test_resume_without_a_checkpoint(invoke, tmp_path):
    run_dir = runs.create_run_dir(tmp_path, "beans4-hidden2")
    files.write_json(run_dir / runs.CONFIG, {"state": "failed", "recipe": {"name": "beans4-hidden2"}})
    result = invoke("fit", "--resume", run_dir, exit_code=2)
    assert "start it again with: beanstrain fit beans4-hidden2" in one_line(result)


def test_damaged_checkpoint_is_refused(invoke, tmp_path, monkeypatch, interrupt_at):
    interrupt_at(2)
    invoke("fit", "beans7-neuron", "--epochs", 200, "--out", tmp_path, "--quiet", exit_code=130)
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "beans7-neuron").iterdir()
    arrays = run_dir / json.loads((run_dir / "checkpoint.json").read_text())["arrays"]
    arrays.write_bytes(arrays.read_bytes()[:-10])
    result = invoke("fit", "--resume", run_dir, exit_code=1)
    assert "does not match checkpoint.json" in one_line(result)


def test_data_with_nan_is_refused_before_training(invoke, tmp_path, monkeypatch):
    generate = DATASETS["beans4"].generate

    def with_a_nan(samples, rng, noise):
        x, y = generate(samples, rng, noise)
        x[3, 1] = np.nan
        return x, y

    monkeypatch.setitem(DATASETS, "beans4", dataclasses.replace(DATASETS["beans4"], generate=with_a_nan))
    result = invoke("fit", "beans4-hidden2", "--out", tmp_path / "runs", exit_code=1)
    assert "contain NaN or infinite values" in one_line(result)
    assert not (tmp_path / "runs").exists()


def test_image_npz_with_nan_is_refused_before_training(invoke, tmp_path):
    pixels = np.random.default_rng(0).random((12, 28, 28)).astype(np.float32)
    pixels[5, 10, 10] = np.inf
    labels = np.arange(12) % 10
    np.savez(tmp_path / "digits.npz", x_train=pixels, y_train=labels, x_test=pixels[:4], y_test=labels[:4])
    result = invoke("fit", "--dataset", "mnist", "--model", "mlp", "--data", tmp_path / "digits.npz",
                    "--out", tmp_path / "runs", exit_code=1)
    assert "must be finite" in one_line(result)
    assert not (tmp_path / "runs").exists()


def copy_run(run_dir: Path, destination: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, destination / run_dir.name))


def test_modified_model_file_is_refused(invoke, trained_run, tmp_path):
    run_dir = copy_run(trained_run, tmp_path)
    model = run_dir / runs.MODEL
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    assert "has changed since it was trained" in one_line(invoke("eval", run_dir, exit_code=1))


def test_truncated_model_file_is_refused_even_with_a_matching_sha(invoke, trained_run, tmp_path):
    run_dir = copy_run(trained_run, tmp_path)
    model = run_dir / runs.MODEL
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    config = json.loads((run_dir / runs.CONFIG).read_text())
    config["model_sha256"] = files.file_sha256(model)
    (run_dir / runs.CONFIG).write_text(json.dumps(config))
    assert "is not a .keras archive" in one_line(invoke("eval", run_dir, exit_code=1))


def test_model_without_a_recorded_sha_is_not_loaded(invoke, trained_run, tmp_path):
    run_dir = copy_run(trained_run, tmp_path)
    config = json.loads((run_dir / runs.CONFIG).read_text())
    del config["model_sha256"]
    (run_dir / runs.CONFIG).write_text(json.dumps(config))
    assert "records no SHA-256" in one_line(invoke("eval", run_dir, exit_code=1))


def test_eval_of_an_unfinished_run_folder_says_what_to_do(invoke, trained_run, tmp_path):
    run_dir = copy_run(trained_run, tmp_path)
    runs.set_state(run_dir, runs.INTERRUPTED)
    line = one_line(invoke("eval", run_dir, exit_code=1))
    assert "is interrupted, not finished" in line and f"beanstrain fit --resume {run_dir}" in line


def test_eval_by_recipe_takes_the_newest_finished_run(invoke, trained_run, tmp_path):
    finished = copy_run(trained_run, tmp_path / "beans7-neuron")
    newer = tmp_path / "beans7-neuron" / "99991231-235959-1"
    newer.mkdir()
    files.write_json(newer / runs.CONFIG, {**json.loads((finished / runs.CONFIG).read_text()), "state": "running"})
    result = json.loads(invoke("eval", "beans7-neuron", "--out", tmp_path, "--json").stdout)
    assert result["run_dir"] == str(finished)
