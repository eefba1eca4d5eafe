"""`beanstrain compare` on real finished runs: labels, the table against each run's metrics.json, the
picture, runs with different history columns, and every one-line error."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from run_folders import config_of

from beanstrain import runs
from beanstrain.cli import cli


@pytest.fixture(scope="module")
def five_runs(runner, tmp_path_factory):
    """Five short finished runs under one --out, oldest first: beans7-neuron three times (seed 0, seed 1,
    learning rate 0.5), beans4-hidden2, and mlp512 on small MNIST-format blobs (val_* history columns)."""
    from mnist_files import blob_splits, write_npz

    from beanstrain import outputs

    root = tmp_path_factory.mktemp("compare")
    data = write_npz(root / "blobs.npz", blob_splits(train=200, test=50))
    settings = [["beans7-neuron", "--epochs", "3"], ["beans7-neuron", "--epochs", "3", "--seed", "1"],
                ["beans7-neuron", "--epochs", "3", "--learning-rate", "0.5"], ["beans4-hidden2", "--epochs", "4"],
                ["--dataset", "mnist", "--model", "mlp512", "--epochs", "2", "--data", str(data)]]
    run_dirs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outputs, "draw_pictures", lambda *args: [])  # compare reads no picture
        for args in settings:
            result = runner.invoke(cli, ["fit", *args, "--out", str(root / "runs"), "--quiet", "--json"])
            assert result.exit_code == 0, result.output
            run_dirs.append(json.loads(result.stdout)["run_dir"])
    return {"out": root / "runs", "runs": run_dirs}


def compare_json(invoke, out, *args):
    return json.loads(invoke("compare", *args, "--out", out, "--json").stdout)


def test_two_runs_labelled_by_seed_with_the_table_from_their_files(invoke, five_runs, tmp_path):
    first, second = five_runs["runs"][:2]
    table = compare_json(invoke, five_runs["out"], first, second)
    assert [row["label"] for row in table] == ["seed 0", "seed 1"]
    assert [row["settings"] for row in table] == [{"seed": 0}, {"seed": 1}]
    for row, run_dir in zip(table, (first, second)):
        metrics = json.loads((runs.Path(run_dir) / runs.METRICS).read_text())
        assert row["run_dir"] == run_dir and row["recipe"] == "beans7-neuron"
        assert (row["train"], row["test"]) == (metrics["train"], metrics["test"])
        assert (row["epochs"], row["train_seconds"]) == (3, metrics["train_seconds"])
    assert table[0]["test"] != table[1]["test"]  # different seeds, different runs

    picture = tmp_path / "two.png"
    text = invoke("compare", first, second, "--out", five_runs["out"], "--plot", picture).output
    lines = text.splitlines()
    assert lines[0].split() == ["run", "recipe", "seed", "train", "loss", "train", "acc", "test", "loss", "test",
                                "acc", "epochs", "seconds"]
    assert lines[1].split()[:3] == [first, "beans7-neuron", "0"]
    assert f"{table[1]['test']['accuracy']:.4f}" in lines[2]
    assert lines[-1] == f"picture: {picture} (test_accuracy per epoch)"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_recipe_name_is_its_newest_finished_run(invoke, five_runs):
    table = compare_json(invoke, five_runs["out"], "beans7-neuron", "beans4-hidden2")
    assert [row["run_dir"] for row in table] == [five_runs["runs"][2], five_runs["runs"][3]]
    assert [row["label"] for row in table] == ["beans7-neuron", "beans4-hidden2"]  # the recipe says it all


def test_five_runs_with_different_columns_are_compared_on_what_they_share(invoke, five_runs, tmp_path):
    from beanstrain.compare import load_runs
    from beanstrain.plots import pyplot
    from beanstrain.plots.compare import draw_curves

    picture = tmp_path / "five.png"
    table = compare_json(invoke, five_runs["out"], *five_runs["runs"], "--plot", picture)
    assert [row["label"] for row in table] == [
        "beans7-neuron, learning rate 0.05, seed 0", "beans7-neuron, learning rate 0.05, seed 1",
        "beans7-neuron, learning rate 0.5, seed 0", "beans4-hidden2, learning rate 0.05, seed 0",
        "mnist-mlp512, learning rate default, seed 0"]
    # Epochs, dataset, network... differ too, only from recipe to recipe: the table shows them, the labels not.
    assert {"learning_rate", "seed", "epochs", "dataset", "model"} <= set(table[0]["settings"])
    assert picture.is_file()

    # The picture holds one line per run, each the run's accuracy per epoch from its history.csv.
    compared = load_runs(five_runs["runs"], five_runs["out"])
    figure, ax = pyplot().subplots()
    draw_curves(ax, compared, "accuracy")
    for line, run_dir in zip(ax.get_lines(), five_runs["runs"]):
        columns, rows = runs.read_history(runs.Path(run_dir) / runs.HISTORY)
        np.testing.assert_allclose(line.get_ydata(), [row[columns.index("accuracy")] for row in rows])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [row["label"] for row in table]
    pyplot().close(figure)

    result = invoke("compare", *five_runs["runs"], "--out", five_runs["out"], "--metric", "test_accuracy",
                    exit_code=2)
    assert result.output.strip().splitlines() == [
        f"Error: --metric test_accuracy is not in the history of {five_runs['runs'][4]}; "
        "every run has: loss, accuracy"]


def test_runs_that_differ_in_nothing_are_told_apart_by_folder(invoke, five_runs, tmp_path):
    import shutil

    again = shutil.copytree(five_runs["runs"][0], tmp_path / "again")
    table = compare_json(invoke, five_runs["out"], five_runs["runs"][0], again)
    assert [row["label"] for row in table] == [runs.Path(five_runs["runs"][0]).name, "again"]
    assert table[0]["settings"] == table[1]["settings"] == {} and table[0]["test"] == table[1]["test"]


@pytest.mark.parametrize("case", ["unknown recipe", "unfinished", "not a run", "damaged history", "twice",
                                  "plot folder missing", "plot not png"])
def test_errors_are_one_line(invoke, five_runs, tmp_path, case):
    first = five_runs["runs"][0]
    if case == "unknown recipe":
        args, code, message = ["beans7-neuron", "mnist-dense128"], 1, (
            f"Error: mnist-dense128 is neither a run folder nor a recipe with a finished run under "
            f"{five_runs['out']}; recipes with finished runs: beans4-hidden2, beans7-neuron, mnist-mlp512")
    elif case == "unfinished":
        import shutil

        copy = tmp_path / "copy"
        shutil.copytree(first, copy)
        runs.set_state(copy, runs.INTERRUPTED)
        args, code, message = [first, copy], 1, f"Error: {copy} is interrupted, not finished: continue it with"
    elif case == "not a run":
        args, code, message = [first, tmp_path], 1, f"Error: {tmp_path} is not a run folder (it has no config.json)"
    elif case == "damaged history":
        import shutil

        copy = shutil.copytree(first, tmp_path / "copy")
        (copy / runs.HISTORY).write_text("epoch,loss\n1,0.5,0.25\n")
        args, code, message = [first, copy], 1, f"Error: {copy / runs.HISTORY} is damaged: a row does not have"
    elif case == "twice":
        args, code, message = ["beans7-neuron", five_runs["runs"][2]], 2, "Error: beans7-neuron and "
    elif case == "plot folder missing":
        args, code, message = [first, "--plot", tmp_path / "nowhere" / "c.png"], 2, "Error: --plot "
    else:
        picture = tmp_path / "c.jpg"
        args, code, message = [first, "--plot", picture], 2, f"Error: --plot {picture}: the picture is a PNG"
    output = invoke("compare", *args, "--out", five_runs["out"], exit_code=code).output
    assert len(output.strip().splitlines()) == 1 and output.startswith(message), output
    assert config_of(first)["state"] == runs.FINISHED


def test_compare_imports_no_tensorflow(five_runs):
    code = ("import sys\nfrom beanstrain.cli import cli\n"
            f"try:\n    cli.main(['compare', *{five_runs['runs'][:2]!r}, '--json'], prog_name='beanstrain')\n"
            "except SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
            "print('HEAVY', [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules])")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "HEAVY []"
    assert json.loads(output[:output.rindex("HEAVY")])[0]["label"] == "seed 0"
