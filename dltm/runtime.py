"""Where and how a model trains: seeds, determinism, mixed precision, the tf.distribute strategy, the machine.

The same code runs on a laptop CPU and on a GPU: ``setup(run)`` picks the strategy (``run.distribution``),
sets the Keras dtype policy (``run.mixed_precision``) and seeds Python, NumPy and TensorFlow. With op
determinism on, the same seed on CPU gives the same numbers.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from dltm.params import RunSettings  # noqa: E402


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow/Keras RNGs, and deterministic TF kernels."""
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def strategy_for(name: str) -> tf.distribute.Strategy:
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
    seed_everything(run.seed if seed is None else seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if run.mixed_precision else "float32")
    return strategy_for(run.distribution)


@lru_cache(maxsize=1)
def machine() -> dict[str, str]:
    """A description of where a result came from, for the report and the MLflow tags."""
    gpus = tf.config.list_physical_devices("GPU")
    gpu_names = []
    for g in gpus:
        try:
            gpu_names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # pragma: no cover
            gpu_names.append(g.name)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "host_cpu": f"{cpu} x{os.cpu_count()}",
        "gpu": ", ".join(gpu_names) or "none",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
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
