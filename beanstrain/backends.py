"""The Keras backends a run can train on: TensorFlow, JAX or PyTorch, and choosing one before Keras loads.

    >>> sorted(BACKENDS)
    ['jax', 'tensorflow', 'torch']
    >>> chosen_backend("jax", environ={})
    'jax'
    >>> chosen_backend(None, environ={"KERAS_BACKEND": "torch"}), chosen_backend(None, environ={})
    ('torch', 'tensorflow')

Keras 3 runs the same network on each.  `--backend` wins, then `KERAS_BACKEND`,
then TensorFlow.  Keras reads its backend once, when it is first imported,
so `use_backend` is called before anything imports Keras and refuses, in one
line, a process that already runs Keras on another backend.  A run on JAX or
PyTorch never imports TensorFlow.  This module imports no framework.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass

from beanstrain.errors import UsageError, lookup


@dataclass(frozen=True)
class Backend:
    """One Keras backend: the package it needs and the extra that installs it."""

    package: str  # the module Keras imports for it
    extra: str | None  # `pip install "beanstrain[extra]"`; None: a default dependency
    summary: str  # one line for --help and docs/backends.md


BACKENDS: dict[str, Backend] = {
    "tensorflow": Backend("tensorflow", None, "the default; every engine, tf.distribute on several devices"),
    "jax": Backend("jax", "jax", "XLA on CPU or CUDA; several devices through keras.distribution"),
    "torch": Backend("torch", "torch", "PyTorch on CPU, CUDA or Apple's MPS; one device"),
}
BACKEND_CHOICES = tuple(BACKENDS)
DEFAULT_BACKEND = "tensorflow"


def chosen_backend(flag: str | None, environ=None) -> str:
    """The backend a command runs on: `--backend`, else `KERAS_BACKEND`, else TensorFlow."""
    environ = os.environ if environ is None else environ
    name = flag or environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    lookup("backend", name, BACKENDS)
    return name


def keras_backend_loaded() -> str | None:
    """The backend of the Keras this process has already imported, or None before it has."""
    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    return backend() if callable(backend) else None


def use_backend(flag: str | None) -> str:
    """Make `flag` (or `KERAS_BACKEND`, or TensorFlow) the backend Keras loads with; returns its name.

    A backend whose package is missing, or a process whose Keras already runs on another backend,
    is a one-line `UsageError`."""
    name = chosen_backend(flag)
    entry = BACKENDS[name]
    if importlib.util.find_spec(entry.package) is None:
        install = f'pip install "beanstrain[{entry.extra}]"' if entry.extra else f"pip install {entry.package}"
        raise UsageError(f"--backend {name}: {entry.package} is not installed; {install}")
    loaded = keras_backend_loaded()
    if loaded is not None and loaded != name:
        raise UsageError(f"--backend {name}: Keras already runs on {loaded} in this process; a backend is chosen "
                         "before Keras is first imported, so run the command in a new process")
    os.environ["KERAS_BACKEND"] = name
    return name


def active_backend() -> str:
    """The backend Keras runs on (or will load with) in this process."""
    return keras_backend_loaded() or chosen_backend(None)
