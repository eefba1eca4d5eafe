"""Run folders: never-shared folders, run states, the lock on a folder being trained, finding finished runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from beanstrain import files, runs
from beanstrain.errors import RunError, UsageError


def test_parallel_fits_into_the_same_out_never_share_a_folder(tmp_path):
    """Several real processes, started together, racing for the same run folder name."""
    command = [sys.executable, "-m", "beanstrain", "fit", "beans7-neuron", "--epochs", "2", "--out",
               str(tmp_path), "--json", "--quiet"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    summaries = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        summaries.append(json.loads(stdout))
    folders = {summary["run_dir"] for summary in summaries}
    assert len(folders) == 3
    for folder in map(Path, folders):
        config = json.loads((folder / runs.CONFIG).read_text())
        assert config["state"] == runs.FINISHED
        assert files.file_sha256(folder / runs.MODEL) == config["model_sha256"]
        assert not [path for path in folder.iterdir() if path.name.startswith(".")]


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path):
    code = ("import sys, time\nfrom pathlib import Path\nfrom beanstrain import runs\n"
            "with runs.holding(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match="being trained by another process"), runs.holding(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with runs.holding(tmp_path):  # the lock ends with the process that held it, however it ended
        pass


@pytest.mark.parametrize("state, hint", [
    ("running", "still training"), ("interrupted", "fit --resume"), ("failed", "fit --resume"),
    ("diverged", "lower --learning-rate"),
])
def test_only_finished_runs_are_read(tmp_path, state, hint):
    runs.require_finished(tmp_path, {"state": runs.FINISHED})
    with pytest.raises(RunError, match=hint):
        runs.require_finished(tmp_path, {"state": state})


def test_newest_finished_run_skips_newer_unfinished_ones(tmp_path):
    made = []
    for state in (runs.FINISHED, runs.FINISHED, runs.INTERRUPTED, runs.RUNNING, runs.DIVERGED, runs.FAILED):
        run_dir = runs.create_run_dir(tmp_path, "beans7-neuron")
        files.write_json(run_dir / runs.CONFIG, {"state": state})
        made.append(run_dir)
    assert runs.latest_finished_run(tmp_path, "beans7-neuron") == made[1]
    assert runs.resolve_run("beans7-neuron", tmp_path) == made[1]
    assert runs.resolve_run(None, tmp_path) == made[1]
    assert runs.resolve_run(str(made[2]), tmp_path) == made[2]  # a folder named explicitly is taken as given


def test_out_under_a_file_is_not_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not writable"):
        runs.check_out_dir(tmp_path / "file" / "runs")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_out_where_nothing_can_be_created_is_not_writable():
    # /proc refuses new files even to root, for whom permission bits mean nothing.
    with pytest.raises(UsageError, match="not writable"):
        runs.check_out_dir(Path("/proc/beanstrain-runs"))


def test_read_only_folder_is_not_writable(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    with pytest.raises(UsageError, match="not writable"):
        runs.check_out_dir(folder / "runs")
