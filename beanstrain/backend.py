"""Importing Keras and TensorFlow, quietly and only when a command needs them.

Importing TensorFlow takes seconds, so nothing in `beanstrain --help`,
`beanstrain list` or `beanstrain data` calls this; training, evaluation,
prediction and plotting do:

    >>> keras = load_keras()
"""

from __future__ import annotations

import os
import platform


def load_keras():
    """Keras on the TensorFlow backend, with TensorFlow's C++ start-up chatter silenced."""
    # Both must be set before the first import to take effect; a user's own
    # setting wins.
    # Level 3 also hides the CUDA probe's error lines on machines without a GPU.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow turns its oneDNN kernels on only for some CPUs; elsewhere its
    # own convolutions train LeNet-5 about three times slower.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import keras

    return keras


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
