"""Weights on levels: the course's mappings, the step rule, clamping, and checkpoints that carry the levels.

The oracle is SPEC's formulas, written out again here with `math.exp`: for
an integer level k, a weight must equal the mapping of k/100 in float32.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from mnist_files import blob_splits, write_npz
from run_folders import config_of, only_run

from beanstrain.checkpoints import capture, read_checkpoint, restore, write_checkpoint
from beanstrain.engines import EngineState, TrainData
from beanstrain.engines.build import make_trainer
from beanstrain.engines.levels import LevelSettings, grid, initial_levels, step
from beanstrain.errors import RunError
from beanstrain.models import build_model
from beanstrain.objectives import make_accuracy_metric, make_loss, make_optimizer

GMIN, GMAX, A = -1.0, 1.0, 0.8
COURSE_CURVES = {
    "linear": lambda p, a: (GMAX - GMIN) * p + GMIN,
    "potentiation": lambda p, a: (GMAX - GMIN) * (1 - math.exp(p / a)) / (1 - math.exp(1 / a)) + GMIN,
    "depression": lambda p, a: (GMAX - GMIN) * (1 - math.exp((1 - p) / a)) / (1 - math.exp(1 / a)) + GMIN,
}
# The curve a weight that rose, and one that fell, takes its value from.
CURVES_OF = {"linear": ("linear", "linear"), "ltp": ("potentiation", "potentiation"),
             "ltp-ltd": ("potentiation", "depression")}
# The course's A kills every relu unit of these small blob images after one epoch (the potentiation
# curve's weights average -0.2); a gentler curve keeps weights moving for the tests' few epochs.
GENTLE = 3.0


def course_grid(curve: str, nonlinearity: float = A) -> np.ndarray:
    return np.array([np.float32(COURSE_CURVES[curve](k / 100, nonlinearity)) for k in range(101)], dtype=np.float32)


@pytest.mark.parametrize("curve", sorted(COURSE_CURVES))
def test_every_level_is_the_course_formula_in_float32(curve):
    np.testing.assert_array_equal(grid(curve, 100, A), course_grid(curve))
    assert grid(curve, 100, A)[[0, 100]].tolist() in ([-1.0, 1.0], [1.0, -1.0])


def test_a_step_follows_the_sign_of_the_change_and_stops_at_the_ends():
    levels = np.array([0, 0, 100, 100, 50, 50, 50])
    before = np.zeros(7, "float32")
    after = np.array([-0.1, 0.1, 0.1, -0.1, 1e-7, -1e-7, 0.0], "float32")
    assert step(levels, before, after, 100).tolist() == [0, 1, 100, 99, 51, 49, 50]


def test_initial_levels_are_the_courses_draw_from_the_seed():
    first, = initial_levels([(784, 128)], 100, seed=0)
    np.testing.assert_array_equal(first, initial_levels([(784, 128)], 100, seed=0)[0])
    assert (first != initial_levels([(784, 128)], 100, seed=1)[0]).mean() > 0.9
    counts = np.bincount(first.ravel(), minlength=101)
    assert len(counts) == 101 and counts.min() > 0
    # int(100 * U(0,1) + 0.5): every level equally likely, but the two ends half as likely
    assert counts[[0, 100]].mean() / counts[1:100].mean() == pytest.approx(0.5, abs=0.1)
    assert counts[1:100].std() / counts[1:100].mean() < 0.1


@pytest.fixture(scope="module")
def blobs():
    x_train, y_train, x_test, y_test = blob_splits(train=200, test=50)
    scale = lambda images: images[..., None].astype("float32") / 255  # noqa: E731
    return TrainData(scale(x_train), y_train.astype("float32"), scale(x_test), y_test.astype("float32"))


def levels_trainer(data, mapping, engine="fit", seed=3, level_seed=3):
    from beanstrain.devices import load_keras

    load_keras().utils.set_random_seed(seed)
    model = build_model("dense128-nobias", (28, 28, 1), "multiclass", 10)
    loss = "sparse_categorical_crossentropy"
    return make_trainer(engine, model, make_loss(loss), make_optimizer("sgd", None), data, 32, seed, "sparse",
                        make_accuracy_metric("multiclass", loss),
                        levels=LevelSettings(100, mapping, GENTLE, level_seed))


@pytest.mark.parametrize("mapping, engine", [("linear", "compiled"), ("ltp", "fit"), ("ltp-ltd", "fit")])
def test_trained_weights_sit_on_their_levels_and_move_by_the_sign_of_their_change(blobs, mapping, engine):
    trainer = levels_trainer(blobs, mapping, engine)
    start = course_grid("linear")
    for weights, levels in zip(trainer.model.get_weights(), trainer.levels, strict=True):
        np.testing.assert_array_equal(weights, start[levels])  # the course's start: linear values
    up, down = (course_grid(curve, GENTLE) for curve in CURVES_OF[mapping])
    steps = []
    step_levels = trainer.step_levels

    def watched(before):
        """Each epoch's weights before it, after the optimizer, after the step, and the levels around the step."""
        trained, old_levels = trainer.model.get_weights(), [levels.copy() for levels in trainer.levels]
        step_levels(before)
        steps.append((before, trained, trainer.model.get_weights(), old_levels, [*trainer.levels]))

    trainer.step_levels = watched
    history = trainer.run(0, 3)
    assert trainer.columns == ["loss", "accuracy", "test_loss", "test_accuracy"] and history.epochs_done == 3
    counts = dict(rose=0, fell=0, clamped=0)
    for before, trained, stepped, old_levels, new_levels in steps:
        for old_weight, new_weight, weights, old, new in zip(before, trained, stepped, old_levels, new_levels,
                                                             strict=True):
            rose, fell = new_weight > old_weight, new_weight < old_weight
            np.testing.assert_array_equal(new[rose], np.minimum(old[rose] + 1, 100))
            np.testing.assert_array_equal(new[fell], np.maximum(old[fell] - 1, 0))
            np.testing.assert_array_equal(new[~rose & ~fell], old[~rose & ~fell])
            assert weights.dtype == np.float32
            np.testing.assert_array_equal(weights[rose], up[new[rose]])
            np.testing.assert_array_equal(weights[fell], down[new[fell]])
            assert ((weights == up[new]) | (weights == down[new])).all()  # every weight on its mapping's levels
            counts["rose"] += int(rose.sum())
            counts["fell"] += int(fell.sum())
            counts["clamped"] += int((rose & (old == 100)).sum() + (fell & (old == 0)).sum())
    assert min(counts.values()) > 0, counts  # each rule was exercised, clamping at the ends too
    for (*_, levels_after), (*_, levels_before, _) in zip(steps, steps[1:]):
        for after, before in zip(levels_after, levels_before):
            np.testing.assert_array_equal(after, before)
    # The held-out figures are measured on the stepped weights.
    outputs = trainer.model(blobs.held_out_x, training=False).numpy()
    assert history.rows[-1][3] == pytest.approx(np.mean(outputs.argmax(axis=1) == blobs.held_out_y))


