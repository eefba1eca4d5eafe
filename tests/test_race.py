"""`compare --animate`: several runs raced on one cost picture, or their boundaries side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from beanstrain.cli import cli
from beanstrain.compare import load_runs
from beanstrain.plots.race import cost_frames, frame_steps, racers_of, shown_index

RULES = ["beans1-sgd", "beans1-minibatch", "beans1-batch"]  # batch 1, 10 and the whole set


@pytest.fixture(scope="module")
def race_out(tmp_path_factory):
    """Three of the course's rules, trained briefly, and a run of another network on other data."""
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("race")
    runner = CliRunner()
    for recipe, epochs in (("beans1-sgd", 1), ("beans1-minibatch", 3), ("beans1-batch", 30), ("beans4-hidden2", 3)):
        done = runner.invoke(cli, ["fit", recipe, "--epochs", str(epochs), "--out", str(out), "--quiet",
                                   "--animation", "none"])
        assert done.exit_code == 0, done.output
    return out


def test_each_frame_draws_every_run_where_its_trace_was_at_that_step(race_out):
    compared = load_runs(RULES, race_out)
    racers = racers_of(compared)
    drawn = []
    pictures = list(cost_frames(racers, compared[0].config, drawn))
    last = max(int(racer.steps[-1]) for racer in racers)
    assert [step for step, _ in drawn] == frame_steps(last).tolist() and len(pictures) == len(drawn)
    for run, racer in zip(compared, racers):
        with np.load(run.run_dir / "trace.npz") as trace:  # the oracle: the run folder's own trace
            steps, weights = trace["steps"], trace["weight_0"].reshape(-1)
        assert np.array_equal(racer.steps, steps)
        for step, points in drawn:
            index = np.searchsorted(steps, step, side="right") - 1
            assert points[racers.index(racer)][0] == pytest.approx(float(weights[index]))
            assert steps[index] <= step and shown_index(racer, step) == index
    # At the end every run stands at its trained weight, its loss there on the curve below it.
    final = drawn[-1][1]
    assert [point[0] for point in final] == pytest.approx([float(np.load(run.run_dir / "trace.npz")["weight_0"]
                                                                .reshape(-1)[-1]) for run in compared])
    assert all(0 <= point[1] < 0.1 for point in final)  # the three rules all reach the bottom of the bowl
    assert np.asarray(pictures[0]).shape == np.asarray(pictures[-1]).shape
    assert not np.array_equal(np.asarray(pictures[0]), np.asarray(pictures[-1]))


def test_command_writes_a_gif_labelled_by_what_differs(runner, race_out, tmp_path):
    gif = tmp_path / "batches.gif"
    done = runner.invoke(cli, ["compare", *RULES, "--out", str(race_out), "--animate", str(gif)])
    assert done.exit_code == 0, done.output
    assert f"animation: {gif} (one cost picture" in done.output
    with Image.open(gif) as animation:
        frames = animation.n_frames
    last = max(int(racer.steps[-1]) for racer in racers_of(load_runs(RULES, race_out), load_model=False))
    assert frames == len(frame_steps(last))
    labels = [racer.label for racer in racers_of(load_runs(RULES, race_out), load_model=False)]
    assert labels[0].startswith("beans1-sgd: ") and "batch 1" in labels[0] and "batch all 500" in labels[2]


def test_boundaries_race_side_by_side(runner, race_out, tmp_path):
    first = runner.invoke(cli, ["fit", "beans4-hidden2", "--epochs", "3", "--learning-rate", "2", "--out",
                                str(race_out), "--quiet", "--animation", "none", "--json"])
    second = json.loads(first.stdout)["run_dir"]
    older = sorted((race_out / "beans4-hidden2").iterdir())[0]
    done = runner.invoke(cli, ["compare", str(older), second, "--animate", str(tmp_path / "b.gif")])
    assert done.exit_code == 0, done.output
    assert "boundaries side by side" in done.output and (tmp_path / "b.gif").stat().st_size > 0


@pytest.mark.parametrize(("arguments", "message"), [
    (["beans1-sgd", "beans4-hidden2", "--animate", "x.gif"], "their data set differs"),
    (["beans1-sgd", "--animate", "x.gif"], "--animate races two runs or more"),
    (["beans1-sgd", "beans1-batch", "--animate", "x.png"], "give a file ending in .gif or .mp4"),
])
def test_refusals_are_one_line(runner, race_out, tmp_path, arguments, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(cli, ["compare", *arguments, "--out", str(race_out)])
    assert done.exit_code == 2 and message in done.output, done.output
    assert len(done.output.strip().splitlines()) == 1


def test_mp4_without_ffmpeg_is_refused_before_anything_is_read(runner, race_out, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    done = runner.invoke(cli, ["compare", *RULES, "--out", str(race_out), "--animate", str(tmp_path / "r.mp4")])
    assert done.exit_code == 2 and "needs ffmpeg, which is not on PATH" in done.output, done.output
