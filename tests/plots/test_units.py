"""The pictures drawn from a network and its trace: which a toy recipe gets, and the numbers behind them."""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import load_dataset
from beanstrain.devices import load_keras
from beanstrain.models import build_model
from beanstrain.objectives import encode_targets, make_loss
from beanstrain.plots import PICTURES, RunOutputs, draw_run_pictures, pyplot
from beanstrain.plots.replay import dense_layers, forward
from beanstrain.plots.units import loss_over_weights
from beanstrain.recipes import list_recipes
from beanstrain.trace import Trace, weight_names

PNG, GIF = b"\x89PNG\r\n\x1a\n", b"GIF89a"


def toy_recipes() -> list[str]:
    from beanstrain.data import is_image_dataset

    return sorted(name for name, recipe in list_recipes().items() if not is_image_dataset(recipe.dataset))


def traced_run(dataset, model, loss_name, epochs=(0, 1, 4)) -> RunOutputs:
    """A run whose trace moves the initial weights a little at each snapshot (no training needed)."""
    start = model.get_weights()
    trace = Trace(weight_names(model))
    trace.take({epoch: [weight + 0.3 * epoch for weight in start] for epoch in epochs})
    model.set_weights(trace.snapshots[-1])
    rows = [[0.5 - 0.01 * epoch, 0.5] for epoch in range(1, epochs[-1] + 1)]
    return RunOutputs(dataset, lambda x: model(x).numpy(), None, ["loss", "accuracy"], rows, model, trace,
                      loss_name)


@pytest.mark.parametrize("recipe_name", toy_recipes())
def test_every_toy_recipe_gets_the_pictures_of_its_journey(tmp_path, recipe_name):
    from beanstrain.recipes import recipe_loss, resolve_recipe

    recipe = resolve_recipe(recipe_name, {})
    dataset = load_dataset(recipe.dataset, samples=30, noise=0.0, seed=0)
    model = build_model(recipe.model, dataset.input_shape, dataset.task, dataset.num_classes)
    features, hidden = dataset.x_train.shape[1], len(model.layers) > 1
    drawable = features == 1 or (features == 2 and dataset.task != "regression")
    should = {"training.gif": drawable, "neurons.png": hidden and features <= 2, "weights.png": True,
              "cost.png": recipe.model in ("neuron", "slope") and features == 1}
    run = traced_run(dataset, model, recipe_loss(recipe))
    applying = {picture.file: picture for picture in PICTURES["toy"] if picture.applies(run)}
    assert {name for name in should if name in applying} == {name for name, wanted in should.items() if wanted}
    for name in should:  # only these are drawn here: the others are other tests' business
        if name in applying:
            assert applying[name].draw(run, tmp_path / name) == name
            assert (tmp_path / name).read_bytes()[:8].startswith(GIF if name.endswith(".gif") else PNG)


def test_animation_none_draws_no_animation(tmp_path):
    dataset = load_dataset("beans3", samples=20, noise=0.0, seed=0)
    model = build_model("hidden2", dataset.input_shape, dataset.task, dataset.num_classes)
    run = traced_run(dataset, model, "mse")
    drawn = draw_run_pictures(tmp_path, RunOutputs(**{**run.__dict__, "animation": "none"}))
    assert "training.gif" not in drawn and "weights.png" in drawn


def test_the_replay_is_the_network(tmp_path):
    """The NumPy forward pass behind the animation and neurons.png gives the network's own outputs."""
    model = build_model("deep8", (2,), "binary", 2)
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    outputs = forward(dense_layers(model), model.get_weights(), x)
    assert [values.shape for values in outputs] == [(50, 8), (50, 8), (50, 8), (50, 1)]
    np.testing.assert_allclose(outputs[-1], model(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False], ids=["w-and-b", "only-w"])
