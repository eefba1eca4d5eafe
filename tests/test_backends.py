"""Every Keras backend: the same run on TensorFlow, JAX and PyTorch, with TensorFlow's weights as the oracle.

A run on JAX or PyTorch happens in a process of its own, as a student's would (Keras picks its backend
once per process), with `import tensorflow` made to fail there (tests/hooked_beanstrain.py): such a
run must never need it.  A backend that is not installed is skipped with the pip line that brings it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beanstrain import backends
from beanstrain.data import FEATURE_VECTORS
from beanstrain.models import NETWORKS, fitting_datasets
from beanstrain.recipes import resolve_recipe
from beanstrain.training import fit_run

HOOKED = Path(__file__).parent / "hooked_beanstrain.py"
OTHER_BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(
    importlib.util.find_spec(name) is None, reason=f'needs pip install "beanstrain[{name}]"'))
    for name in ("jax", "torch")]
# Final weights after the same epochs agree this closely across backends (float32 sums in other orders).
WEIGHT_TOLERANCE = dict(rtol=1e-4, atol=1e-5)
FEATURE_NETWORKS = sorted(name for name, network in NETWORKS.items() if network.takes == FEATURE_VECTORS)


def beanstrain(*args, backend: str | None = None, check: bool = True, **hooks) -> subprocess.CompletedProcess:
    """`beanstrain ARGS --backend BACKEND` in a new process where TensorFlow cannot be imported."""
    environment = {**os.environ, "BEANSTRAIN_TEST_NO_TENSORFLOW": "1",
                   **{name: str(value) for name, value in hooks.items()}}
    environment.pop("KERAS_BACKEND", None)
    command = [sys.executable, str(HOOKED), *map(str, args)] + (["--backend", backend] if backend else [])
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights_of(run_dir) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(Path(run_dir) / "model.keras", safe_mode=True).get_weights()


def network_recipe(name: str, epochs: int = 20):
    return resolve_recipe(None, {"dataset": fitting_datasets(name)[0], "model": name, "epochs": epochs,
                                 "engine": "fit"})


# The weights each feature-vector network ends with after 20 epochs of `fit`, on each backend, trained in one
# process per backend (the loop below runs there).
TRAIN_EVERY_NETWORK = r"""
import json, sys
sys.modules["tensorflow"] = None
from beanstrain.backends import use_backend
use_backend(sys.argv[1])
from beanstrain.models import NETWORKS, fitting_datasets
from beanstrain.recipes import resolve_recipe
from beanstrain.training import fit_run
runs = {}
for name in sys.argv[3:]:
    recipe = resolve_recipe(None, {"dataset": fitting_datasets(name)[0], "model": name, "epochs": 20, "engine": "fit"})
    runs[name] = fit_run(recipe, out=sys.argv[2], quiet=True, animation="none")["run_dir"]
