"""Where and how a model trains: the Keras backend, seeds, determinism, mixed precision, data parallelism, the
machine.

The same code runs on a laptop CPU and on a GPU, on any Keras 3 backend (issue 14): ``select_backend`` sets
``KERAS_BACKEND`` from ``run.backend`` before Keras is imported (TensorFlow by default, the tested reference;
JAX; PyTorch). ``setup(run)`` picks the data-parallel scope (``run.distribution``: a tf.distribute strategy on
TensorFlow, ``keras.distribution.DataParallel`` on JAX), sets the Keras dtype policy (``run.mixed_precision``)
and seeds Python, NumPy and the backend. The same seed on the same backend and machine gives the same numbers
(TensorFlow with op determinism on; JAX's CPU kernels are deterministic).

Keras and TensorFlow are imported by the functions that use them, never by importing this module: a stage that
needs no Keras (chapter 2's NumPy tasks, ``download``, ``prepare``) starts in a fraction of the ~4 s that
importing Keras costs.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from typing import TYPE_CHECKING

from dltm.cli import OneLineWarning

if TYPE_CHECKING:
    from dltm.params import RunSettings


BACKENDS = ("tensorflow", "jax", "torch")


class BackendWarning(OneLineWarning):
    """``KERAS_BACKEND`` in the environment differs from ``run.backend``: the environment's is used."""


def select_backend(name: str) -> str:
    """Make ``name`` (``run.backend``) the Keras backend of this process, and return the backend in use.

    Sets ``KERAS_BACKEND`` unless the environment already has one: then the environment wins (as Keras itself
    does), with a :class:`BackendWarning` when the two differ. Must run before Keras is first imported; once it
    is, the backend Keras loaded is returned (with the same warning when it is not ``name``). Raises ValueError
    for a name that is not one of :data:`BACKENDS`."""
    if name not in BACKENDS:
        raise ValueError(f"params.yaml: run.backend {name!r} is not one of {', '.join(BACKENDS)}")
    env = os.environ.get("KERAS_BACKEND")
    if "keras" in sys.modules:
        used = sys.modules["keras"].backend.backend()
    elif env:
        used = env
    else:
        os.environ["KERAS_BACKEND"] = used = name
    if used != name:
        import warnings

        why = "KERAS_BACKEND is set" if env else "Keras was imported before run.backend was read"
        warnings.warn(f"run.backend is {name} but Keras uses {used} ({why}); the results are {used}'s",
                      BackendWarning, stacklevel=2)
    return used


def backend() -> str:
    """The Keras backend of this process (imports Keras)."""
    import keras

    return keras.backend.backend()


def seed_everything(seed: int) -> None:
    """Python, NumPy and the backend's RNGs (``keras.utils.set_random_seed``); on TensorFlow, deterministic
    kernels too (``tf.config.experimental.enable_op_determinism``)."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class SingleDevice:
    """The scope to build a model in when nothing is distributed: ``scope()`` does nothing, one replica.
    The same interface as ``tf.distribute.Strategy`` where the training loop uses it."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


DISTRIBUTIONS = ("auto", "default", "mirrored", "one_device")


def strategy_for(name: str):
    """The data-parallel scope for ``run.distribution``, on the current backend.

    TensorFlow: ``auto`` is a MirroredStrategy over all GPUs when there are several, else TensorFlow's default
    strategy; ``mirrored``, ``one_device`` and ``default`` are those tf.distribute strategies. JAX: ``auto`` and
    ``mirrored`` set ``keras.distribution.DataParallel`` over every accelerator when there are several (the
    batch is split across them); otherwise, and always on PyTorch (one device), :class:`SingleDevice`. Raises
    ValueError for another name."""
    if name not in DISTRIBUTIONS:
        raise ValueError(f"params.yaml: run.distribution {name!r} is not auto, default, mirrored or one_device")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if name == "auto":
            return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
        if name == "mirrored":
            return tf.distribute.MirroredStrategy()
        if name == "one_device":
            return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
        return tf.distribute.get_strategy()
    if keras.backend.backend() == "jax" and name in ("auto", "mirrored"):
        devices = [d for d in keras.distribution.list_devices() if not d.lower().startswith("cpu")]
        if len(devices) > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            strategy = SingleDevice()
            strategy.num_replicas_in_sync = len(devices)
            return strategy
    return SingleDevice()


def setup(run: RunSettings, seed: int | None = None):
    """Seed (``run.seed`` unless given), set the dtype policy and return the scope to build models in
    (:func:`strategy_for`: its ``scope()`` and ``num_replicas_in_sync``)."""
    import keras

    seed_everything(run.seed if seed is None else seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if run.mixed_precision else "float32")
    return strategy_for(run.distribution)


def _version(module: str) -> str:
    """The version of ``module``: its ``__version__`` when this process imported it, else the installed
    distribution's (read without importing it), else 'not installed'."""
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def _host_cpu() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu} x{os.cpu_count()}"


@lru_cache(maxsize=1)
def _gpus(backend_name: str) -> str:
    """The GPUs the backend computes on, by name ('none' without one)."""
    names: list[str] = []
    if backend_name == "tensorflow":
        import tensorflow as tf

        for g in tf.config.list_physical_devices("GPU"):
            try:
                names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
            except Exception:  # pragma: no cover
                names.append(g.name)
    elif backend_name == "jax":
        import jax

        names = [getattr(d, "device_kind", str(d)) for d in jax.devices() if d.platform == "gpu"]
    elif backend_name == "torch":
        import torch

        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ", ".join(names) or "none"


def machine() -> dict[str, str]:
    """A description of where a result came from, for the report and the MLflow tags.

    ``backend`` is the Keras backend when this process imported Keras, and ``gpu`` the GPUs that backend sees.
    A process that never imported Keras (chapter 2's NumPy tasks) computed on the CPU with NumPy: ``backend``
    is 'numpy' and ``gpu`` 'none' there, and no backend is imported just to ask (seconds)."""
    used = sys.modules["keras"].backend.backend() if "keras" in sys.modules else "numpy"
    return {
        "host_cpu": _host_cpu(),
        "backend": used,
        "gpu": _gpus(used) if used != "numpy" else "none",
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "jax": _version("jax"),
        "torch": _version("torch"),
        "keras": _version("keras"),
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_summary() -> str:
    m = machine()
    device = m["gpu"] if m["gpu"] != "none" else f"CPU ({m['host_cpu']})"
    version = {"tensorflow": f"TF {m['tensorflow']}", "jax": f"JAX {m['jax']}", "torch": f"PyTorch {m['torch']}",
               "numpy": "NumPy"}[m["backend"]]
    return f"{device}; {version}, Keras {m['keras']}"


def git_info(cwd: str | None = None) -> dict[str, str]:
    """The commit and whether the tree is dirty, or 'unknown' outside a git checkout."""
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = run("rev-parse", "HEAD")
        dirty = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": "unknown"}
    return {"commit": commit, "dirty": str(dirty).lower()}
