"""`beanstrain export` and `show`: each export loaded by its own runtime and compared with the run's model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beanstrain.cli import cli
from beanstrain.data import load_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small finished run of a described network (spiral-features: a Features layer before its Dense ones)."""
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("export")
    done = CliRunner().invoke(cli, ["fit", "spiral-features", "--epochs", "2", "--out", str(out), "--quiet",
                                    "--animation", "none", "--json"])
    assert done.exit_code == 0, done.output
    return Path(json.loads(done.stdout)["run_dir"])


def inputs_and_model(run_dir):
    from beanstrain.evaluation import load_run_model
    from beanstrain.files import read_json

    config = read_json(run_dir / "config.json")
    recipe = config["recipe"]
    dataset = load_dataset(recipe["dataset"], recipe["samples"], recipe["noise"], recipe["seed"])
    model = load_run_model(run_dir, config)
    x = np.asarray(dataset.x_test, np.float32)
    return x, np.asarray(model(x, training=False))


def load_and_run(format_name: str, path: Path, x: np.ndarray) -> np.ndarray:
    """The export, loaded by its own runtime alone."""
    if format_name == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: x})[0]
    import tensorflow as tf

    if format_name == "saved_model":
        loaded = tf.saved_model.load(str(path))
        return loaded.serve(tf.constant(x)).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(path))
    entry, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(result["index"])


@pytest.mark.parametrize(("format_name", "name"), [("onnx", "model.onnx"), ("tflite", "model.tflite"),
                                                   ("saved_model", "saved_model")])
def test_each_export_predicts_what_the_run_predicts(runner, run_dir, format_name, name):
    done = runner.invoke(cli, ["export", str(run_dir), "--format", format_name, "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    path = run_dir / "export" / name
    assert result["path"] == str(path) and result["max_difference"] <= 1e-4 and result["bytes"] > 0
    x, expected = inputs_and_model(run_dir)
    np.testing.assert_allclose(load_and_run(format_name, path, x), expected, atol=1e-5)
    assert not [leftover for leftover in path.parent.iterdir() if leftover.name.startswith(".")]


def test_export_to_a_path_of_your_own(runner, run_dir, tmp_path):
    done = runner.invoke(cli, ["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "mine.onnx")])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"onnx: {tmp_path / 'mine.onnx'} (") and "checked with onnxruntime" in done.output


def test_refusals_are_one_line(runner, run_dir, tmp_path, monkeypatch):
    from beanstrain import export

    cases = [(["export", str(tmp_path), "--format", "onnx"], "is not a run folder"),
             (["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx")],
              "does not exist")]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps({"recipe": {"name": "x"}, "state": "interrupted"}))
    cases.append((["export", str(unfinished), "--format", "tflite"], "is interrupted, not finished"))
    for arguments, message in cases:
        done = runner.invoke(cli, arguments)
        assert done.exit_code in (1, 2) and message in done.output, done.output
        assert len(done.output.strip().splitlines()) == 1
    real = export.importlib.util.find_spec
    monkeypatch.setattr(export.importlib.util, "find_spec", lambda name: None if name == "tf2onnx" else real(name))
    done = runner.invoke(cli, ["export", str(run_dir), "--format", "onnx"])
    assert done.exit_code == 2
    assert 'needs tf2onnx, which is not installed: pip install "beanstrain[export-onnx]"' in done.output


def test_show_names_layers_parameters_recipe_and_figures(runner, run_dir, tmp_path):
    from beanstrain.evaluation import load_run_model
    from beanstrain.files import read_json

    done = runner.invoke(cli, ["show", str(run_dir), "--json"])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    model = load_run_model(run_dir, read_json(run_dir / "config.json"))
    assert [layer["name"] for layer in shown["layers"]] == [layer.name for layer in model.layers]
    assert sum(layer["parameters"] for layer in shown["layers"]) == shown["parameters"] == model.count_params()
    assert shown["layers"][-1]["output_shape"] == [None, 1]
    assert shown["metrics"] == read_json(run_dir / "metrics.json") and shown["recipe"]["name"] == "spiral-features"
    text = runner.invoke(cli, ["show", str(run_dir), "--plot", str(tmp_path / "model.png")]).output
    assert "Trainable params:" in text and "final figures:" in text and "optimizer           adam" in text
    picture = (tmp_path / "model.png").read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 5000


def test_show_plot_without_graphviz_says_how_to_get_it(runner, run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    done = runner.invoke(cli, ["show", str(run_dir), "--plot", str(tmp_path / "model.png")])
    assert done.exit_code == 2 and "needs Graphviz's dot program" in done.output and "apt-get install graphviz" in \
        done.output