def test_the_cost_picture_shows_the_runs_own_loss(tmp_path, bias):
    """The loss over w (and b) is Keras's loss of the network with those weights, on the training data."""
    keras = load_keras()
    dataset = load_dataset("beans1", samples=30, noise=0.0, seed=0)
    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(units=1, use_bias=bias)])
    run = traced_run(dataset, model, "mse")
    assert "cost.png" in draw_run_pictures(tmp_path, run)
    y = encode_targets(dataset.y_train, dataset.task, "mse", dataset.num_classes)
    for w, b in [(0.3, -0.2), (1.2, 0.05)]:
        model.set_weights([np.array([[w]], np.float32)] + [np.array([b], np.float32)] * bias)
        expected = float(make_loss("mse")(y, model(dataset.x_train)))
        found = loss_over_weights(model, dataset.x_train, y, "mse", np.array([w]), np.array([b]) if bias else None)
        assert found[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("w", [-3.0, 20.0])
def test_no_label_of_a_1d_frame_is_cut_off(w):
    """Wide tick labels (a curve below zero, or far above the beans) still leave the axis labels in the frame."""
    from beanstrain.plots.animate import frames

    dataset = load_dataset("beans1", samples=30, noise=0.0, seed=0)
    model = build_model("slope", dataset.input_shape, dataset.task, dataset.num_classes)
    model.set_weights([np.full((1, 1), w, np.float32)])
    run = traced_run(dataset, model, "mse")
    for picture in list(frames(run))[::2]:
        grey = np.asarray(picture.convert("L")).astype(int)
        edges = np.concatenate([grey[:, :2].ravel(), grey[:, -2:].ravel(), grey[-2:].ravel()])
        assert edges.min() == 255, "something is drawn across the frame's edge"


def test_the_output_panel_is_a_probability_as_boundary_png_draws_it(monkeypatch, tmp_path):
    """A sigmoid output: fixed 0..1 RdBu colours, the 0.5 line, and the class colours of the other pictures."""
    from matplotlib.colors import to_rgba

    from beanstrain.plots import units as inside
    from beanstrain.plots.replay import Replay
    from beanstrain.plots.toy import CLASS_COLOURS

    dataset = load_dataset("beans4", samples=40, noise=0.0, seed=0)
    model = build_model("hidden2", dataset.input_shape, dataset.task, dataset.num_classes)
    model.set_weights([np.array([[4.0, -3.0], [2.0, 1.0]]), np.array([-4.0, 1.0]), np.array([[3.0], [-2.0]]),
                       np.array([-3.0])])  # with the trace's last shift, P runs from about 0.1 to 0.9
    drawn = []
    monkeypatch.setattr(inside, "save_figure", lambda figure, path: drawn.append(figure) or path.name)
    inside.plot_neurons(Replay.of(traced_run(dataset, model, "mse")), dataset, tmp_path / "neurons.png")
    output = drawn[0].axes[[axes.get_title() for axes in drawn[0].axes].index("unit 1", 2)]
    (image,) = output.images
    assert image.get_clim() == (0.0, 1.0) and image.get_cmap().name.startswith("RdBu_r")
    assert any(type(artist).__name__.endswith("ContourSet") for artist in output.get_children())
    labels = dataset.y_train.reshape(-1).round().astype(int)
    colours = output.collections[-1].get_facecolors()
    np.testing.assert_allclose(colours[:, :3], [to_rgba(CLASS_COLOURS[label])[:3] for label in labels])
    pyplot().close(drawn[0])


@pytest.mark.parametrize("model_name, title", [("slope", "output: 1 weight"),
                                               ("neuron", "output: 1 weight, 1 bias (dashed)"),
                                               ("hidden2", "hidden layer 1: 2 weights, 2 biases (dashed)")])
def test_weight_panels_count_weights_and_biases_apart(monkeypatch, tmp_path, model_name, title):
    from beanstrain.plots import units as inside

    dataset = load_dataset("beans1", samples=20, noise=0.0, seed=0)
    model = build_model(model_name, dataset.input_shape, dataset.task, dataset.num_classes)
    drawn = []
    monkeypatch.setattr(inside, "save_figure", lambda figure, path: drawn.append(figure) or path.name)
    inside.plot_weights(traced_run(dataset, model, "mse").trace, "beans1", tmp_path / "weights.png")
    assert drawn[0].axes[0].get_title() == title
    pyplot().close(drawn[0])


def test_the_animation_paints_smooth_boundaries_not_the_grids_blocks():
    """A diagonal ramp of P: the edge between two colour steps moves along it row by row, without stairs."""
    from beanstrain.plots.animate import _ProbabilityImage

    figure, axes = pyplot().subplots(figsize=(5, 4), dpi=80)
    figure.canvas.draw()
    pixels = np.zeros((*reversed(figure.canvas.get_width_height()), 4), np.uint8)
    points = 100
    across, up = np.meshgrid(np.linspace(0, 1, points), np.linspace(0, 1, points))
    image = _ProbabilityImage(axes, across.shape, pixels.shape[0])
    image.paint(pixels, ((across + up) / 2).reshape(-1))
    pyplot().close(figure)
    painted = pixels[image.rows, image.columns, :3].astype(int)
    red_ish = painted[:, :, 0] > painted[:, :, 2]  # P above 0.5 is drawn reddish, below it bluish
    edges = red_ish.argmax(axis=1)[(red_ish.any(axis=1)) & (~red_ish[:, 0])]
    assert len(edges) > 100 and np.abs(np.diff(edges)).max() <= 2
