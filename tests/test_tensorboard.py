"""TensorBoard event files: read back through TensorBoard's own server, compared with history.csv and sweep.json."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from beanstrain.cli import cli


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def board_runs(tmp_path_factory):
    """A compiled run and a numpy-engine run, interrupted-free; then a real TensorBoard server over them."""
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("board")
    runner = CliRunner()
    run_dirs = {}
    for recipe, arguments in (("beans4-hidden2", ["--epochs", "30"]), ("beans1-sgd", ["--epochs", "2"])):
        done = runner.invoke(cli, ["fit", recipe, *arguments, "--out", str(out), "--quiet", "--animation", "none",
                                   "--json"])
        assert done.exit_code == 0, done.output
        run_dirs[recipe] = Path(json.loads(done.stdout)["run_dir"])
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(out), "--host", "127.0.0.1",
                               "--port", str(port), "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                listed = json.loads(urllib.request.urlopen(f"{base}/data/runs", timeout=2).read())
                if sum(name.endswith("/tb/train") for name in listed) == 2:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard did not list the runs within 60 s"
            time.sleep(0.5)
        yield out, run_dirs, base
    finally:
        server.terminate()
        server.wait(timeout=20)


def scalars(base: str, run: str, tag: str) -> list[tuple[int, float]]:
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    return [(step, value) for _, step, value in
            json.loads(urllib.request.urlopen(f"{base}/data/plugin/scalars/scalars?{query}", timeout=10).read())]


def history(run_dir: Path) -> dict[str, list[float]]:
    lines = (run_dir / "history.csv").read_text().split()
    header = lines[0].split(",")
    rows = [[float(value) for value in line.split(",")] for line in lines[1:]]
    return {name: [row[index] for row in rows] for index, name in enumerate(header)}


@pytest.mark.parametrize("recipe", ["beans4-hidden2", "beans1-sgd"])
def test_the_server_shows_every_epochs_figures_as_history_csv_has_them(board_runs, recipe):
    out, run_dirs, base = board_runs
    run_dir = run_dirs[recipe]
    name = run_dir.relative_to(out).as_posix()
    expected = history(run_dir)
    for column in [column for column in expected if column != "epoch"]:
        held_out, _, metric = column.rpartition("_")
        shown = scalars(base, f"{name}/tb/{held_out or 'train'}", f"epoch_{metric}")
        assert [step for step, _ in shown] == [int(epoch) for epoch in expected["epoch"]]
        assert [value for _, value in shown] == pytest.approx(expected[column], rel=1e-6)


def test_the_weights_are_histograms_at_each_trace_snapshot(board_runs):
    import numpy as np

    out, run_dirs, base = board_runs
    run_dir = run_dirs["beans4-hidden2"]
    name = f"{run_dir.relative_to(out).as_posix()}/tb/weights"
    tags = json.loads(urllib.request.urlopen(f"{base}/data/plugin/histograms/tags", timeout=10).read())[name]
    with np.load(run_dir / "trace.npz") as trace:
        names = [str(weight) for weight in trace["names"]]
        steps, kernels = trace["epochs"] * int(trace["steps_per_epoch"]), trace["weight_0"]
    assert set(tags) == {f"weights/{weight}" for weight in names} and len(names) == 4
    query = urllib.parse.urlencode({"run": name, "tag": f"weights/{names[0]}"})
    shown = json.loads(urllib.request.urlopen(f"{base}/data/plugin/histograms/histograms?{query}", timeout=10).read())
    assert [step for _, step, _ in shown] == [int(step) for step in steps]
    last_buckets = shown[-1][2]  # [left, right, count] per bucket: they span the last snapshot's kernel
    assert last_buckets[0][0] == pytest.approx(kernels[-1].min()) and last_buckets[-1][1] == pytest.approx(
        kernels[-1].max())
    assert sum(count for _, _, count in last_buckets) == pytest.approx(kernels[-1].size)


def test_no_tensorboard_writes_none(runner, tmp_path):
    done = runner.invoke(cli, ["fit", "beans1-sgd", "--epochs", "1", "--out", str(tmp_path), "--quiet",
                               "--animation", "none", "--no-tensorboard", "--json"])
    assert done.exit_code == 0, done.output
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    assert not (run_dir / "tb").exists() and json.loads((run_dir / "config.json").read_text())["tensorboard"] is False


def test_a_sweep_is_an_hparams_experiment_the_server_reads(runner, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "runs"
    done = runner.invoke(cli, ["sweep", "beans1-sgd", "--set", "learning_rate=0.05,0.1", "--set", "epochs=1",
                               "--parallel", "2", "--out", str(out), "--json", "--quiet"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    board = Path(result["sweep_dir"]) / "tb"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(board), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/data/plugin/hparams"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"{base}/experiment", data=b'{"experimentName": ""}',
                                                 headers={"Content-Type": "application/json"})
                experiment = json.loads(urllib.request.urlopen(request, timeout=2).read())
                if experiment.get("hparamInfos"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "TensorBoard's HParams plugin did not answer within 60 s"
            time.sleep(0.5)
        assert {info["name"] for info in experiment["hparamInfos"]} == {"learning_rate", "epochs"}
        assert {info["name"]["tag"] for info in experiment["metricInfos"]} == {"test_loss", "test_accuracy"}
        request = urllib.request.Request(f"{base}/session_groups", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"experimentName": "", "startIndex": 0, "sliceSize": 10,
                                                          "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"],
                                                          "colParams": []}).encode())
        groups = json.loads(urllib.request.urlopen(request, timeout=10).read())["sessionGroups"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    shown = {group["hparams"]["learning_rate"]: {value["name"]["tag"]: value["value"]
                                                 for value in group["metricValues"]} for group in groups}
    recorded = {trial["settings"]["learning_rate"]: trial["test"] for trial in result["trials"]}
    assert set(shown) == set(recorded) == {0.05, 0.1}
    for rate, test in recorded.items():
        assert shown[rate]["test_loss"] == pytest.approx(test["loss"], rel=1e-6)


def test_writing_the_files_never_imports_tensorflow(tmp_path):
    """TensorBoard's file layer would import TensorFlow, installed here, unless told not to: a JAX run and a sweep's
    driver write their files without it."""
    code = f"""
import sys
from pathlib import Path
from beanstrain.board import BoardWriter, write_sweep_hparams
from beanstrain.engines.protocol import History
writer = BoardWriter(Path({str(tmp_path)!r}), ["loss", "test_loss"], None)
writer.on_chunk(1, History(["loss", "test_loss"], [[0.5, 0.6]]))
writer.close()
write_sweep_hparams(Path({str(tmp_path)!r}) / "sweep", {{"grid": {{"seed": [0]}}, "trials": [
    {{"trial": 1, "state": "finished", "settings": {{"seed": 0}}, "test": {{"loss": 0.1}}}}]}})
print("tensorflow" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))
