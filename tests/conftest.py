"""Shared fixtures: one CliRunner, and CLI calls that must never show a traceback.

Tests run the CLI in this process (click's CliRunner), so TensorFlow is
imported once for the whole session rather than once per command.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import beanstrain
from beanstrain.cli import cli

# A student's files for `beanstrain check` to judge (imported by its own child process), not test modules:
# --doctest-modules would otherwise import them, and they import each other as a student's files may.
collect_ignore_glob = ["check_solutions/*"]

# Every module of the package is imported before any test patches a name: a module imported for the first
# time under a monkeypatch would keep the patched function in its own namespace after the test.
for _module in pkgutil.walk_packages(beanstrain.__path__, "beanstrain."):
    importlib.import_module(_module.name)


@pytest.fixture(scope="session")
def runner():
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run `beanstrain ARGS...`; assert the exit code and that no traceback escaped."""

    def run(*args, exit_code=0):
        result = runner.invoke(cli, [str(arg) for arg in args])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        output = result.output + (result.stderr if hasattr(result, "stderr") else "")
        assert "Traceback" not in output
        assert result.exit_code == exit_code, output
        return result

    return run


@pytest.fixture
def fit_json(invoke, tmp_path):
    """`beanstrain fit ... --json --quiet` into tmp_path; returns the parsed summary."""

    def run(*args):
        result = invoke("fit", *args, "--out", tmp_path / "runs", "--quiet", "--json")
        return json.loads(result.stdout)

    return run


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset caches, system folders or network: the test sees only the image files it writes."""
    from mnist_files import isolate_image_data

    isolate_image_data(tmp_path, monkeypatch)


@pytest.fixture
def interrupt_at(monkeypatch):
    """`interrupt_at(epoch)`: this process gets SIGINT (as from Ctrl-C) once the progress display reaches `epoch`."""
    from beanstrain.progress import Progress

    update = Progress.update

    def arrange(at_epoch: int, times: int = 1, number=signal.SIGINT):
        """`times=2` sends two signals in a row, as a user pressing Ctrl-C twice."""
        sent = []

        def update_then_signal(self, epoch, figures):
            update(self, epoch, figures)
            if epoch >= at_epoch and not sent:
                sent.append(epoch)
                for _ in range(times):
                    os.kill(os.getpid(), number)

        monkeypatch.setattr(Progress, "update", update_then_signal)
        return sent

    return arrange


@pytest.fixture(scope="session")
def blob_run(runner, tmp_path_factory):
    """mnist-lenet trained once per session on learnable blobs (tests/mnist_files.py).

    Returns {"summary": fit's JSON, "out": the runs folder, "data": the .npz}.
    The data is passed with --data, so no search for the real datasets happens.
    Tests that change the run must work on a copy of its folder.
    """
    from mnist_files import blob_splits, write_npz

    root = tmp_path_factory.mktemp("blob-run")
    data = write_npz(root / "blobs.npz", blob_splits())
    args = ["fit", "mnist-lenet", "--epochs", "10", "--batch-size", "32", "--data", str(data),
            "--out", str(root / "runs"), "--quiet", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    return {"summary": json.loads(result.stdout), "out": root / "runs", "data": data}


@pytest.fixture(scope="session")
def trained_run(runner, tmp_path_factory):
    """One finished beans7-neuron run for tests that copy or read a run folder; never modify it in place."""
    out = tmp_path_factory.mktemp("trained")
    result = runner.invoke(cli, ["fit", "beans7-neuron", "--epochs", "3", "--out", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    return Path(json.loads(result.stdout)["run_dir"])


@pytest.fixture
def no_pictures(monkeypatch):
    """Runs draw no pictures, for tests of everything else a run writes (and of cases that may train)."""
    from beanstrain import outputs

    monkeypatch.setattr(outputs, "draw_pictures", lambda *args: [])
