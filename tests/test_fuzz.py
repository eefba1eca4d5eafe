"""Random, truncated and bit-flipped files wherever beanstrain reads one: only its own one-line errors come out.

Each case is bounded in time (SIGALRM), so a reader that hangs fails the test
instead of stalling the suite.  The generator is seeded: the same cases run
every time.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from mnist_files import idx_bytes

from beanstrain import files, runs
from beanstrain.data.formats import IDX_FILES
from beanstrain.errors import RunError, UsageError

SECONDS_PER_CASE = 60
CASES_PER_KIND = 4


def mutants(valid: bytes, seed: int, flips_within: int | None = None) -> list[bytes]:
    """Random bytes, truncations of `valid` and copies with a few bytes flipped (within the first
    `flips_within` bytes, where the headers are, when given)."""
    rng = np.random.default_rng(seed)
    cases = [rng.bytes(int(rng.integers(0, 4096))) for _ in range(CASES_PER_KIND)]
    cases += [valid[: int(rng.integers(0, len(valid)))] for _ in range(CASES_PER_KIND)]
    for _ in range(CASES_PER_KIND):
        flipped = bytearray(valid)
        for position in rng.integers(0, min(len(valid), flips_within or len(valid)), size=3):
            flipped[position] ^= int(rng.integers(1, 256))
        cases.append(bytes(flipped))
    return cases


@contextlib.contextmanager
def time_limit(seconds: int = SECONDS_PER_CASE):
    def give_up(number, frame):
        raise TimeoutError(f"a case took more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_own_error(runner, args, allowed=(1, 2)):
    from beanstrain.cli import cli

    with time_limit():
        result = runner.invoke(cli, [str(arg) for arg in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    assert result.exit_code in allowed, result.output
    if result.exit_code:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return result


def tiny_mnist(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=30, dtype=np.uint8)
    return {"x_train": images[:20], "y_train": labels[:20], "x_test": images[20:], "y_test": labels[20:]}


def fit_mnist(data, out: Path):
    return ["fit", "--dataset", "mnist", "--model", "mlp", "--epochs", "1", "--quiet", "--data", data, "--out", out]


def assert_refused_or_trained(runner, args, out: Path):
    """Refused before any run folder exists, or (data still valid after a flip) trained."""
    result = assert_own_error(runner, [*args], allowed=(0, 1, 2))
    assert result.exit_code == 0 or not out.exists()
    shutil.rmtree(out, ignore_errors=True)
    return result


def test_npz_files(runner, tmp_path, no_pictures):
    buffer = io.BytesIO()
    np.savez(buffer, **tiny_mnist())
    codes = []
    for number, case in enumerate(mutants(buffer.getvalue(), seed=1, flips_within=120)):
        path = tmp_path / f"case{number}.npz"
        path.write_bytes(case)
        codes.append(assert_refused_or_trained(runner, fit_mnist(path, tmp_path / "runs"), tmp_path / "runs").exit_code)
    assert codes.count(0) < len(codes) // 2


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_files(runner, tmp_path, gz, no_pictures):
    arrays = tiny_mnist()
    originals = {}
    for (split, part), name in IDX_FILES.items():
        data = idx_bytes(arrays[f"{'x' if part == 'images' else 'y'}_{split}"])
        originals[name + (".gz" if gz else "")] = gzip.compress(data, mtime=0) if gz else data
    rng = np.random.default_rng(2 + gz)
    codes = []
    for number in range(3 * CASES_PER_KIND):
        folder = tmp_path / f"case{number}"
        folder.mkdir()
        for name, data in originals.items():
            (folder / name).write_bytes(data)
        victim = sorted(originals)[int(rng.integers(0, len(originals)))]
        case = mutants(originals[victim], seed=100 + number, flips_within=24)[number]
        (folder / victim).write_bytes(case)
        result = assert_refused_or_trained(runner, fit_mnist(folder, tmp_path / "runs"), tmp_path / "runs")
        codes.append(result.exit_code)
    assert codes.count(0) < len(codes) // 2


@pytest.mark.parametrize("sha", ["kept", "matching"])
def test_keras_files(runner, trained_run, tmp_path, sha):
    """A replaced model.keras: with the recorded SHA-256 kept it is refused unread; with a matching one
    it reaches the loader, which must fail in one line (or load it, when a flip hit only weights)."""
    valid = (trained_run / runs.MODEL).read_bytes()
    for number, case in enumerate(mutants(valid, seed=3 if sha == "kept" else 4)):
        run_dir = Path(shutil.copytree(trained_run, tmp_path / f"case{number}"))
        (run_dir / runs.MODEL).write_bytes(case)
        if sha == "matching":
            config = json.loads((run_dir / runs.CONFIG).read_text())
            config["model_sha256"] = files.file_sha256(run_dir / runs.MODEL)
            (run_dir / runs.CONFIG).write_text(json.dumps(config))
        result = assert_own_error(runner, ["eval", run_dir], allowed=(1,) if sha == "kept" else (0, 1))
        if sha == "kept":
            assert "has changed since it was trained" in result.output


def rezip(archive: bytes, replace: dict[str, bytes]) -> bytes:
    """The same zip with some members' contents replaced."""
    with zipfile.ZipFile(io.BytesIO(archive)) as original:
        members = {name: original.read(name) for name in original.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as rebuilt:
        for name, data in {**members, **replace}.items():
            rebuilt.writestr(name, data)
    return buffer.getvalue()


def test_keras_archives_with_damaged_members(runner, trained_run, tmp_path):
    """Valid zips whose config or weights are damaged get past the zip check to Keras's own parser."""
    valid = (trained_run / runs.MODEL).read_bytes()
    with zipfile.ZipFile(io.BytesIO(valid)) as archive:
        config, weights = archive.read("config.json"), archive.read("model.weights.h5")
    rng = np.random.default_rng(8)
    cases = [
        {"config.json": config[: len(config) // 2]},
        {"config.json": rng.bytes(300)},
        {"config.json": b"[]"},
        {"config.json": config.replace(b'"Dense"', b'"NoSuchLayer"')},
        {"config.json": config.replace(b'"keras.layers"', b'"os"').replace(b'"Dense"', b'"system"')},
        {"model.weights.h5": weights[: len(weights) // 3]},
        {"model.weights.h5": rng.bytes(len(weights))},
    ]
    for number, replace in enumerate(cases):
        run_dir = Path(shutil.copytree(trained_run, tmp_path / f"case{number}"))
        (run_dir / runs.MODEL).write_bytes(rezip(valid, replace))
        config_path = run_dir / runs.CONFIG
        recorded = json.loads(config_path.read_text())
        recorded["model_sha256"] = files.file_sha256(run_dir / runs.MODEL)
        config_path.write_text(json.dumps(recorded))
        result = assert_own_error(runner, ["eval", run_dir], allowed=(1,))
        assert "is not a loadable Keras model" in result.output


def test_a_model_file_that_would_run_code_is_refused(runner, trained_run, tmp_path, monkeypatch):
    """A Lambda layer carries Python bytecode; safe_mode refuses it and nothing in it runs."""
    from beanstrain.devices import load_keras

    keras = load_keras()
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("BEANSTRAIN_TEST_MARKER", str(marker))
    run_dir = Path(shutil.copytree(trained_run, tmp_path / "run"))
    hostile = keras.Sequential([
        keras.Input(shape=(2,)),
        # The bytecode is saved without closures, so the path comes from the environment.
        keras.layers.Lambda(
            lambda inputs: (open(__import__("os").environ["BEANSTRAIN_TEST_MARKER"], "w").close(), inputs)[1]),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    marker.unlink(missing_ok=True)  # building the model above ran the lambda once
    hostile.save(run_dir / runs.MODEL)
    recorded = json.loads((run_dir / runs.CONFIG).read_text())
    recorded["model_sha256"] = files.file_sha256(run_dir / runs.MODEL)
    (run_dir / runs.CONFIG).write_text(json.dumps(recorded))
    result = assert_own_error(runner, ["eval", run_dir], allowed=(1,))
    assert "is not a loadable Keras model" in result.output
    assert not marker.exists()


def test_checkpoint_files(runner, trained_run, tmp_path):
    """A damaged arrays file whose checkpoint.json names it: refused in one line, or resumed when a flip
    hit only array data. That a pickle in it is never run is test_checkpoints.py's test."""
    from beanstrain.checkpoints import TrainingState, write_checkpoint
    from beanstrain.evaluation import load_run_model

    config = json.loads((trained_run / runs.CONFIG).read_text())
    model = load_run_model(trained_run, config)
    template = tmp_path / "template"
    template.mkdir()
    state = TrainingState(1, model.get_weights(), [variable.numpy() for variable in model.optimizer.variables],
                          [[0.5, 0.5, 0.5, 0.5]], 0.1)
    arrays = write_checkpoint(template, state, seed=0)
    valid = (template / arrays).read_bytes()
    for number, case in enumerate(mutants(valid, seed=5)):
        run_dir = Path(shutil.copytree(trained_run, tmp_path / f"case{number}"))
        runs.set_state(run_dir, runs.INTERRUPTED)
        (run_dir / arrays).write_bytes(case)
        info = json.loads((template / "checkpoint.json").read_text())
        info["sha256"] = files.file_sha256(run_dir / arrays)
        (run_dir / "checkpoint.json").write_text(json.dumps(info))
        assert_own_error(runner, ["fit", "--resume", run_dir, "--quiet"], allowed=(0, 1, 2))


def test_image_files(tmp_path):
    from PIL import Image

    from beanstrain.data.digits import read_digit

    for image_format, suffix in (("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp")):
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(6).integers(0, 256, (40, 30), dtype=np.uint8)).save(
            buffer, format=image_format)
        for number, case in enumerate(mutants(buffer.getvalue(), seed=7, flips_within=64)):
            path = tmp_path / f"case{number}.{suffix}"
            path.write_bytes(case)
            with time_limit():
                try:
                    image, _ = read_digit(path)
                except (RunError, UsageError) as error:
                    assert len(str(error).splitlines()) == 1
                else:
                    assert image.shape == (28, 28)
