"""Importing Keras on its backend, quietly and only when a command needs it, and choosing the devices.

Importing TensorFlow takes seconds, so nothing in `beanstrain --help`,
`beanstrain list` or `beanstrain data` calls this; training, evaluation,
prediction and plotting do:

    >>> keras = load_keras()

Keras loads on the backend `backends.use_backend` chose (TensorFlow unless a
command's `--backend` or `KERAS_BACKEND` says otherwise); TensorFlow itself is
imported only on the TensorFlow backend.

Which device a run trains on is chosen here too, from what the backend sees:
one (`select_device`: a CUDA GPU on every backend, Apple's MPS on PyTorch, or
the CPU), or several replicas of the network (`select_devices`): under
`tf.distribute.MirroredStrategy` on TensorFlow, `keras.distribution.DataParallel`
on JAX:

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
from beanstrain.backends import active_backend
from beanstrain.errors import UsageError


def load_keras():
    """Keras on the chosen backend (TensorFlow by default); TensorFlow's start-up notices obey
    TF_CPP_MIN_LOG_LEVEL."""
    # These must be set before the first import to take effect; a user's own setting wins.
    # Level 3 (errors hidden too) also hides the CUDA probe's error lines on machines without a GPU.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        import keras

        return keras
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


def to_numpy(value) -> numpy.ndarray:
    """A tensor or variable of any backend as a NumPy array."""
    return numpy.asarray(load_keras().ops.convert_to_numpy(value))


def library_versions() -> dict[str, str]:
    """Versions recorded beside every run, so a result can be reproduced: Keras's backend's among them."""
    keras = load_keras()
    backend = keras.backend.backend()
    framework = sys.modules.get(backend) or __import__(backend)
    return {
        "beanstrain": beanstrain.__version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        backend: framework.__version__,
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
    """The device a run uses: `{"kind", "name", "tf_device", "placement"}`.

    `auto` takes the first GPU the backend sees (CUDA on every backend, Apple's MPS on PyTorch), else
    the CPU; `gpu` with no GPU is a usage error.  `placement` is the device's name for `keras.device`.
    """
    if choice not in DEVICE_CHOICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {choice!r}")
    backend = active_backend()
    gpu = find_gpus(backend)[:1] if choice != "cpu" else []
    if choice == "gpu" and not gpu:
        raise UsageError(f"--device gpu: {BACKEND_NAMES[backend]} sees no GPU on this machine "
                         "(use --device cpu or auto)")
    placement = gpu[0]["placement"] if gpu else "cpu:0"
    if backend == "torch":
        place_torch(placement)
    if gpu:
        return {"kind": "gpu", "name": gpu[0]["name"], "tf_device": "/GPU:0" if backend == "tensorflow" else None,
                "placement": placement}
    return {"kind": "cpu", "name": f"{cpu_name()} ({os.cpu_count()} cores)",
            "tf_device": "/CPU:0" if backend == "tensorflow" else None, "placement": placement}


def place_torch(placement: str) -> None:
    """Keras on PyTorch makes its tensors on the device KERAS_TORCH_DEVICE names when it is imported (a
    `keras.device` scope there leaves the network's weights without gradients), so the device is chosen
    before Keras loads; a process whose Keras already chose another one is refused."""
    device = "cpu" if placement.startswith("cpu") else placement
    if "keras" not in sys.modules:
        os.environ["KERAS_TORCH_DEVICE"] = device
        return
    import keras

    current = str(keras.src.backend.torch.core.get_device())
    if current.split(":")[0] != device.split(":")[0]:
        raise UsageError(f"Keras already runs PyTorch on {current} in this process; choose the device in a new "
                         "process")


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def find_gpus(backend: str) -> list[dict]:
    """The GPUs a backend sees, each `{"name", "placement"}`, in the backend's order."""
    if backend == "tensorflow":
        tf = load_tensorflow()
        return [{"name": tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name),
                 "placement": f"gpu:{index}"} for index, gpu in enumerate(tf.config.list_physical_devices("GPU"))]
    if backend == "jax":
        load_keras()
        import jax

        return [{"name": device.device_kind, "placement": f"gpu:{index}"}
                for index, device in enumerate(jax.devices()) if device.platform == "gpu"]
    import torch  # not Keras yet: on PyTorch the device is chosen before Keras loads (`place_torch`)

    if torch.cuda.is_available():
        return [{"name": torch.cuda.get_device_name(index), "placement": f"cuda:{index}"}
                for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        return [{"name": "Apple GPU (MPS)", "placement": "mps"}]
    return []


def select_devices(choice: str, count: int) -> dict:
    """The devices a run trains on: `select_device`'s record plus `{"strategy", "devices"}`.

    One device is `select_device`'s choice.  Several are the first `count`
    GPUs, or, where there is no GPU (or `choice` is cpu), the CPU split into
    `count` logical devices; the network is then mirrored on each: under
    `tf.distribute.MirroredStrategy` on TensorFlow, `keras.distribution.DataParallel`
    on JAX (PyTorch trains on one device).  Logical CPU devices can only be set
    up before the backend's runtime starts, which a new `beanstrain fit`
    process does (see `split_cpu`).
    """
    if count < 1:
        raise UsageError(f"--devices must be 1 or more, got {count}")
    backend = active_backend()
    if count > 1 and backend == "torch":
        raise UsageError(f"--devices {count}: the torch backend trains on one device; use --backend tensorflow "
                         "or jax to train on several")
    if count > 1 and backend == "jax":
        split_jax_cpu(count)  # before JAX starts, or the CPU stays one device
    first = select_device(choice)
    if count == 1:
        return {**first, "strategy": None, "devices": [first["tf_device"] or first["placement"]]}
    strategy = "MirroredStrategy" if backend == "tensorflow" else "DataParallel"
    if first["kind"] == "gpu":
        gpus = find_gpus(backend)
        if len(gpus) < count:
            found = f"{len(gpus)} GPU" + "s" * (len(gpus) > 1)
            raise UsageError(f"--devices {count}: {BACKEND_NAMES[backend]} sees {found} on this machine; use "
                             f"--devices {len(gpus)} or fewer, or --device cpu for {count} logical CPU devices")
        names = [f"/GPU:{index}" for index in range(count)] if backend == "tensorflow" else \
            [gpu["placement"] for gpu in gpus[:count]]
        return {"kind": "gpu", "name": f"{count} x {first['name']}", "tf_device": None, "placement": None,
                "strategy": strategy, "devices": names}
    cores = os.cpu_count() or 1
    if count > cores:
        raise UsageError(f"--devices {count}: with no GPU in use the CPU is split into logical devices, at most "
                         f"one per core ({cores}); use --devices {cores} or fewer")
    if backend == "tensorflow":
        split_cpu(count)
        names = [f"/CPU:{index}" for index in range(count)]
    else:
        names = [f"cpu:{index}" for index in range(count)]
    return {"kind": "cpu", "name": f"{count} logical devices of {cpu_name()} ({cores} cores)", "tf_device": None,
            "placement": None, "strategy": strategy, "devices": names}


def split_jax_cpu(count: int) -> None:
    """Ask XLA for `count` host devices, as JAX's own tests do; only a JAX not yet started can take it."""
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
        return
    import jax

    started = len(jax.devices("cpu"))
    if started < count:
        raise UsageError(f"--devices {count}: JAX already started in this process with {started} CPU "
                         f"device{'s' * (started > 1)}; train in a new process (beanstrain fit --devices ...)")


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
    """What mirrors the network on a `select_devices` record's devices: a `tf.distribute.MirroredStrategy`
    or a `keras.distribution.DataParallel` (each has a `scope()`); None for a single device."""
    if not device.get("strategy"):
        return None
    if device["strategy"] == "MirroredStrategy":
        return load_tensorflow().distribute.MirroredStrategy(device["devices"])
    return load_keras().distribution.DataParallel(devices=device["devices"])


def device_scope(device: dict):
    """Where one device's work is placed: TensorFlow's `tf.device`, `keras.device` on JAX; on PyTorch Keras
    already makes everything on the run's device (`place_torch`)."""
    if device.get("tf_device"):
        return load_tensorflow().device(device["tf_device"])
    if active_backend() == "torch":
        return contextlib.nullcontext()
    return load_keras().device(device["placement"])
