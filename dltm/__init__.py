"""dltm: the shared library behind the chapters of 《深度学习与文本挖掘》 on Keras 3 (TensorFlow 2.21 by default).

Every chapter module in ``pipelines/`` imports from here; every DVC stage in ``stages/`` is a thin wrapper
around it. The pieces, each written once:

- ``dltm.datasets``   the dataset registry, verified downloads, the offline mirror
- ``dltm.text``       Kim's clean_str and a tokenizer with the Keras 2 Tokenizer's semantics
- ``dltm.params``     params.yaml, the run-wide caps and settings
- ``dltm.runtime``    the Keras backend, seeds, determinism, mixed precision, data parallelism
- ``dltm.batches``    input pipelines on any backend (tf.data on TensorFlow, a PyDataset elsewhere)
- ``dltm.training``   one Keras training loop
- ``dltm.decoding``   greedy and beam-search decoding of sequence models
- ``dltm.evaluation`` classification and translation metrics, the pictures
- ``dltm.tracking``   MLflow, never allowed to lose a finished result
- ``dltm.tasks``      the task registry: task id -> chapter module, book section, reference numbers
- ``dltm.report``     reports/results.md
- ``dltm.staleness``  which committed results no longer match the checkout (DVC's status)

**A quiet TensorFlow.** Importing this package (which every entry point does before anything imports
TensorFlow: ``stages``, ``pipelines``, ``benchmarks``) imports neither Keras nor TensorFlow, and silences
TensorFlow's start-up noise for the whole process. Its C++ start-up messages (oneDNN's notice, "Could not find
cuda drivers", the CPU-feature notice and, without a GPU, the error line ``failed call to cuInit``) are written
before Python can configure anything, so ``TF_CPP_MIN_LOG_LEVEL`` alone leaves most of them. Here
``TF_CPP_MIN_LOG_LEVEL`` is set to 3 unless the environment sets it, and the messages below that level that
TensorFlow's first import writes are dropped; everything else it writes (Python warnings, tracebacks) passes
through. Numerics are untouched: oneDNN stays as TensorFlow chooses, only its notice goes. MLflow's INFO lines
("Started monitoring system metrics", ...) and artifact progress bars go too, unless set otherwise.
``DLTM_VERBOSE=1`` turns all of this off; a ``TF_CPP_MIN_LOG_LEVEL`` of your own is honoured, for the import's
messages too.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__version__ = "0.1.0"

VERBOSE_ENV = "DLTM_VERBOSE"
QUIET_TF_LOG_LEVEL = "3"
"""TF_CPP_MIN_LOG_LEVEL by default: 0 shows everything, 1 hides INFO, 2 also WARNING, 3 also ERROR (e.g.
``failed call to cuInit`` on a machine without a GPU; a real failure still raises a Python exception)."""

QUIET_MLFLOW = {"MLFLOW_LOGGING_LEVEL": "WARNING", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
"""MLflow's settings by default: no INFO lines ("Started monitoring system metrics", ...), no progress bar when
artifacts are logged or downloaded."""


def verbose() -> bool:
    """Whether ``DLTM_VERBOSE`` asks for everything TensorFlow and Keras say (any value but '', 0, false, no)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


# an absl/TF C++ log line: "I0000 00:00:1796038964.297530   24291 port.cc:153] oneDNN custom operations ..."
_ABSL_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+(?:\.\d+)?\s+\d+ \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_PYTHON_WARNING = re.compile(r"\S+:\d+: \w*Warning: ")


def drop_tf_log_lines(text: str, min_level: int) -> str:
    """``text`` (what TensorFlow's import wrote to stderr) without the C++ log messages below ``min_level``
    (TF_CPP_MIN_LOG_LEVEL's scale: I=0, W=1, E=2, F=3). A message's continuation lines go with it; absl's banner
    about messages before ``InitializeLog`` stays only when the message after it does. Any other line is kept."""
    kept, dropping, banner = [], False, None
    for line in text.splitlines(keepends=True):
        m = _ABSL_LINE.match(line)
        if line.rstrip("\r\n") == _ABSL_BANNER:
            banner, dropping = line, True
            continue
        if m:
            dropping = _SEVERITY[m.group(1)] < min_level
            if banner and not dropping:
                kept.append(banner)
            banner = None
        elif dropping and _PYTHON_WARNING.match(line):
            dropping = False  # a Python warning right after a dropped message is not its continuation
        if not dropping:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _filtered_stderr(min_level: int) -> Iterator[None]:
    """Collect what is written to file descriptor 2 (C++ and Python alike) and write it back through
    :func:`drop_tf_log_lines` at the end, even when the body raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr to filter (closed, or not a file)
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = drop_tf_log_lines(tmp.read().decode("utf-8", "replace"), min_level)
            if kept:
                os.write(2, kept.encode("utf-8"))


class _QuietImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``tensorflow`` the usual way the first time it is imported (by whichever module: Keras, a chapter,
    this one) and runs its import inside :func:`_filtered_stderr`; then steps aside."""

    def __init__(self, min_level: int):
        self.min_level = min_level
        self.loader: importlib.abc.Loader | None = None

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):  # once, and the real finders answer
            sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # TensorFlow sees its own loader
        with _filtered_stderr(self.min_level):
            self.loader.exec_module(module)


def quiet() -> None:
    """Silence TensorFlow's start-up noise in this process (see the module's docstring), MLflow's INFO lines and
    its artifact progress bars (:data:`QUIET_MLFLOW`, each unless set), unless ``DLTM_VERBOSE`` is set.
    TensorFlow's part has an effect only before TensorFlow is first imported; calling it again is a no-op."""
    if verbose():
        return
    for name, value in QUIET_MLFLOW.items():
        os.environ.setdefault(name, value)
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietImport) for f in sys.meta_path):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_TF_LOG_LEVEL)
    try:
        level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:  # TensorFlow reads a non-number as 0
        level = 0
    if level > 0:
        sys.meta_path.insert(0, _QuietImport(level))


quiet()
