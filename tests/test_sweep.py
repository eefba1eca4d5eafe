"""`beanstrain sweep`: the grid, the sweep folder, faults, Ctrl-C and --resume, the gate, and Ray missing.

One real sweep serves most tests: spiral-deep8 over two learning rates (0.05 learns, 1e30 diverges at
its first epoch) and two seeds, one trial at a time, stopped by a real SIGINT while its first trial
waits at epoch 3 (tests/worker_hooks), then resumed.  Its figures are checked against `beanstrain fit`
with the same settings.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_folders import config_of

pytest.importorskip("ray")

TESTS = Path(__file__).parent
# Seeds 0 and 3: spiral-deep8 at a rate of 1e30 diverges from both draws of initial weights (from some
# others every relu dies in the first step and the loss stays finite).
GRID = ["--set", "learning_rate=0.05,1e30", "--set", "seed=0,3", "--set", "epochs=6", "--set", "engine=fit"]


def sweep_json(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep.json").read_text())


@pytest.fixture(scope="module")
def interrupted_sweep(tmp_path_factory):
    """The sweep in a real process, stopped by SIGINT while its first trial waits at epoch 3."""
    root = tmp_path_factory.mktemp("sweep")
    out, ready, stderr_path = root / "runs", root / "ready", root / "stderr.txt"
    environment = {**os.environ, "BEANSTRAIN_TEST_WAIT_AT": "3", "BEANSTRAIN_TEST_READY": str(ready),
                   "PYTHONPATH": os.pathsep.join([str(TESTS / "worker_hooks"), os.environ.get("PYTHONPATH", "")])}
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen([sys.executable, str(TESTS / "hooked_beanstrain.py"), "sweep", "spiral-deep8",
                                    *GRID, "--parallel", "1", "--out", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=stderr, env=environment)
        try:
            deadline = time.monotonic() + 240
            while not ready.exists():
                assert process.poll() is None, stderr_path.read_text()
                assert time.monotonic() < deadline, "the first trial did not reach epoch 3 in time"
                time.sleep(0.1)
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=120)
        finally:
            process.kill()
    (sweep_dir,) = (out / "sweeps").iterdir()
    return {"code": code, "stderr": stderr_path.read_text(), "out": out, "sweep_dir": sweep_dir,
            "record": sweep_json(sweep_dir)}


@pytest.fixture(scope="module")
def resumed_sweep(interrupted_sweep, runner):
    from beanstrain.cli import cli

    result = runner.invoke(cli, ["sweep", "--resume", str(interrupted_sweep["sweep_dir"]), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sigint_stops_the_running_trial_with_a_checkpoint_and_leaves_the_rest_pending(interrupted_sweep):
    assert interrupted_sweep["code"] == 130, interrupted_sweep["stderr"]
    last_line = interrupted_sweep["stderr"].strip().splitlines()[-1]
    resume = f"beanstrain sweep --resume {interrupted_sweep['sweep_dir']}"
    assert last_line == f"Error: sweep interrupted; resume with: {resume}"
    record = interrupted_sweep["record"]
    assert record["state"] == "interrupted" and record["grid"] == {
        "learning_rate": [0.05, 1e30], "seed": [0, 3], "epochs": [6], "engine": ["fit"]}
    first, *rest = record["trials"]
    assert first["settings"] == {"learning_rate": 0.05, "seed": 0, "epochs": 6, "engine": "fit"}
    assert first["state"] == "interrupted" and config_of(first["run_dir"])["checkpoint_epoch"] == 3
    assert [trial["state"] for trial in rest] == ["pending"] * 3 and not any(trial["run_dir"] for trial in rest)


def test_resume_finishes_the_sweep_and_records_each_trial(interrupted_sweep, resumed_sweep, fit_json):
    sweep_dir = interrupted_sweep["sweep_dir"]
    assert resumed_sweep["state"] == "finished" and resumed_sweep["picture"] == "sweep.png"
    states = [trial["state"] for trial in resumed_sweep["trials"]]
    assert states == ["finished", "finished", "diverged", "diverged"]  # the diverging trials did not stop the rest
    first = resumed_sweep["trials"][0]
    # One trial at a time: one Ray worker trained them all, importing TensorFlow once.
    assert len({trial["worker"] for trial in resumed_sweep["trials"]}) == 1 and first["worker"]
    assert config_of(first["run_dir"])["resumed"][0]["from_epoch"] == 3
    # Each trial is an ordinary run: the one stopped and resumed in a Ray worker matches a straight `fit`.
    straight = fit_json("spiral-deep8", "--epochs", "6", "--engine", "fit", "--seed", "0")
    assert first["test"] == straight["metrics"]["test"]
    assert config_of(first["run_dir"])["command"][:2] == ["beanstrain", "fit"]
    assert all(Path(trial["run_dir"]).parent == interrupted_sweep["out"] / "spiral-deep8"
               for trial in resumed_sweep["trials"])
    assert sweep_json(sweep_dir)["trials"] == resumed_sweep["trials"]
    with open(sweep_dir / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["state"] for row in rows] == states
    assert float(rows[0]["test_accuracy"]) == pytest.approx(first["test"]["accuracy"])
    assert (sweep_dir / "sweep.png").stat().st_size > 10_000


def test_the_gate_names_the_trials_below_the_bar(interrupted_sweep, resumed_sweep, invoke):
    """A finished sweep resumed with a gate is judged without running anything again."""
    sweep_dir = interrupted_sweep["sweep_dir"]
    accuracies = sorted(trial["test"]["accuracy"] for trial in resumed_sweep["trials"] if trial["test"])
    failed = invoke("sweep", "--resume", sweep_dir, "--min-accuracy", accuracies[0], "--quiet", exit_code=1)
    line = failed.output.strip().splitlines()[-1]
    assert line.startswith(f"Error: 2 of 4 trials reached test accuracy {accuracies[0]}")
    assert "trial 3 (learning_rate=1e+30 seed=0 epochs=6 engine=fit) diverged" in line and "trial 1 " not in line
    passed = invoke("sweep", "--resume", sweep_dir, "--min-accuracy", accuracies[0], "--min-fraction", 0.5, "--quiet")
    assert "2 of 4 trials reached" in passed.output
    invoke("sweep", "--resume", sweep_dir, "--min-accuracy", accuracies[-1] + 0.01, "--min-fraction", 0.25,
           "--quiet", exit_code=1)


def test_a_trial_that_fails_is_named_with_its_whole_reason_and_leaves_no_folder(invoke, runner, tmp_path,
                                                                                 monkeypatch):
    """An image recipe over two networks with --data: its initial weights fit dense128 but not lenet5, which
    only the trial building lenet5 finds; the dense128 trial trains on the --data file."""
    from mnist_files import blob_splits, write_npz

    data = write_npz(tmp_path / "blobs.npz", blob_splits())
    monkeypatch.chdir(tmp_path)
    Path("weights.toml").write_text('dataset = "mnist"\nmodel = "dense128"\nepochs = 1\nbatch_size = 32\n'
                                    "initial_weights = [0.01, 0.0, 0.01, 0.0]\n")
    out = tmp_path / "runs"
    result = invoke("sweep", "weights.toml", "--set", "model=dense128,lenet5", "--data", "blobs.npz", "--out", out,
                    "--quiet", exit_code=1)
    # The oracle: what `fit` says for the failing trial's recipe.
    alone = invoke("fit", "weights.toml", "--model", "lenet5", "--data", data, "--out", out, "--quiet", exit_code=2)
    reason = alone.output.strip().splitlines()[-1].removeprefix("Error: ")
    assert len(reason) > 200
    (sweep_dir,) = (out / "sweeps").iterdir()
    finished, failed = sweep_json(sweep_dir)["trials"]
    assert finished["state"] == "finished" and config_of(finished["run_dir"])["data_path"] == str(data)
    assert failed["state"] == "failed" and failed["error"] == reason and failed["run_dir"] is None
    assert "trial 2" in result.output.strip().splitlines()[-1]
    assert [folder for folder in out.glob("*/*") if not any(folder.iterdir())] == []


@pytest.mark.parametrize("args, message", [
    (["spiral-deep8", "--set", "seeds=0..2"], "unknown recipe key 'seeds'; did you mean 'seed'?"),
    (["spiral-deep8", "--set", "learning_rate=0..2"], "A..B ranges are for integer keys"),
    (["spiral-deep8", "--set", "seed=3..1"], "the range 3..1 is empty"),
    (["spiral-deep8", "--set", "epochs=10,0"], "epochs must be a positive integer, got 0"),
    (["spiral-deep8"], "give the grid with --set"),
    (["spiral-deep8", "--set", "seed=0..1", "--address", "auto", "--out", "runs"], "give an absolute path"),
    (["beans1-neuron", "--set", "seed=0..1", "--min-accuracy", "0.9"], "beans1 is a regression set"),
])
def test_bad_grids_are_refused_before_anything_starts(invoke, tmp_path, args, message):
    result = invoke("sweep", *args, "--out", tmp_path / "runs" if "--out" not in args else "runs", exit_code=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_two_sweeps_started_in_the_same_second_get_two_folders(tmp_path):
    from beanstrain.sweep import new_sweep_dir

    first, second = new_sweep_dir(tmp_path, "beans4-hidden2"), new_sweep_dir(tmp_path, "beans4-hidden2")
    assert first != second and first.parent == second.parent == tmp_path / "sweeps"


def test_a_trial_whose_process_died_is_recorded_failed(tmp_path):
    """A run folder still marked running after its task came back: the worker was killed or its machine lost."""
    from beanstrain import files, runs
    from beanstrain.sweep import record_outcome

    run_dir = runs.create_run_dir(tmp_path, "beans4-hidden2")
    files.write_json(run_dir / runs.CONFIG, {"state": runs.RUNNING})
    trial = record_outcome({"run_dir": str(run_dir)}, "the trial's process ended: worker died")
    assert trial["state"] == "failed" and trial["error"] == "the trial's process ended: worker died"
    assert trial["test"] is None


def test_without_ray_the_sweep_is_one_line_saying_what_to_install(invoke, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is not installed
    result = invoke("sweep", "beans7-neuron", "--set", "seed=0..1", "--out", tmp_path / "runs", exit_code=1)
    assert result.output.strip() == ('Error: beanstrain sweep needs Ray, which is not installed: '
                                     'pip install "beanstrain[sweep]" (or pip install ray)')
    assert not (tmp_path / "runs").exists()


def test_a_grid_too_large_is_refused_at_once_with_its_count(runner, tmp_path):
    """10^9 trials: counted from the --set values alone, refused in one line before anything is built or Ray starts."""
    from beanstrain.cli import cli

    done = runner.invoke(cli, ["sweep", "beans4-hidden2", "--set", "seed=0..999999", "--set", "epochs=1..1000",
                               "--out", str(tmp_path)])
    assert done.exit_code == 2, done.output
    assert ("the grid has 1,000,000,000 trials (1,000,000 seed x 1,000 epochs), more than 10,000; check the --set "
            "ranges, or raise the limit with --max-trials 1000000000") in done.output
    assert not (tmp_path / "sweeps").exists()


def test_max_trials_is_the_boundary():
    from beanstrain.errors import UsageError
    from beanstrain.sweep import parse_grid

    assert parse_grid(["seed=0..2", "learning_rate=0.1,0.5"], max_trials=6) == {
        "seed": [0, 1, 2], "learning_rate": [0.1, 0.5]}
    with pytest.raises(UsageError, match="the grid has 6 trials .* more than 5; .* --max-trials 6"):
        parse_grid(["seed=0..2", "learning_rate=0.1,0.5"], max_trials=5)
