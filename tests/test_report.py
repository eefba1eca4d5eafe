"""report.html at the end of every run, `beanstrain report` and its index, everything escaped."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_folders import config_of, only_run

from beanstrain import report, runs
from beanstrain.files import write_json
from beanstrain.recipes import Recipe, as_dict, resolve_recipe

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


def copy_of(trained_run: Path, destination: Path, **config_changes) -> Path:
    shutil.copytree(trained_run, destination)
    if config_changes:
        write_json(destination / runs.CONFIG, {**config_of(destination), **config_changes})
    return destination


def page_of(run_dir: Path) -> str:
    return (Path(run_dir) / report.PAGE).read_text()


def image_sources(page: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]+)"', page)


def add_animation(run_dir: Path) -> None:
    """A two-frame GIF and an .mp4 beside the run's pictures, as the animation writers leave them."""
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue")]
    frames[0].save(run_dir / "training.gif", save_all=True, append_images=frames[1:], duration=200, loop=0)
    (run_dir / "training.mp4").write_bytes(b"")


def test_a_finished_run_has_a_page_showing_its_figures_pictures_and_command(trained_run):
    page = page_of(trained_run)
    config, metrics = config_of(trained_run), json.loads((trained_run / runs.METRICS).read_text())
    assert 'class="state state-finished"' in page
    assert f"{metrics['test']['accuracy']:.4f}" in page and f"{metrics['train']['loss']:.4f}" in page
    pictures = sorted(path.name for path in trained_run.iterdir() if path.suffix in (".png", ".gif"))
    assert pictures and sorted(image_sources(page)) == pictures
    assert config["versions"]["tensorflow"] in page and config["device"]["name"] in page
    assert "<script" not in page and "http" not in page  # no JavaScript, nothing fetched from a network


def test_the_command_on_the_page_trains_the_same_recipe(trained_run):
    """The oracle: the command's arguments, resolved as `fit` resolves them, give the recipe the run recorded."""
    def resolved(command: str) -> Recipe:
        words = shlex.split(command)[2:]
        name = None if words[0].startswith("--") else words.pop(0)
        flags = {words[index][2:].replace("-", "_"): words[index + 1] for index in range(0, len(words), 2)}
        types = {"epochs": int, "batch_size": int, "samples": int, "seed": int, "learning_rate": float,
                 "noise": float, "validation_split": float}
        return resolve_recipe(name, {key: types.get(key, str)(value) for key, value in flags.items()})

    config = config_of(trained_run)
    assert report.reproduce_command(config) == "beanstrain fit beans7-neuron --epochs 3"
    assert as_dict(resolved(report.reproduce_command(config))) == config["recipe"]
    pair = resolve_recipe(None, {"dataset": "spiral", "model": "hidden2", "epochs": 7, "learning_rate": 0.3,
                                 "seed": 4})
    command = report.reproduce_command({"recipe": as_dict(pair)})
    assert command.startswith("beanstrain fit --dataset spiral --model hidden2 ")
    assert resolved(command) == pair


def test_a_run_with_keys_no_flag_sets_is_trained_again_from_its_own_recipe_file(fit_json, tmp_path, monkeypatch):
    """A levels recipe with its mapping changed: the page's command names the recipe file the run folder kept,
    and `fit` trains from it the recipe the run recorded."""
    monkeypatch.chdir(tmp_path)
    Path("my-levels.toml").write_text('dataset = "beans0"\nmodel = "slope"\nepochs = 2\nlevels = 10\n'
                                      'level_mapping = "ltp"\nlevel_nonlinearity = 0.5\n')
    run_dir = Path(fit_json("my-levels.toml")["run_dir"])
    config = config_of(run_dir)
    words = shlex.split(report.reproduce_command(config, run_dir))
    assert words == ["beanstrain", "fit", str(run_dir / "my-levels.toml")]
    assert as_dict(resolve_recipe(words[2])) == config["recipe"]
    again = Path(fit_json(*words[2:])["run_dir"])
    assert config_of(again)["recipe"] == config["recipe"] and again.parent == run_dir.parent
    page = (run_dir / report.PAGE).read_text()
    assert html.escape(shlex.join(words)) in page
    settings = dict(report.run_context(run_dir)["settings"])
    assert settings["levels"] == 10 and settings["level mapping"] == "ltp (A = 0.5)"
    assert "<dt>level mapping</dt><dd>ltp (A = 0.5)</dd>" in page
    weights = report._settings({}, {"initial_weights": [[0.5, -1], 0.1]})
    assert ("initial weights", "[[0.5, -1], 0.1]") in weights and ("levels", 0) not in weights
    two = {**config, "device": {"devices": ["CPU:0", "CPU:1"]}, "data_path": "d.npz"}
    assert report.reproduce_command(two, run_dir).endswith(" --data d.npz --devices 2")
    (run_dir / "my-levels.toml").unlink()  # a run from before run folders kept their recipe: no wrong command
    assert report.reproduce_command(config, run_dir) is None