def test_a_checkpoint_carries_the_levels_and_a_resumed_run_ends_on_the_same_levels(blobs, tmp_path):
    straight = levels_trainer(blobs, "ltp-ltd")
    straight.run(0, 3)
    stopped = levels_trainer(blobs, "ltp-ltd")
    history = stopped.run(0, 2)
    write_checkpoint(tmp_path, capture(stopped, 2, history.rows, 1.0), seed=3)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["extra"] == ["levels_0", "levels_1"]
    resumed = levels_trainer(blobs, "ltp-ltd", level_seed=9)  # other starting levels: all must come from the file
    restore(resumed, read_checkpoint(tmp_path))
    resumed.run(2, 3)
    for mine, theirs in zip(resumed.levels, straight.levels, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(resumed.model.get_weights(), straight.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    state = resumed.get_state()
    with pytest.raises(RunError, match="holds no weight levels"):
        resumed.set_state(EngineState(state.weights, state.optimizer_variables))


def test_interrupted_and_resumed_through_the_cli_equals_a_straight_run(invoke, fit_json, tmp_path, monkeypatch,
                                                                        interrupt_at):
    from test_resume import assert_same_model

    data = write_npz(tmp_path / "blobs.npz", blob_splits(train=200, test=50))
    args = ["mnist-levels-linear", "--epochs", 4, "--engine", "fit", "--data", data]
    interrupt_at(2)
    invoke("fit", *args, "--out", tmp_path / "stopped", exit_code=130)
    monkeypatch.undo()
    run_dir = only_run(tmp_path / "stopped")
    assert config_of(run_dir)["checkpoint_epoch"] == 2
    invoke("fit", "--resume", run_dir, "--quiet")
    assert_same_model(run_dir, fit_json(*args)["run_dir"])
