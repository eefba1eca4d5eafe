"""One-line errors: the first line of a library's error, and the did-you-mean of an unknown name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from beanstrain.errors import RunError, UsageError, did_you_mean, first_line, lookup


@pytest.mark.parametrize("error, line", [
    (OSError("disk full"), "disk full"),
    (ValueError("  first\nsecond\n"), "first"),
    (ValueError(""), "ValueError"),
    (ValueError("\n\n"), "ValueError"),
    (KeyError("history"), "history"),
    (RuntimeError("x" * 500), "x" * 200),
])
def test_first_line(error, line):
    assert first_line(error) == line


def test_first_line_without_a_limit_keeps_the_whole_line():
    assert first_line(RuntimeError("y" * 500), limit=None) == "y" * 500


def test_did_you_mean_is_shared_by_names_and_recipe_keys():
    assert did_you_mean("bean4", ["beans4", "spiral"]) == "; did you mean 'beans4'?"
    with pytest.raises(UsageError, match=r"unknown thing 'bean4'; did you mean 'beans4'\? \(valid: beans4, spiral\)"):
        lookup("thing", "bean4", {"spiral": 1, "beans4": 2})


def test_a_model_that_fails_to_load_with_an_empty_message_is_one_line(trained_run, tmp_path, monkeypatch):
    """Keras errors with no message used to end in an IndexError; now the error's type names the problem."""
    from beanstrain.devices import load_keras
    from beanstrain.evaluation import load_run_model

    run_dir = Path(shutil.copytree(trained_run, tmp_path / "run"))

    def fails_silently(*args, **kwargs):
        raise ValueError("")

    monkeypatch.setattr(load_keras().saving, "load_model", fails_silently)
    with pytest.raises(RunError, match="is not a loadable Keras model: ValueError$"):
        load_run_model(run_dir, json.loads((run_dir / "config.json").read_text()))
