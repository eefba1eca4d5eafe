"""Short runs against fingerprints stored here: a change of the code must not change what a run produces.

Each case trains through the command line and reduces what the run folder
holds to a few SHA-256 digests: the saved network's weights and optimizer
variables (exact bits), the history and metrics (history.csv and
metrics.json without the seconds), and the shape of the run folder (its file
names, config.json's keys, fit's JSON keys).  The weight, optimizer and
history digests were computed before the package was reshaped; the layout's
since, when metrics.json and fit's JSON gained `warnings`, again when
recipes (config.json's `recipe`) gained the `levels` keys, and again when every
run folder gained its page, report.html, and again when recipes gained
`initial_weights` and fit's JSON the `weights` of a small network, and again when
run folders gained trace.npz, the trace pictures and config.json's `animation`, and again for
image runs when their metrics.json gained `per_class_accuracy`, and again when recipes gained the
description keys (`hidden`, `activation`, `l1`, `l2`, `dropout`, `features`): the weights, optimizer and
history stayed the same to the bit, the named networks being built from their descriptions; and again when dense
networks' run folders gained network.png and gradients.png, and again when recipes gained `precision`
and config.json its `backend`.  Every digest changed once since, when initial weights came to be drawn
in NumPy (the same on every backend) instead of by TensorFlow's random numbers.  The layout changed again
when run folders gained tb/ and final-state.npz (config.json its `tensorboard`) and recipes
`patience`, `monitor` and `test_fraction`; the weights, optimizer and history stayed the same to the
bit.  Any later change that moves a weight by one bit, or a file or a key, fails here.

Floating-point results depend on the CPU and the library versions, so the
exact digests are compared on the environment they were recorded on
(`RECORDED_ON`); everywhere else the run folder's shape is still compared
exactly and the metrics to within float32 noise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
from mnist_files import blob_splits, write_npz

CASES = {
    "beans4-hidden2-compiled": ["beans4-hidden2", "--epochs", "30", "--engine", "compiled"],
    "beans4-hidden2-fit": ["beans4-hidden2", "--epochs", "5", "--engine", "fit"],
    "spiral-deep8-compiled": ["spiral-deep8", "--epochs", "20", "--engine", "compiled", "--seed", "3"],
    "spiral-deep8-fit": ["spiral-deep8", "--epochs", "5", "--engine", "fit", "--seed", "3"],
    "mnist-dense128-fit": ["mnist-dense128", "--epochs", "2", "--batch-size", "32", "--engine", "fit"],
    "mnist-dense128-compiled": ["mnist-dense128", "--epochs", "1", "--batch-size", "32", "--engine", "compiled"],
}
IMAGE_CASES = {"mnist-dense128-fit", "mnist-dense128-compiled"}

RECORDED_ON = {
    "tensorflow": "2.21.0", "keras": "3.15.1", "numpy": "2.4.6", "machine": "x86_64",
    "cpu": "AMD EPYC", "cores": 2,
}
EXPECTED = {
    "beans4-hidden2-compiled": {
        "weights": "fee3eca029673d37e2c1", "optimizer": "0db0e02ad92ed5c391bd",
        "history": "89c48acec96933baf500", "layout": "35673215f7c3ef90d3ec",
        "metrics": {"train.loss": 0.20065468549728394, "train.accuracy": 0.72,
                    "test.loss": 0.18574614822864532, "test.accuracy": 0.76, "epochs": 30},
    },
    "beans4-hidden2-fit": {
        "weights": "ebfa4d23820aa19d2d3b", "optimizer": "7b25520bc57ebe7fbd10",
        "history": "247a24a22778d682feef", "layout": "b3bab3ca5cff9fc086c1",
        "metrics": {"train.loss": 0.21799732744693756, "train.accuracy": 0.72,
                    "test.loss": 0.2115125060081482, "test.accuracy": 0.76, "epochs": 5},
    },
    "mnist-dense128-compiled": {
        "weights": "696287f7e604be252d82", "optimizer": "fb41cd029e66bdbb72d0",
        "history": "a4d7f5ceb9b31ccf9727", "layout": "0826c8d971ad179877fa",
        "metrics": {"train.loss": 1.1569939851760864, "train.accuracy": 0.9962962962962963,
                    "test.loss": 1.19341242313385, "test.accuracy": 1.0, "epochs": 1},
    },
    "mnist-dense128-fit": {
        "weights": "0984fd102cb8012560fe", "optimizer": "19869aff21fc4614616e",
        "history": "5db8ba3c18dd8b193eb9", "layout": "c6e978243a747ec099ad",
        "metrics": {"train.loss": 0.3559440076351166, "train.accuracy": 1.0,
                    "test.loss": 0.3749126195907593, "test.accuracy": 1.0, "epochs": 2},
    },
    "spiral-deep8-compiled": {
        "weights": "71c5d00aee0cfc8ee3b6", "optimizer": "346386482cf4f9184ede",
        "history": "7b1da66e3d21c7c0dfc5", "layout": "0a1a9a22f337da9683bd",
        "metrics": {"train.loss": 0.24041704833507538, "train.accuracy": 0.57,
                    "test.loss": 0.24048833549022675, "test.accuracy": 0.58, "epochs": 20},
    },
    "spiral-deep8-fit": {
        "weights": "c8ae9820639ed2d564b1", "optimizer": "7b25520bc57ebe7fbd10",
        "history": "2ab088be14f5f87a8b9f", "layout": "cc9f3dff23f89234c8b5",
        "metrics": {"train.loss": 0.24657510221004486, "train.accuracy": 0.48,
                    "test.loss": 0.24657942354679108, "test.accuracy": 0.49, "epochs": 5},
    },
}


def environment() -> dict:
    import keras
    import tensorflow

    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as stream:
        cpu = next((line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")), cpu)
    return {"tensorflow": tensorflow.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "machine": platform.machine(), "cpu": cpu, "cores": os.cpu_count()}


def digest_arrays(arrays) -> str:
    sha = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()[:20]


def digest_text(*texts: str) -> str:
    return hashlib.sha256("\n--\n".join(texts).encode()).hexdigest()[:20]


def fingerprint(summary: dict) -> dict:
    import keras

    run_dir = Path(summary["run_dir"])
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    seconds = metrics.pop("train_seconds")
    assert seconds > 0
    # The dead-end warnings are sentences about the figures, not figures: the layout sees the key.
    assert isinstance(metrics.pop("warnings"), list)
    # Image runs' per-class test accuracy (checked against `eval`'s in test_image_runs.py): the layout sees it.
    per_class = metrics.pop("per_class_accuracy", None)
    return {
        "weights": digest_arrays(model.get_weights()),
        "optimizer": digest_arrays([variable.numpy() for variable in model.optimizer.variables]),
        "history": digest_text((run_dir / "history.csv").read_text(), json.dumps(metrics, sort_keys=True)),
        "layout": digest_text(json.dumps(sorted(path.name for path in run_dir.iterdir())),
                              json.dumps(sorted(config)), json.dumps(sorted(config["recipe"])),
                              json.dumps(sorted(summary)), config["engine"],
                              *([json.dumps(sorted(per_class))] if per_class is not None else [])),
        "metrics": {f"{split}.{name}": value for split, figures in metrics.items() if isinstance(figures, dict)
                    for name, value in figures.items()} | {"epochs": metrics["epochs"]},
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_short_run_matches_its_fingerprint(fit_json, tmp_path, request, case):
    args = list(CASES[case])
    if case in IMAGE_CASES:
        request.getfixturevalue("isolated")
        args += ["--data", write_npz(tmp_path / "blobs.npz", blob_splits())]
    found = fingerprint(fit_json(*args))
    expected = EXPECTED[case]
    assert found["layout"] == expected["layout"], found
    if environment() == RECORDED_ON:
        assert {key: found[key] for key in ("weights", "optimizer", "history")} == \
            {key: expected[key] for key in ("weights", "optimizer", "history")}, found
        assert found["metrics"] == expected["metrics"]
    else:
        assert found["metrics"] == pytest.approx(expected["metrics"], rel=1e-3, abs=1e-4)
