"""Where and how a model trains: seeds, determinism, mixed precision, the tf.distribute strategy, the machine.

The same code runs on a laptop CPU and on a GPU: ``setup(run)`` picks the strategy (``run.distribution``),
sets the Keras dtype policy (``run.mixed_precision``) and seeds Python, NumPy and TensorFlow. With op
determinism on, the same seed on CPU gives the same numbers.

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

if TYPE_CHECKING:
    import tensorflow as tf

    from dltm.params import RunSettings


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow/Keras RNGs, and deterministic TF kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def strategy_for(name: str) -> tf.distribute.Strategy:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    raise ValueError(f"params.yaml: run.distribution {name!r} is not auto, default, mirrored or one_device")


def setup(run: RunSettings, seed: int | None = None) -> tf.distribute.Strategy:
    """Seed (``run.seed`` unless given), set the dtype policy and return the strategy to build models in."""
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
def _tensorflow_gpus() -> str:
    import tensorflow as tf

    gpu_names = []
    for g in tf.config.list_physical_devices("GPU"):
        try:
            gpu_names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # pragma: no cover
            gpu_names.append(g.name)
    return ", ".join(gpu_names) or "none"


def machine() -> dict[str, str]:
    """A description of where a result came from, for the report and the MLflow tags.

    ``gpu`` lists the GPUs TensorFlow sees when this process uses TensorFlow (every Keras task). A process that
    never imported it (chapter 2's NumPy tasks) computed on the CPU: ``gpu`` is 'none' there, and TensorFlow is
    not imported just to ask (seconds)."""
    return {
        "host_cpu": _host_cpu(),
        "gpu": _tensorflow_gpus() if "tensorflow" in sys.modules else "none",
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_summary() -> str:
    m = machine()
    device = m["gpu"] if m["gpu"] != "none" else f"CPU ({m['host_cpu']})"
    return f"{device}; TF {m['tensorflow']}, Keras {m['keras']}"


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