def test_every_way_a_run_ends_writes_its_page(invoke, tmp_path, monkeypatch, interrupt_at):
    from beanstrain import outputs
    from beanstrain.errors import RunError

    interrupt_at(2)
    invoke("fit", "beans7-neuron", "--epochs", 40, "--engine", "fit", "--out", tmp_path / "stopped", "--quiet",
           exit_code=130)
    monkeypatch.undo()
    stopped = only_run(tmp_path / "stopped")
    page = page_of(stopped)
    assert config_of(stopped)["state"] == "interrupted" and 'state-interrupted"' in page
    assert html.escape(runs.resume_command(stopped)) in page

    def no_space(*args):
        raise RunError("no space left on device")

    monkeypatch.setattr(outputs, "draw_pictures", no_space)
    invoke("fit", "beans7-neuron", "--epochs", 3, "--out", tmp_path / "failed", "--quiet", exit_code=1)
    monkeypatch.undo()
    failed = only_run(tmp_path / "failed")
    page = page_of(failed)
    assert 'state-failed"' in page and "failed: no space left on device" in page
    assert html.escape(runs.resume_command(failed)) in page

    invoke("fit", "--dataset", "beans1", "--model", "neuron", "--optimizer", "sgd", "--learning-rate", 0.85,
           "--epochs", 300, "--engine", "compiled", "--out", tmp_path / "diverged", "--quiet", exit_code=1)
    diverged = only_run(tmp_path / "diverged")
    page = page_of(diverged)
    epoch = config_of(diverged)["diverged_epoch"]
    assert 'state-diverged"' in page and f"NaN or infinite at epoch {epoch}" in page
    assert "lower --learning-rate" in page and "--resume" not in page