print(json.dumps(runs))
"""


@pytest.fixture(scope="module")
def tensorflow_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("tensorflow")
    return {name: fit_run(network_recipe(name), out=out, quiet=True, animation="none")["run_dir"]
            for name in FEATURE_NETWORKS}


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_every_feature_vector_network_ends_with_tensorflows_weights(backend, tensorflow_runs, tmp_path):
    """The same seed gives the same initial weights and the same batches on every backend, so the same
    training ends in the same weights (within float32 noise): registry-driven, every feature-vector network."""
    done = subprocess.run([sys.executable, "-c", TRAIN_EVERY_NETWORK, backend, str(tmp_path), *FEATURE_NETWORKS],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, run_dir in json.loads(done.stdout.splitlines()[-1]).items():
        config = json.loads((Path(run_dir) / "config.json").read_text())
        assert config["backend"] == backend and "tensorflow" not in config["versions"]
        for ours, oracle in zip(weights_of(run_dir), weights_of(tensorflow_runs[name]), strict=True):
            np.testing.assert_allclose(ours, oracle, **WEIGHT_TOLERANCE, err_msg=f"{name} on {backend}")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_run_never_imports_tensorflow_and_is_evaluated_on_tensorflow(backend, invoke, tmp_path):
    """The whole run (pictures, page) without TensorFlow; its model.keras then evaluated on TensorFlow gives
    the metrics the run recorded, and answers new points as the backend that trained it does."""
    done = beanstrain("fit", "beans4-hidden2", "--epochs", "30", "--out", tmp_path, "--json", backend=backend)
    summary = json.loads(done.stdout)
    run_dir = Path(summary["run_dir"])
    assert next(line for line in done.stderr.splitlines() if line.startswith("device:")).startswith("device: cpu")
    assert {"model.keras", "report.html", "training.gif", "boundary.png"} <= {path.name for path in run_dir.iterdir()}
    # TensorBoard's files too, written without TensorFlow: one event file per TensorBoard run.
    assert {path.parent.name for path in (run_dir / "tb").glob("*/events.out.tfevents.*")} == {"train", "test",
                                                                                               "weights"}
    evaluated = json.loads(invoke("eval", run_dir, "--json").stdout)
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert evaluated["metrics"] == pytest.approx(recorded, rel=1e-5)
    assert_same_answers(invoke, run_dir, backend)


def assert_same_answers(invoke, run_dir, backend: str) -> None:
    """`predict` of points on TensorFlow (this process) and on `backend` (its own process) agree."""
    points = ["1.0,0.3", "0.2,1.7", "1.5,0.1"]
    here = json.loads(invoke("predict", "--run", run_dir, *points, "--json").stdout)
    there = json.loads(beanstrain("predict", "--run", run_dir, *points, "--json", backend=backend).stdout)
    assert [answer["predicted"] for answer in here] == [answer["predicted"] for answer in there]
    np.testing.assert_allclose([answer["probabilities"] for answer in here],
                               [answer["probabilities"] for answer in there], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_tensorflow_run_is_evaluated_and_predicted_with_on_another_backend(backend, fit_json, invoke):
    summary = fit_json("beans4-hidden2", "--epochs", "10")
    evaluated = json.loads(beanstrain("eval", summary["run_dir"], "--json", backend=backend).stdout)
    assert evaluated["metrics"] == pytest.approx(summary["metrics"]["test"], rel=1e-5)
    assert_same_answers(invoke, summary["run_dir"], backend)


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_a_run_killed_on_a_backend_resumes_there_to_the_uninterrupted_weights(backend, invoke, tmp_path):
    whole = json.loads(beanstrain("fit", "beans4-hidden2", "--epochs", "40", "--out", tmp_path / "whole", "--json",
                                  backend=backend).stdout)
    killed = beanstrain("fit", "beans4-hidden2", "--epochs", "40", "--out", tmp_path / "killed", "--quiet",
                        backend=backend, check=False, BEANSTRAIN_TEST_KILL_AFTER=20)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = next((tmp_path / "killed" / "beans4-hidden2").iterdir())
    other = "torch" if backend == "jax" else "jax"
    refused = invoke("fit", "--resume", run_dir, "--backend", other, exit_code=2)
    assert f"the run trains on the {backend} backend and resumes on it only" in refused.output
    beanstrain("fit", "--resume", run_dir, "--quiet")  # no --backend: the recorded one
    for ours, oracle in zip(weights_of(run_dir), weights_of(whole["run_dir"]), strict=True):
        np.testing.assert_allclose(ours, oracle, rtol=0, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason='needs pip install "beanstrain[jax]"')
def test_jax_trains_on_two_logical_devices_as_on_one(tmp_path):
    one = json.loads(beanstrain("fit", "beans4-hidden2", "--epochs", "20", "--out", tmp_path, "--json",
                                backend="jax").stdout)
    two = json.loads(beanstrain("fit", "beans4-hidden2", "--epochs", "20", "--out", tmp_path, "--json",
                                "--devices", "2", backend="jax").stdout)
    device = json.loads((Path(two["run_dir"]) / "config.json").read_text())["device"]
    assert device["strategy"] == "DataParallel" and device["devices"] == ["cpu:0", "cpu:1"]
    for ours, oracle in zip(weights_of(two["run_dir"]), weights_of(one["run_dir"]), strict=True):
        np.testing.assert_allclose(ours, oracle, **WEIGHT_TOLERANCE)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason='needs pip install "beanstrain[torch]"')
@pytest.mark.parametrize("args, message", [
    (["--devices", "2"], "--devices 2: the torch backend trains on one device"),
    (["--engine", "compiled"], "--engine compiled runs on the tensorflow or jax backend; on torch use --engine fit"),
])
def test_torch_refuses_what_it_cannot_do_in_one_line(args, message, tmp_path):
    done = beanstrain("fit", "beans4-hidden2", "--out", tmp_path, *args, backend="torch", check=False)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_missing_backend_names_the_extra_that_installs_it(invoke, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "jax" else real(name, *rest))
    result = invoke("fit", "beans4-hidden2", "--out", tmp_path, "--backend", "jax", exit_code=2)
    assert 'jax is not installed; pip install "beanstrain[jax]"' in result.output


def test_a_process_already_on_tensorflow_refuses_another_backend(invoke, tmp_path):
    result = invoke("eval", tmp_path, "--backend", "torch", exit_code=2)
    assert "Keras already runs on tensorflow in this process" in result.output


def test_keras_backend_is_honoured_without_the_flag(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backends.chosen_backend(None) == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(backends.UsageError, match="unknown backend 'theano'"):
        backends.chosen_backend(None)


def test_mixed_precision_computes_in_bfloat16_and_keeps_a_float32_output(fit_json, tmp_path):
    summary = fit_json("beans4-hidden2", "--epochs", "5", "--precision", "mixed_bfloat16")
    import keras

    model = keras.saving.load_model(Path(summary["run_dir"]) / "model.keras", safe_mode=True)
    hidden, output = model.layers
    assert (hidden.compute_dtype, hidden.variable_dtype, output.compute_dtype) == ("bfloat16", "float32", "float32")
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["recipe"]["precision"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the process's own policy is left as it was


def test_the_numpy_engine_refuses_mixed_precision(invoke, tmp_path):
    result = invoke("fit", "beans1-sgd", "--precision", "mixed_bfloat16", "--out", tmp_path, exit_code=2)
    assert "the numpy engine computes in float32" in result.output


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason='needs pip install "beanstrain[jax]"')
def test_the_jax_batch_order_is_numpys():
    from beanstrain.engines.jax_compiled import epoch_permutation_jax
    from beanstrain.engines.order import epoch_permutation

    for seed, epoch, size in [(0, 0, 8), (3, 7, 100), (2**31 - 1, 4999, 1000), (12345, 123456, 60000)]:
        assert np.array_equal(np.asarray(epoch_permutation_jax(seed, epoch, size)),
                              epoch_permutation(seed, epoch, size))


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason='needs pip install "beanstrain[jax]"')
@pytest.mark.parametrize("args", [
    ["beans4-hidden2", "--epochs", "60", "--batch-size", "7"],  # a partial last batch every epoch
    ["spiral-deep8", "--epochs", "30", "--samples", "3000", "--optimizer", "adam", "--learning-rate", "0.01"],
])
def test_the_jax_compiled_loop_is_fit_on_jax(args, tmp_path):
    """One jitted loop over the whole run reaches the weights and the per-epoch metrics of Keras `fit` fed the
    same batches (3,000 held-out points: measured in slices and a remainder)."""
    runs = {engine: json.loads(beanstrain("fit", *args, "--engine", engine, "--out", tmp_path / engine, "--json",
                                          "--animation", "none", backend="jax").stdout)
            for engine in ("compiled", "fit")}
    for ours, oracle in zip(weights_of(runs["compiled"]["run_dir"]), weights_of(runs["fit"]["run_dir"]), strict=True):
        np.testing.assert_allclose(ours, oracle, **WEIGHT_TOLERANCE)
    histories = [np.loadtxt(Path(runs[engine]["run_dir"]) / "history.csv", delimiter=",", skiprows=1)
                 for engine in ("compiled", "fit")]
    np.testing.assert_allclose(*histories, rtol=1e-4, atol=1e-6)
    trace = np.load(Path(runs["compiled"]["run_dir"]) / "trace.npz")
    assert len(trace["epochs"]) > 10  # the loop's snapshots reached the trace
