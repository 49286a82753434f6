"""Loading Keras and its backend quietly, and saying which device trains.

TensorFlow, absl, CUDA and JAX write their start-up notices (absl's "All log messages before
absl::InitializeLog()", oneDNN, cudart_stub, "failed call to cuInit" on every CPU machine, JAX's
CUDA fallback) from native code straight to file descriptor 2, past Python's ``sys.stderr`` and
past ``TF_CPP_MIN_LOG_LEVEL``. :func:`load_keras` imports Keras and lists the devices with that
descriptor pointed at ``/dev/null`` (unless ``verbose``), so a run shows only sweeper's own lines,
and returns what the one line that matters says: :meth:`BackendInfo.describe`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from sweeper.environment import verbose_from_env

log = logging.getLogger(__name__)
# notices meant for the person at the console (the command line shows them as plain lines)
CONSOLE = logging.getLogger("sweeper.console")

_ENV_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's own C++ logging, once absl is set up
    "ABSL_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
}


def quiet_environment(env: dict[str, str] | os._Environ[str] | None = None) -> None:
    """Set the variables that keep the backends' own logging down (existing values win)."""
    target = os.environ if env is None else env
    for key, value in _ENV_DEFAULTS.items():
        target.setdefault(key, value)


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at ``/dev/null`` while the block runs (Python's output included)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to silence
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@dataclass(frozen=True)
class BackendInfo:
    keras_version: str
    backend: str  # tensorflow | jax | torch
    backend_version: str
    devices: tuple[str, ...]  # accelerators; empty on a CPU-only machine

    def describe(self) -> str:
        """E.g. ``Keras 3.15.1 on tensorflow 2.21.0, training on CPU (2 threads)``."""
        if self.devices:
            where = f"GPU{'s' if len(self.devices) > 1 else ''} " + ", ".join(self.devices)
        else:
            # a worker among several gets its share of the cores (sweeper.search.worker.worker_env)
            threads = os.environ.get("TF_NUM_INTRAOP_THREADS") or str(os.cpu_count() or 1)
            where = f"CPU ({threads} thread{'' if threads == '1' else 's'})"
        version = f" {self.backend_version}" if self.backend_version else ""
        return f"Keras {self.keras_version} on {self.backend}{version}, training on {where}"


_loaded: BackendInfo | None = None


def load_keras(verbose: bool | None = None) -> BackendInfo:
    """Import Keras (and so its backend) and list the accelerators, once per process.

    Unless ``verbose`` (default: ``$SWEEPER_VERBOSE`` set to a non-zero count) the backends'
    native start-up output is discarded; a failing import still raises as usual.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    if verbose is None:
        verbose = verbose_from_env()
    quiet_environment()
    with native_stderr_silenced(not verbose):
        import keras

        backend = keras.config.backend()
        devices = tuple(visible_devices(backend))
    if not verbose:
        _quiet_python_loggers()
    package = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, backend)
    try:
        backend_version = metadata.version(package)
    except metadata.PackageNotFoundError:
        backend_version = ""
    _loaded = BackendInfo(keras.__version__, backend, backend_version, devices)
    log.debug("backend: %s", _loaded.describe())
    return _loaded


def _quiet_python_loggers() -> None:
    """The backends' Python-side loggers keep to errors (absl's warnings, TensorFlow's)."""
    for name in ("absl", "tensorflow", "jax._src.xla_bridge"):
        logging.getLogger(name).setLevel(logging.ERROR)
    absl_logging: Any = sys.modules.get("absl.logging")
    if absl_logging is not None:
        absl_logging.set_verbosity(absl_logging.ERROR)


def visible_devices(backend: str) -> list[str]:
    """Accelerators the Keras backend sees (empty on a CPU-only machine)."""
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if backend == "tensorflow":
            import tensorflow as tf

            return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # a broken driver must not stop a sweep; it just reports no GPU
        log.debug("could not list devices", exc_info=True)
    return []
