"""`beanstrain runs`: the table of runs under a folder, read from config.json and metrics.json alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beanstrain import runs
from beanstrain.files import write_json


def copy_run(trained_run: Path, out: Path, recipe: str, folder: str, **config_changes) -> Path:
    """A copy of the session's finished run as `out/<recipe>/<folder>`, its config.json changed as given."""
    run_dir = out / recipe / folder
    shutil.copytree(trained_run, run_dir)
    config = json.loads((run_dir / runs.CONFIG).read_text())
    config["recipe"]["name"] = recipe
    write_json(run_dir / runs.CONFIG, {**config, **config_changes})
    return run_dir


@pytest.fixture
def mixed_out(tmp_path, trained_run):
    """Two recipes' runs in several states, and one folder of each kind of damage."""
    out = tmp_path / "runs"
    copy_run(trained_run, out, "beans7-neuron", "20261124-100000-1")
    copy_run(trained_run, out, "beans7-neuron", "20261124-110000-1")
    stopped = copy_run(trained_run, out, "beans4-hidden2", "20261124-090000-1", state=runs.INTERRUPTED,
                       checkpoint_epoch=2, train_seconds=0.5)
    (stopped / runs.METRICS).unlink()
    (out / "beans4-hidden2" / "20261124-080000-1").mkdir()  # no config.json
    broken = copy_run(trained_run, out, "beans4-hidden2", "20261124-080000-2")
    (broken / runs.CONFIG).write_text("{not json")
    lost = copy_run(trained_run, out, "beans4-hidden2", "20261124-080000-3")
    (lost / runs.METRICS).unlink()  # finished, yet its figures are gone
    garbled = copy_run(trained_run, out, "beans4-hidden2", "20261124-080000-4")
    (garbled / runs.METRICS).write_text("[1, 2")
    sweep = out / "sweeps" / "beans7-neuron-20261124-100000-1"  # a sweep's folder: no run, never listed
    sweep.mkdir(parents=True)
    write_json(sweep / "sweep.json", {"recipe": "beans7-neuron", "trials": []})
    return out


def test_runs_on_a_missing_and_an_empty_folder(invoke, tmp_path):
    nowhere = tmp_path / "nowhere"
    assert invoke("runs", "--out", nowhere).output == f"no runs under {nowhere} (no such folder)\n"
    assert invoke("runs", "--out", tmp_path).output == f"no runs under {tmp_path}\n"
    assert json.loads(invoke("runs", "--out", tmp_path, "--json").output) == []


def test_runs_lists_every_folder_newest_first_and_damaged_ones_with_their_problem(invoke, mixed_out, trained_run):
    listed = json.loads(invoke("runs", "--out", mixed_out, "--json").output)
    folders = [Path(row["folder"]).relative_to(mixed_out).as_posix() for row in listed]
    assert folders == ["beans4-hidden2/20261124-090000-1", "beans4-hidden2/20261124-080000-4",
                       "beans4-hidden2/20261124-080000-3", "beans4-hidden2/20261124-080000-2",
                       "beans4-hidden2/20261124-080000-1", "beans7-neuron/20261124-110000-1",
                       "beans7-neuron/20261124-100000-1"]
    problems = {Path(row["folder"]).name: (row["state"], row["problem"]) for row in listed}
    assert problems["20261124-080000-1"] == ("damaged", "no config.json")
    assert problems["20261124-080000-2"][0] == "damaged"
    assert problems["20261124-080000-2"][1].startswith("config.json is not readable JSON")
    assert problems["20261124-080000-3"] == ("damaged", "finished, but metrics.json is missing")
    assert problems["20261124-080000-4"][1].startswith("metrics.json is not readable JSON")
    # The figures are the run's own files', unchanged.
    metrics = json.loads((trained_run / runs.METRICS).read_text())
    config = json.loads((trained_run / runs.CONFIG).read_text())
    newest = listed[5]
    assert newest == {"recipe": "beans7-neuron", "state": "finished", "test_accuracy": metrics["test"]["accuracy"],
                      "test_loss": metrics["test"]["loss"], "epochs": metrics["epochs"],
                      "seconds": metrics["train_seconds"], "started": config["started"],
                      "folder": str(mixed_out / "beans7-neuron" / "20261124-110000-1"), "problem": None}
    assert listed[0]["state"] == "interrupted" and listed[0]["epochs"] == 2 and listed[0]["seconds"] == 0.5
    assert listed[0]["test_accuracy"] is None

    text = invoke("runs", "--out", mixed_out).output.splitlines()
    assert text[0].split() == ["recipe", "state", "test", "epochs", "seconds", "started", "folder"]
    assert len(text) == 1 + len(listed)
    assert f"acc {metrics['test']['accuracy']:.4f}" in text[6]
    assert text[5].endswith("20261124-080000-1  (no config.json)")


def test_runs_filters_by_recipe_and_state(invoke, mixed_out):
    def folders(*args):
        return [Path(row["folder"]).name for row in json.loads(invoke("runs", "--out", mixed_out, *args,
                                                                       "--json").output)]

    assert folders("--recipe", "beans7-neuron") == ["20261124-110000-1", "20261124-100000-1"]
    assert folders("--state", "interrupted") == ["20261124-090000-1"]
    assert folders("--recipe", "beans4-hidden2", "--state", "finished") == []
    assert len(folders("--state", "damaged")) == 4
    assert invoke("runs", "--out", mixed_out, "--recipe", "nosuch").output == f"no runs of nosuch under {mixed_out}\n"
    assert "'done' is not one of" in invoke("runs", "--out", mixed_out, "--state", "done", exit_code=2).output


def test_runs_imports_no_training_or_page_library(mixed_out):
    code = ("import sys\nfrom beanstrain.cli import cli\n"
            f"try:\n    cli.main(['runs', '--out', {str(mixed_out)!r}], prog_name='beanstrain')\n"
            "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
            "print('HEAVY', [m for m in ('tensorflow', 'keras', 'matplotlib', 'jinja2', 'ray') if m in sys.modules])")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "beans7-neuron" in output
    assert output.strip().splitlines()[-1] == "HEAVY []"
