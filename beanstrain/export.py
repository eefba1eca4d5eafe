"""`beanstrain export`: a finished run's network in a format another program runs, checked by that format's runtime.

    beanstrain export runs/beans4-hidden2/20261205-101500-1 --format onnx
    beanstrain export beans4-hidden2 --format tflite --out hidden2.tflite
    beanstrain export mnist-lenet --format saved_model --out serving/lenet

Keras writes each format (`model.export`): a TensorFlow SavedModel, ONNX through tf2onnx, and a
TFLite flatbuffer through TensorFlow's LiteRT converter.  The file is then loaded by its own runtime
(TensorFlow's SavedModel loader, onnxruntime, the TFLite interpreter) and its predictions compared
with the run's model on the run's test inputs; only an export that agrees is moved to its place, so a
failed or disagreeing export leaves nothing behind.  A run trained on JAX or PyTorch is exported on
TensorFlow, which reads the same model.keras.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain import files, runs
from beanstrain.errors import RunError, UsageError, first_line, lookup

TOLERANCE = 1e-4  # float32 networks rebuilt in another runtime agree to a few units in the last place
CHECK_SAMPLES = 512  # test inputs each export is checked on


@dataclass(frozen=True)
class Format:
    keras_format: str  # model.export's name for it
    default_name: str  # what the run folder's export/ gets
    runtime: str  # what loads it to check it
    extra: str | None = None  # the pip extra it needs, beyond beanstrain's own dependencies
    modules: tuple[str, ...] = ()  # importable only with that extra


FORMATS: dict[str, Format] = {
    "saved_model": Format("tf_saved_model", "saved_model", "TensorFlow's SavedModel loader"),
    "onnx": Format("onnx", "model.onnx", "onnxruntime", "export-onnx", ("tf2onnx", "onnx", "onnxruntime")),
    "tflite": Format("litert", "model.tflite", "the TFLite interpreter"),
}


def check_format(name: str) -> Format:
    """The format, refused in one line when unknown or when its extra is not installed."""
    chosen = lookup("format", name, FORMATS)
    missing = [module for module in chosen.modules if importlib.util.find_spec(module) is None]
    if missing:
        raise UsageError(f"--format {name} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                         f"not installed: pip install \"beanstrain[{chosen.extra}]\"")
    return chosen


def export_run(target: str, format_name: str, out: Path, destination: Path | None = None) -> dict:
    """Export a finished run's model, check it with its runtime and return what `export --json` prints."""
    chosen = check_format(format_name)
    run_dir = runs.resolve_run(target, out)
    config = files.read_json(run_dir / runs.CONFIG)
    runs.require_finished(run_dir, config)
    destination = Path(destination) if destination is not None else run_dir / "export" / chosen.default_name
    if destination.exists() and destination.is_dir() != (format_name == "saved_model"):
        raise UsageError(f"--out {destination} is a {'folder' if destination.is_dir() else 'file'}; "
                         f"a {format_name} export is a {'folder' if format_name == 'saved_model' else 'file'}")
    if not destination.parent.is_dir():
        if destination.parent == run_dir / "export":
            destination.parent.mkdir()
        else:
            raise UsageError(f"--out {destination}: folder {destination.parent} does not exist")
    from beanstrain.backends import use_backend

    use_backend("tensorflow")  # every format here is written by TensorFlow's converters
    from beanstrain.evaluation import load_run_model

    model = load_run_model(run_dir, config)
    inputs = check_inputs(config, model)
    expected = np.asarray(model(inputs, training=False))
    # Beside its destination, so it moves there in one rename; the suffix kept, as the converters check it.
    temporary = destination.with_name(f".{destination.stem}.tmp-{os.getpid()}{destination.suffix}")
    try:
        with _quiet_converters():
            model.export(str(temporary), format=chosen.keras_format, verbose=False)
        got = RUNTIMES[format_name](temporary, inputs)
        difference = float(np.max(np.abs(got - expected)))
        if not difference <= TOLERANCE:
            raise RunError(f"the {format_name} export's predictions differ from the run's model by {difference:.3g} "
                           f"(more than {TOLERANCE:g}); nothing was written")
        _replace(temporary, destination)
    except RunError:
        raise
    except Exception as error:  # a converter's own failure, in its own words, in one line
        raise RunError(f"exporting {run_dir} as {format_name} failed: {first_line(error)}; nothing was written") \
            from None
    finally:
        _remove(temporary)
    size = sum(path.stat().st_size for path in destination.rglob("*") if path.is_file()) if destination.is_dir() \
        else destination.stat().st_size
    return {"run_dir": str(run_dir), "format": format_name, "path": str(destination), "bytes": size,
            "checked_with": chosen.runtime, "checked_samples": len(inputs), "max_difference": difference}


def check_inputs(config: dict, model) -> np.ndarray:
    """The run's own test inputs (at most CHECK_SAMPLES); for an image run whose data is not at hand, images of
    uniform noise in its input shape, drawn from its seed."""
    from beanstrain.data import load_dataset
    from beanstrain.models import model_inputs

    recipe = config["recipe"]
    try:
        dataset = load_dataset(recipe["dataset"], recipe.get("samples"), recipe.get("noise", 0.0),
                               recipe.get("seed", 0), config.get("data_path"))
        x = dataset.x_test[:CHECK_SAMPLES]
    except (UsageError, RunError, OSError):
        shape = tuple(int(side) for side in model.inputs[0].shape[1:])
        x = np.random.default_rng(recipe.get("seed", 0)).random((64, *shape), dtype=np.float32)
    return np.asarray(model_inputs(recipe["model"], np.asarray(x, np.float32)), np.float32)


def _run_saved_model(path: Path, inputs: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # held while it runs: its functions need its variables alive
    return loaded.serve(inputs).numpy()


def _run_onnx(path: Path, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def _run_tflite(path: Path, inputs: np.ndarray) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():  # TensorFlow names its successor package on every use
        warnings.simplefilter("ignore")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # TensorFlow's own, which it still ships
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806 - a class, named as its package names it
        interpreter = Interpreter(model_path=str(path))
    entry, result = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(entry["index"], inputs.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], inputs)
    interpreter.invoke()
    return interpreter.get_tensor(result["index"])


RUNTIMES = {"saved_model": _run_saved_model, "onnx": _run_onnx, "tflite": _run_tflite}


@contextlib.contextmanager
def _quiet_converters():
    """tf2onnx and the TFLite converter log every pass at INFO; a person wants the one line at the end."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("tf2onnx", "absl", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _replace(temporary: Path, destination: Path) -> None:
    """Put the checked export in place of whatever was there, in one rename."""
    if destination.is_dir():
        old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.replace(destination, old)
        os.replace(temporary, destination)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temporary, destination)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
