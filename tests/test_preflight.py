"""What `fit` refuses before any data is read, what it says when memory runs out, and how quiet
TensorFlow's import is: the checks made from the registries and the machine, not from the data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from mnist_files import isolate_image_data

from beanstrain import data, preparation
from beanstrain.data import FEATURE_VECTORS, draw_bytes, list_datasets, load_dataset, loading, locate, memory
from beanstrain.data.memory import available_memory, format_bytes
from beanstrain.devices import shown_notices
from beanstrain.models import NETWORKS
from beanstrain.recipes import resolve_recipe


@pytest.fixture
def no_data_read(tmp_path, monkeypatch):
    """Every way to data (drawing, loading, finding files, downloading) raises if anything tries it."""
    isolate_image_data(tmp_path, monkeypatch)

    def explode(*args, **kwargs):
        raise AssertionError("data was read before the check")

    for module, name in ((data, "generate"), (data, "load_dataset"), (loading, "generate"),
                         (loading, "load_dataset"), (loading, "load_images"), (preparation, "load_dataset"),
                         (locate, "load_images"), (locate, "find_images"), (locate, "keras_download")):
        monkeypatch.setattr(module, name, explode)


# --- which network trains on which dataset --------------------------------------------------------

TOY_DATASETS = list_datasets("toy")
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
    assert "mnist fits mlp, mlp512, mlp-sigmoid, dense128, dense128-nobias, lenet5" in result.output


def test_a_recipe_file_with_a_mismatched_pair_is_refused(invoke, no_data_read, tmp_path):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('dataset = "fashion-mnist"\nmodel = "deep8"\n')
    result = invoke("fit", recipe, "--out", tmp_path / "runs", exit_code=2)
    assert "model 'deep8' takes feature vectors, and fashion-mnist gives" in result.output


# --- memory: refused before the draw, one line when it runs out anyway -----------------------------

@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_the_draw_estimate_bounds_a_real_draw(name):
    """Oracle: tracemalloc's peak (NumPy reports its arrays to it) over a real train and test draw."""
    samples = 300_000
    load_dataset(name, 100, 0.3, 0)  # first-call allocations are not the draw's
    peaks = []
    for noise in (0.0, 0.3):
        tracemalloc.start()
        try:
            load_dataset(name, samples, noise, seed=1)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    estimate = draw_bytes(name, samples)
    assert max(peaks) <= estimate + 64 * 1024, f"{name} peaks at {max(peaks) / samples:.1f} bytes a sample"
    assert estimate <= 1.1 * max(peaks), f"{name} peaks at only {max(peaks) / samples:.1f} bytes a sample"


def test_the_issues_command_is_refused_before_the_draw(invoke, no_data_read, tmp_path):
    """`--samples 2000000000` on beans4 once ended in NumPy's ArrayMemoryError traceback."""
    needed = 2_000_000_000 * TOY_DATASETS["beans4"].draw_bytes
    available = available_memory()
    if available is None or available >= needed:
        pytest.skip(f"this machine has {available} bytes available, enough to draw {needed}")
    result = invoke("fit", "--dataset", "beans4", "--model", "hidden2", "--samples", "2000000000",
                    "--out", tmp_path / "runs", exit_code=2)
    assert result.output.strip() == (
        f"Error: --samples 2000000000 for beans4 needs about {needed / 2**30:.1f} GiB of memory to draw its train "
        f"and test sets, and this machine has {format_bytes(available)} available; use fewer --samples")
    assert "100.6 GiB" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_refusal_follows_the_memory_available(invoke, no_data_read, tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 50 * 2**20)
    samples = 50 * 2**20 // TOY_DATASETS["spiral"].draw_bytes
    recipe = resolve_recipe(None, {"dataset": "spiral", "model": "deep8", "samples": samples})
    assert recipe.samples == samples  # just fits
    result = invoke("fit", "--dataset", "spiral", "--model", "deep8", "--samples", samples + 1,
                    "--out", tmp_path / "runs", exit_code=2)
    assert "needs about 50.0 MiB of memory" in result.output and "has 50.0 MiB available" in result.output


