"""Importing Keras and TensorFlow, quietly and only when a command needs them.

Importing TensorFlow takes seconds, so nothing in `beanstrain --help`,
`beanstrain list` or `beanstrain data` calls this; training, evaluation,
prediction and plotting do:

    >>> keras = load_keras()

Which device a run trains on is chosen here too: one (`select_device`), or
several replicas of the network under `tf.distribute.MirroredStrategy`
(`select_devices`, `distribution_strategy`):

    >>> select_devices("cpu", count=1)["strategy"] is None
    True
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
import tempfile

import numpy

import beanstrain
from beanstrain.errors import UsageError


def load_keras():
    """Keras on the TensorFlow backend; TensorFlow's start-up notices obey TF_CPP_MIN_LOG_LEVEL."""
    # These must be set before the first import to take effect; a user's own setting wins.
    # Level 3 (errors hidden too) also hides the CUDA probe's error lines on machines without a GPU.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow turns its oneDNN kernels on only for some CPUs; elsewhere its
    # own convolutions train LeNet-5 about three times slower.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    level = native_log_level()
    first_import = "tensorflow" not in sys.modules
    with _native_notices_filtered(level) if first_import and level > 0 else contextlib.nullcontext():
        import keras

    return keras


# TF_CPP_MIN_LOG_LEVEL hides native lines below it: 0 shows all, 1 hides info, 2 warnings too, 3 errors too.
SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# A native log line: I0000 00:00:1795508111.457414   12469 port.cc:153] oneDNN custom operations are on...
NATIVE_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:")
# absl's warning, printed before TensorFlow sets its log level up: the level never reaches it.
ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"


def native_log_level() -> int:
    """The level TF_CPP_MIN_LOG_LEVEL asks for, as TensorFlow reads it (unset or not a number: 0)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def shown_notices(text: str, level: int) -> str:
    """The lines of `text` that a log level lets through; a line with no severity of its own
    continues the line above it, and lines before any native line (Python's) are always kept.

    >>> shown_notices("I0000 00:00:17.4 1 port.cc:153] oneDNN custom operations are on", level=1)
    ''
    """
    kept, severity = [], None
    for line in text.splitlines(keepends=True):
        match = NATIVE_LINE.match(line)
        if match:
            severity = SEVERITY[match.group(1)]
        elif line.startswith(ABSL_PREAMBLE):
            severity = SEVERITY["W"]
        if severity is None or severity >= level:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _native_notices_filtered(level: int):
    """Hold what file descriptor 2 receives during the block, then pass on what `level` shows.

    TensorFlow's import writes notices (absl's start-up warning, the oneDNN
    and CUDA-probe lines) straight to descriptor 2 before its own log level
    applies, so they would open every run's output whatever the user set.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to filter
        yield
        return
    try:
        held = tempfile.TemporaryFile()  # noqa: SIM115 (held past the block, closed in its finally)
    except OSError:  # nowhere to hold them: drop them, as the level would at its usual 3
        held = open(os.devnull, "w+b")  # noqa: SIM115 (as above)
    try:
        sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        shown = shown_notices(held.read().decode("utf-8", "replace"), level)
        held.close()
        if shown:
            os.write(2, shown.encode("utf-8"))


def load_tensorflow():
    load_keras()
    import tensorflow as tf

    return tf


def library_versions() -> dict[str, str]:
    """Versions recorded beside every run, so a result can be reproduced."""

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


def select_devices(choice: str, count: int) -> dict:
    """The devices a run trains on: `select_device`'s record plus `{"strategy", "devices"}`.

    One device is `select_device`'s choice.  Several are the first `count`
    GPUs, or, where there is no GPU (or `choice` is cpu), the CPU split into
    `count` logical devices; the network is then mirrored on each under
    `tf.distribute.MirroredStrategy`.  Logical CPU devices can only be set up
    before TensorFlow's runtime starts, which a new `beanstrain fit` process
    does (see `split_cpu`).
    """
    if count < 1:
        raise UsageError(f"--devices must be 1 or more, got {count}")
    first = select_device(choice)
    if count == 1:
        return {**first, "strategy": None, "devices": [first["tf_device"]]}
    if first["kind"] == "gpu":
        gpus = load_tensorflow().config.list_physical_devices("GPU")
        if len(gpus) < count:
            found = f"{len(gpus)} GPU" + "s" * (len(gpus) > 1)
            raise UsageError(f"--devices {count}: TensorFlow sees {found} on this machine; use --devices "
                             f"{len(gpus)} or fewer, or --device cpu for {count} logical CPU devices")
        return {"kind": "gpu", "name": f"{count} x {first['name']}", "tf_device": None,
                "strategy": "MirroredStrategy", "devices": [f"/GPU:{index}" for index in range(count)]}
    cores = os.cpu_count() or 1
    if count > cores:
        raise UsageError(f"--devices {count}: with no GPU in use the CPU is split into logical devices, at most "
                         f"one per core ({cores}); use --devices {cores} or fewer")
    split_cpu(count)
    return {"kind": "cpu", "name": f"{count} logical devices of {cpu_name()} ({cores} cores)", "tf_device": None,
            "strategy": "MirroredStrategy", "devices": [f"/CPU:{index}" for index in range(count)]}


def split_cpu(count: int) -> None:
    """Make the CPU `count` logical devices (they share its cores), as TensorFlow's own tests do.

    TensorFlow fixes its devices when its runtime starts (at the first
    tensor), so this works in a new process before any training; a process
    whose runtime already started with fewer devices gets a one-line error.
    """
    tf = load_tensorflow()
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # the runtime has started: what it has is what there is
        started = len(tf.config.list_logical_devices("CPU"))
        if started < count:
            raise UsageError(f"--devices {count}: TensorFlow already started in this process with {started} CPU "
                             f"device{'s' * (started > 1)}; logical CPU devices are set up before it starts, so "
                             "train in a new process (beanstrain fit --devices ...)") from None


def distribution_strategy(device: dict):
    """The `tf.distribute` strategy a `select_devices` record asks for; None for a single device."""
    if not device.get("strategy"):
        return None
    return load_tensorflow().distribute.MirroredStrategy(device["devices"])
