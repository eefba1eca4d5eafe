"""What `fit` refuses before any data is read, and how quiet TensorFlow's import is: the checks
made from the registries, not from the data."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from beanstrain import datasets, images, pipeline
from beanstrain.backend import shown_notices
from beanstrain.datasets import FEATURE_VECTORS, TOY_DATASETS, list_datasets
from beanstrain.models import NETWORKS
from beanstrain.recipes import resolve_recipe
from mnist_files import isolate_image_data


@pytest.fixture
def no_data_read(tmp_path, monkeypatch):
    """Every way to data (drawing, loading, finding files, downloading) raises if anything tries it."""
    isolate_image_data(tmp_path, monkeypatch)

    def explode(*args, **kwargs):
        raise AssertionError("data was read before the check")

    for module, name in ((datasets, "generate"), (datasets, "load_dataset"), (pipeline, "load_dataset"),
                         (images, "load_images"), (images, "find_images"), (images, "keras_download")):
        monkeypatch.setattr(module, name, explode)


# --- which network trains on which dataset --------------------------------------------------------

PAIRS = [(dataset, model) for dataset in list_datasets() for model in NETWORKS]


def fits(dataset: str, model: str) -> bool:
    """The rule, said independently of the `gives` fields: small networks on generated sets, the
    MNIST networks (784-vectors or 28x28 images) on image sets."""
    return (NETWORKS[model].takes == FEATURE_VECTORS) == (dataset in TOY_DATASETS)


@pytest.mark.parametrize("dataset, model", PAIRS)
def test_every_pair_is_decided_before_any_data_is_read(invoke, no_data_read, tmp_path, dataset, model):
    if fits(dataset, model):
        recipe = resolve_recipe(None, {"dataset": dataset, "model": model})
        assert (recipe.dataset, recipe.model) == (dataset, model)
        return
    result = invoke("fit", "--dataset", dataset, "--model", model, "--out", tmp_path / "runs", exit_code=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert f"model '{model}' takes {NETWORKS[model].takes}" in lines[0]
    fitting = [name for name in list_datasets() if fits(name, model)]
    assert f"{model} fits {', '.join(fitting)}" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_hidden2_on_mnist_is_refused_without_a_download(invoke, no_data_read, tmp_path):
    result = invoke("fit", "--dataset", "mnist", "--model", "hidden2", "--out", tmp_path / "runs", exit_code=2)
    assert "model 'hidden2' takes feature vectors, and mnist gives 784-vectors or 28x28 images" in result.output
    assert "mnist fits mlp, mlp512, dense128, lenet5" in result.output


def test_a_recipe_file_with_a_mismatched_pair_is_refused(invoke, no_data_read, tmp_path):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('dataset = "fashion-mnist"\nmodel = "deep8"\n')
    result = invoke("fit", recipe, "--out", tmp_path / "runs", exit_code=2)
    assert "model 'deep8' takes feature vectors, and fashion-mnist gives" in result.output


# --- TensorFlow's import notices follow TF_CPP_MIN_LOG_LEVEL ---------------------------------------

INFO_LINE = re.compile(r"^I\d{4} ", re.MULTILINE)  # I0000 00:00:1795508111.457414  12469 port.cc:153] oneDNN ...
ABSL_LINE = "absl::InitializeLog()"


def import_stderr(level: str | None) -> str:
    """What a fresh process prints on stderr while `load_keras` imports TensorFlow."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", "from beanstrain.backend import load_keras; load_keras()"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("level", [None, "3"])  # level 2 filters the same lines: see the last test
def test_levels_that_hide_warnings_hide_the_import_notices(level):
    stderr = import_stderr(level)
    assert ABSL_LINE not in stderr and not INFO_LINE.search(stderr), stderr


def test_level_1_hides_only_the_information_lines():
    stderr = import_stderr("1")
    assert not INFO_LINE.search(stderr), stderr
    assert set(stderr.splitlines()) <= {"WARNING: All log messages before absl::InitializeLog() is called are "
                                        "written to STDERR"}, stderr


def test_level_0_shows_the_import_notices():
    """The premise of the tests above: this TensorFlow does print these notices when asked to."""
    stderr = import_stderr("0")
    assert ABSL_LINE in stderr or INFO_LINE.search(stderr), stderr


def test_shown_notices_filters_by_severity_and_keeps_continuations():
    captured = ("python warning before any native line\n"
                "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                "I0000 00:00:1795508111.457414   12469 cpu_feature_guard.cc:227] This binary is optimized.\n"
                "To enable the following instructions: AVX2, rebuild TensorFlow.\n"
                "E0000 00:00:1795508111.457811   12469 cuda_platform.cc:52] failed call to cuInit\n")
    lines = captured.splitlines(keepends=True)
    assert shown_notices(captured, 0) == captured
    assert shown_notices(captured, 1) == lines[0] + lines[1] + lines[4]
    assert shown_notices(captured, 2) == lines[0] + lines[4]
    assert shown_notices(captured, 3) == lines[0]
