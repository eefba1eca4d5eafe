"""Importing Keras and TensorFlow, quietly and only when a command needs them.

Importing TensorFlow takes seconds, so nothing in `beanstrain --help`,
`beanstrain list` or `beanstrain data` calls this; training, evaluation,
prediction and plotting do:

    >>> keras = load_keras()
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys


def load_keras():
    """Keras on the TensorFlow backend, with TensorFlow's C++ start-up chatter silenced."""
    # These must be set before the first import to take effect; a user's own
    # setting wins, and a user who sets TF_CPP_MIN_LOG_LEVEL sees every line.
    show_native_logs = "TF_CPP_MIN_LOG_LEVEL" in os.environ
    # Level 3 also hides the CUDA probe's error lines on machines without a GPU.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow turns its oneDNN kernels on only for some CPUs; elsewhere its
    # own convolutions train LeNet-5 about three times slower.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    first_import = "tensorflow" not in sys.modules
    with _native_stderr_silenced() if first_import and not show_native_logs else contextlib.nullcontext():
        import keras

    return keras


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for the block.

    TensorFlow's import writes notices (absl's start-up warning, the oneDNN
    and CUDA-probe lines) straight to descriptor 2, before its log level
    applies; they would open every run's output.  Python's own errors are
    raised after the block and still shown.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_tensorflow():
    load_keras()
    import tensorflow as tf

    return tf


def library_versions() -> dict[str, str]:
    """Versions recorded beside every run, so a result can be reproduced."""
    import numpy

    import beanstrain

    keras = load_keras()
    tf = load_tensorflow()
    return {
        "beanstrain": beanstrain.__version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": numpy.__version__,
    }


DEVICE_CHOICES = ("auto", "cpu", "gpu")


def cpu_name() -> str:
    """The processor's model name, as /proc/cpuinfo gives it where it exists."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def select_device(choice: str) -> dict:
    """The device a run uses: `{"kind", "name", "tf_device"}`.

    `auto` takes the first GPU TensorFlow sees, else the CPU; `gpu` with no
    GPU is a usage error.
    """
    from beanstrain.errors import UsageError

    if choice not in DEVICE_CHOICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {choice!r}")
    tf = load_tensorflow()
    gpus = tf.config.list_physical_devices("GPU") if choice != "cpu" else []
    if choice == "gpu" and not gpus:
        raise UsageError("--device gpu: TensorFlow sees no GPU on this machine (use --device cpu or auto)")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return {"kind": "gpu", "name": details.get("device_name", gpus[0].name), "tf_device": "/GPU:0"}
    return {"kind": "cpu", "name": f"{cpu_name()} ({os.cpu_count()} cores)", "tf_device": "/CPU:0"}
