"""The pictures a run gets, by the kind of its dataset, written atomically.

The network is replaced by a fixed function of the inputs: these tests are
about which files a run folder gets and how they are written, not about
training (the CLI tests check the pictures of real runs).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from beanstrain.data import Dataset, load_dataset
from beanstrain.plots import PICTURES, RunOutputs, draw_run_pictures
from beanstrain.plots.history import plot_history

RUN_FOLDER_DOC = Path(__file__).resolve().parents[2] / "docs" / "run-folder.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def toy_run(name: str, rows=((0.5, 0.4), (0.3, 0.2))) -> RunOutputs:
    dataset = load_dataset(name, samples=40, noise=0.0, seed=0)
    width = 2 if dataset.task == "multiclass" else 1
    return RunOutputs(dataset, lambda x: np.full((len(x), width), 0.5, np.float32), None, ["loss", "test_loss"],
                      [list(row) for row in rows])


def image_run() -> RunOutputs:
    rng = np.random.default_rng(0)
    images, labels = rng.random((30, 28, 28, 1)).astype(np.float32), np.arange(30) % 10
    dataset = Dataset("mnist", "multiclass", images, labels, images[:20], labels[:20], 10, "test", tuple("0123456789"))
    return RunOutputs(dataset, None, rng.dirichlet(np.ones(10), 20), ["loss", "val_loss"], [[0.9, 1.0]])


@pytest.mark.parametrize("run, expected", [
    (lambda: toy_run("beans1"), ["data.png", "fit.png", "history.png"]),  # 1-D regression
    (lambda: toy_run("beans3"), ["data.png", "fit.png", "history.png"]),  # 1-D classes
    (lambda: toy_run("beans4"), ["data.png", "boundary.png", "surface.png", "history.png"]),
    (lambda: toy_run("gender"), ["data.png", "history.png"]),  # 3 features: no plane to draw on
    (lambda: toy_run("beans4", rows=()), ["data.png", "boundary.png", "surface.png"]),  # no epoch trained
    (image_run, ["samples.png", "confusion.png", "predictions.png", "wrong.png", "history.png"]),
], ids=["beans1", "beans3", "beans4", "gender", "no-history", "image"])
def test_a_run_gets_its_kinds_pictures(tmp_path, run, expected):
    assert draw_run_pictures(tmp_path, run()) == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(expected)
    for name in expected:
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)


def test_the_docs_list_every_picture_a_run_can_get():
    listed = set(re.findall(r"^\| `(\w+\.(?:png|gif|mp4))` \|", RUN_FOLDER_DOC.read_text(),
                            flags=re.MULTILINE))
    assert {picture.file for pictures in PICTURES.values() for picture in pictures} == listed


def test_picture_failing_midway_keeps_the_old_picture(tmp_path, monkeypatch):
    import matplotlib.figure

    plot_history(["loss"], [[0.5], [0.25]], tmp_path / "history.png", "loss")
    before = (tmp_path / "history.png").read_bytes()

    def broken_savefig(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError("killed while drawing")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError):
        plot_history(["loss"], [[0.5], [0.1]], tmp_path / "history.png", "loss")
    assert (tmp_path / "history.png").read_bytes() == before
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no temporary left