def test_available_memory_reads_meminfo_within_a_cgroup_limit(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684096 kB\nMemFree:  1000 kB\nMemAvailable:   2097152 kB\n")
    limit, used = tmp_path / "memory.max", tmp_path / "memory.current"
    monkeypatch.setattr(memory, "MEMINFO", str(meminfo))
    monkeypatch.setattr(memory, "CGROUP_MEMORY", (str(limit), str(used)))
    assert available_memory() == 2 * 2**30  # no cgroup files
    limit.write_text("max\n")
    used.write_text("123\n")
    assert available_memory() == 2 * 2**30  # a cgroup with no limit
    limit.write_text(f"{2**30}\n")
    used.write_text(f"{2**28}\n")
    assert available_memory() == 3 * 2**28  # the container's limit is the tighter one


def test_available_memory_on_this_machine_is_plausible():
    available = available_memory()
    if available is None:
        pytest.skip("this system reports no available memory")
    assert 0 < available <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


NUMPY_MESSAGE = "Unable to allocate 29.8 GiB for an array with shape (2000000000, 2) and data type float64"


def test_memory_error_while_loading_data_is_one_line_exit_1(invoke, tmp_path, monkeypatch):
    from numpy._core._exceptions import _ArrayMemoryError  # what NumPy raises when an array cannot be had

    def out_of_memory(*args, **kwargs):
        raise _ArrayMemoryError((2_000_000_000, 2), np.dtype("float64"))

    monkeypatch.setattr(preparation, "load_dataset", out_of_memory)
    result = invoke("fit", "beans4-hidden2", "--epochs", "2", "--out", tmp_path / "runs", "--quiet", exit_code=1)
    assert result.output.strip() == (f"Error: out of memory: {NUMPY_MESSAGE}; use fewer --samples or a smaller "
                                     "--batch-size")


@pytest.mark.parametrize("kind", ["MemoryError", "ResourceExhaustedError"])
def test_running_out_of_memory_while_training_is_one_line_exit_1(invoke, tmp_path, monkeypatch, kind):
    from beanstrain.devices import load_tensorflow
    from beanstrain.progress import Progress

    errors = {"MemoryError": MemoryError(NUMPY_MESSAGE),
              "ResourceExhaustedError": load_tensorflow().errors.ResourceExhaustedError(
                  None, None, "OOM when allocating tensor with shape[4096,4096]\nHint: try a smaller batch")}

    def update(self, epoch, figures):
        raise errors[kind]

    monkeypatch.setattr(Progress, "update", update)
    result = invoke("fit", "beans4-hidden2", "--epochs", "3", "--engine", "fit", "--out", tmp_path / "runs",
                    "--quiet", exit_code=1)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: out of memory: "), result.output
    assert ("Unable to allocate 29.8 GiB" if kind == "MemoryError" else "OOM when allocating tensor") in lines[0]
    [config] = (tmp_path / "runs").glob("beans4-hidden2/*/config.json")
    assert json.loads(config.read_text())["state"] == "failed"


def test_an_ordinary_bug_still_shows_its_traceback(runner, tmp_path, monkeypatch):
    """Only running out of memory is turned into a line; other unexpected errors are not hidden."""
    from beanstrain.cli import cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(preparation, "load_dataset", broken)
    result = runner.invoke(cli, ["fit", "beans4-hidden2", "--out", str(tmp_path / "runs"), "--quiet"])
    assert isinstance(result.exception, ZeroDivisionError)


# --- TensorFlow's import notices follow TF_CPP_MIN_LOG_LEVEL ---------------------------------------

INFO_LINE = re.compile(r"^I\d{4} ", re.MULTILINE)  # I0000 00:00:1795508111.457414  12469 port.cc:153] oneDNN ...
ABSL_LINE = "absl::InitializeLog()"


def import_stderr(level: str | None) -> str:
    """What a fresh process prints on stderr while `load_keras` imports TensorFlow."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", "from beanstrain.devices import load_keras; load_keras()"],
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
