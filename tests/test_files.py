"""Atomic writes: a failure or a kill at any moment leaves the previous good file or none, never half a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beanstrain import files, runs
from beanstrain.errors import RunError


def leftovers(folder: Path) -> list[str]:
    """Temporary files atomic_path did not clean up."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_failure_inside_atomic_path_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    files.write_json(target, {"old": 1})
    with pytest.raises(RuntimeError, match="disk full"), files.atomic_path(target) as temporary:
        temporary.write_text('{"new": 2, "half')
        raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"old": 1}
    assert leftovers(tmp_path) == []


def test_failure_inside_atomic_path_leaves_no_file_when_there_was_none(tmp_path):
    with pytest.raises(OSError), files.atomic_path(tmp_path / "history.csv") as temporary:
        temporary.write_text("epoch,loss\n1,")
        raise OSError("killed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_write_failing_at_fsync_or_rename_keeps_the_old_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "config.json"
    files.write_json(target, {"state": "running"})

    def fail(*args, **kwargs):
        raise OSError(f"{failing} failed")

    monkeypatch.setattr(files.os, failing, fail)
    with pytest.raises(OSError, match=f"{failing} failed"):
        runs.set_state(tmp_path, runs.FINISHED)
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"state": "running"}
    assert leftovers(tmp_path) == []


def test_model_save_failing_midway_leaves_no_model(tmp_path):
    class BreaksWhileSaving:
        def save(self, path):
            Path(path).write_bytes(b"PK\x03\x04 half an archive")
            raise OSError("no space left on device")

    with pytest.raises(OSError):
        files.write_with(tmp_path / runs.MODEL, BreaksWhileSaving().save)
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_a_killed_process_are_recognised(tmp_path):
    for name in (".model-ab12_x9z.keras", ".config-0a1b2c3d.json", ".boundary-zz99yy88.png",
                 ".checkpoint-12345678.npz"):
        (tmp_path / name).write_bytes(b"")
    for name in (".mine", ".model-notes.keras", "config.json"):
        (tmp_path / name).write_text("{}")
    files.remove_temporaries(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".mine", ".model-notes.keras", "config.json"]


def test_csv_and_history(tmp_path):
    runs.write_history(tmp_path / "history.csv", ["loss", "accuracy"], [[0.5, 0.25], [1 / 3, 1.0]])
    assert (tmp_path / "history.csv").read_text() == "epoch,loss,accuracy\n1,0.5,0.25\n2,0.33333333,1\n"


def test_write_with_returns_the_files_sha256(tmp_path):
    digest = files.write_with(tmp_path / "arrays.npz", lambda path: path.write_bytes(b"arrays"))
    assert digest == files.file_sha256(tmp_path / "arrays.npz") and leftovers(tmp_path) == []


def test_unreadable_json_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text('{"state": ')
    with pytest.raises(RunError, match="is not readable JSON"):
        files.read_json(tmp_path / "config.json")
    with pytest.raises(RunError, match="does not exist"):
        files.read_json(tmp_path / "missing.json")