def test_a_page_that_cannot_be_written_leaves_the_run_as_it_was(runner, tmp_path, monkeypatch):
    from beanstrain.cli import cli

    def refuse(run_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "write_run_page", refuse)
    result = runner.invoke(cli, ["fit", "beans7-neuron", "--epochs", 3, "--out", str(tmp_path), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_dir"] == str(only_run(tmp_path))
    assert "warning: report.html not written: [Errno 28] No space left on device" in result.stderr
    assert config_of(only_run(tmp_path))["state"] == "finished"
    assert not (only_run(tmp_path) / report.PAGE).exists()


def test_hostile_text_from_a_run_is_escaped(trained_run, tmp_path):
    config = config_of(trained_run)
    out = tmp_path / "runs"
    run_dir = copy_of(trained_run, out / HOSTILE.replace("/", "|") / "20261124-101500-1", state="failed",
                      error=HOSTILE, recipe={**config["recipe"], "description": HOSTILE,
                                             "course_result": HOSTILE, "name": HOSTILE})
    (run_dir / "<b>neurons.png").write_bytes((trained_run / "data.png").read_bytes())
    for page in (report.write_run_page(run_dir).read_text(), report.write_index(out).read_text()):
        assert "<script>" not in page and "<img src=x" not in page and "<b>" not in page
    page = page_of(run_dir)
    # The title, the heading, the description, the course's result and the error: each shown as text.
    assert html.unescape(page).count(HOSTILE) == 5 and "&lt;script&gt;" in page
    assert 'src="%3Cb%3Eneurons.png"' in page


def test_every_picture_and_video_is_embedded_known_ones_first(trained_run, tmp_path):
    run_dir = copy_of(trained_run, tmp_path / "beans7-neuron" / "20261124-101500-1")
    add_animation(run_dir)
    for name in ("neurons.png", "weights.png", "zebra.png", "another.gif"):
        shutil.copy(run_dir / "data.png", run_dir / name)
    (run_dir / ".data-abcd1234.png").write_bytes(b"half a picture")  # a temporary a killed writer left
    page = report.write_run_page(run_dir).read_text()
    shown = re.findall(r'<(?:img|video) [^>]*src="([^"]+)"', page)
    assert shown == ["boundary.png", "training.gif", "training.mp4", "history.png", "surface.png", "neurons.png",
                     "network.png", "weights.png", "gradients.png", "data.png", "another.gif", "zebra.png"]
    assert '<video src="training.mp4" controls autoplay muted loop playsinline>' in page


def write_raw_trace(path: Path, **arrays) -> None:
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


def test_the_final_weights_come_from_the_traces_last_snapshot(trained_run, tmp_path):
    from beanstrain.trace import Trace, write_trace

    run_dir = copy_of(trained_run, tmp_path / "run")
    kernels = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2) / 7
    biases = np.array([[0.0, 1.0], [0.5, 2.0], [-1.25, 3.0]], np.float32)
    trace = Trace(["dense/kernel", "dense/bias"])
    trace.take({epoch: [kernels[row], biases[row]] for row, epoch in enumerate((0, 5, 10))})
    write_trace(run_dir, trace)
    weights = report.final_weights(run_dir)
    assert weights["epoch"] == 10
    assert weights["arrays"] == [("dense/kernel", "2x2", [[f"{value:.4g}" for value in row] for row in kernels[-1]]),
                                 ("dense/bias", "2", [["-1.25", "3"]])]
    page = report.write_run_page(run_dir).read_text()
    assert "Final weights (epoch 10)" in page and f"{kernels[-1][1][0]:.4g}" in page and "dense/kernel" in page

    big = Trace(["dense/kernel"])
    big.take({0: [np.zeros((30, 30), np.float32)], 1: [np.ones((30, 30), np.float32)]})
    write_trace(run_dir, big)
    assert "900 numbers" in report.final_weights(run_dir)["note"]
    summary = Trace(["dense/kernel"], summarize=True)
    summary.take({0: [np.zeros((30, 30), np.float32)]})
    write_trace(run_dir, summary)
    assert "percentiles" in report.final_weights(run_dir)["note"]
    write_raw_trace(run_dir / report.TRACE, epochs=np.array([0, 1]), names=np.array(["a"]),
                    weight_0=np.array([{"a": 1}, None], dtype=object))
    assert "could not be read" in report.final_weights(run_dir)["note"]  # a pickle is never loaded
    (run_dir / report.TRACE).write_bytes(b"not a zip")
    assert "could not be read" in report.write_run_page(run_dir).read_text()
    (run_dir / report.TRACE).unlink()
    assert report.final_weights(run_dir) is None and "Final weights" not in report.write_run_page(run_dir).read_text()


def test_the_index_groups_runs_by_recipe_newest_first_and_is_rewritten(invoke, trained_run, tmp_path):
    out = tmp_path / "runs"
    older = copy_of(trained_run, out / "beans7-neuron" / "20261124-090000-1")
    newer = copy_of(trained_run, out / "beans7-neuron" / "20261124-100000-1")
    (newer / report.PAGE).unlink()  # a run from before pages: the index writes its page
    other = copy_of(trained_run, out / "beans4-hidden2" / "20261124-080000-1", state="interrupted")
    (out / "beans4-hidden2" / "20261124-070000-1").mkdir()
    assert invoke("report", "--out", out).output == f"page: {out / report.INDEX}\n"
    index = (out / report.INDEX).read_text()
    links = re.findall(r'<a class="card" href="([^"]+)"', index)
    assert links == ["beans4-hidden2/20261124-080000-1/report.html", "beans7-neuron/20261124-100000-1/report.html",
                     "beans7-neuron/20261124-090000-1/report.html"]
    assert all((out / link).is_file() for link in links)
    thumbnails = image_sources(index)
    assert thumbnails == [f"{run.relative_to(out).as_posix()}/boundary.png" for run in (other, newer, older)]
    assert "no config.json" in index and index.index("<h2>beans4-hidden2</h2>") < index.index("<h2>beans7-neuron</h2>")

    newest = copy_of(trained_run, out / "beans7-neuron" / "20261124-110000-1")
    invoke("report", "--out", out)
    assert re.findall(r'<a class="card" href="([^"]+)"', (out / report.INDEX).read_text())[1] == \
        f"{newest.relative_to(out).as_posix()}/report.html"
    assert sorted(path.name for path in out.iterdir()) == ["beans4-hidden2", "beans7-neuron", "index.html"]


def test_report_rewrites_one_runs_page_and_opens_it(invoke, trained_run, tmp_path, monkeypatch):
    import webbrowser

    run_dir = copy_of(trained_run, tmp_path / "run")
    (run_dir / report.PAGE).unlink()
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert invoke("report", run_dir, "--open").output == f"page: {run_dir / report.PAGE}\n"
    assert opened == [(run_dir / report.PAGE).resolve().as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    result = invoke("report", run_dir, "--open")
    assert f"no browser found to open it; open {run_dir / report.PAGE} yourself" in result.output


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "nowhere is not a folder"),
    (["."], ". is not a run folder (it has no config.json)"),
    (["--out", "nowhere"], "--out nowhere is not a folder of runs"),
])
def test_report_refuses_what_is_not_a_run_or_a_folder_of_runs(invoke, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert invoke("report", *args, exit_code=2).output == f"Error: {message}\n"


def test_a_run_that_fails_says_one_line_even_when_its_page_cannot_be_written(invoke, tmp_path, monkeypatch):
    from beanstrain import outputs
    from beanstrain.errors import RunError

    def refuse(run_dir):
        raise OSError(28, "No space left on device")

    def broken(*args):
        raise RunError("the pictures could not be drawn")

    monkeypatch.setattr(report, "write_run_page", refuse)
    monkeypatch.setattr(outputs, "draw_pictures", broken)
    result = invoke("fit", "beans7-neuron", "--epochs", 3, "--out", tmp_path, "--quiet", exit_code=1)
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Error: the pictures could not be drawn")
    assert config_of(only_run(tmp_path))["state"] == "failed"
