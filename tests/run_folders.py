"""Reading the run folders a test's `beanstrain fit` left under its --out.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> run_folders(out / "nothing-yet")
    []
"""

from __future__ import annotations

import json
from pathlib import Path

from beanstrain import runs


def run_folders(out: Path) -> list[Path]:
    """Every run folder under `out` (`out/<recipe>/<run>`); none when `out` does not exist."""
    return [run_dir for parent in out.iterdir() for run_dir in parent.iterdir()] if out.is_dir() else []


def only_run(out: Path) -> Path:
    """The one run folder under `out`; fails when there is none or more than one."""
    (run_dir,) = run_folders(out)
    return run_dir


def config_of(run_dir) -> dict:
    return json.loads((Path(run_dir) / runs.CONFIG).read_text())
