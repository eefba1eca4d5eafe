"""How quiet TensorFlow's import is: its notices follow TF_CPP_MIN_LOG_LEVEL."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from beanstrain.backend import shown_notices


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
