"""params.yaml: one section per task id, ``run`` for run-wide settings, ``prepare`` for the datasets.

``dvc exp run -S run.max_epochs=1`` and friends change these; the stages read them through here so that a
missing or misspelt key is an error that names the key and the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dltm.cli import UserError

PARAMS_FILE = Path(os.environ.get("DLTM_PARAMS", "params.yaml"))


class ParamError(UserError, ValueError):
    """A missing, misspelt or out-of-range param; the message names the file, the key and what is accepted."""


def load(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamError(f"{path}: not found (run the stages from the repository root)") from None
    except yaml.YAMLError as e:
        raise ParamError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected a mapping of sections")
    return data


def section(params: dict[str, Any], name: str, path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """One section (``name`` may be dotted, e.g. ``prepare.mr``), with a clear error when missing."""
    node: Any = params
    for i, part in enumerate(name.split(".")):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(name.split(".")[:i]) or "the top level"
            raise ParamError(f"{path}: no section {name!r} (missing key {part!r} under {where})")
        node = node[part]
    if not isinstance(node, dict):
        raise ParamError(f"{path}: {name} should be a mapping, got {type(node).__name__}")
    return dict(node)


def require(sec: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``sec[key]``, checked for presence and type; the error names ``where.key``."""
    if key not in sec:
        raise ParamError(f"params.yaml: {where}.{key} is missing")
    value = sec[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool and bool not in _tuple(kind)):
        want = " or ".join(k.__name__ for k in _tuple(kind))
        raise ParamError(f"params.yaml: {where}.{key} should be {want}, got {value!r}")
    return value


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


@dataclass(frozen=True)
class RunSettings:
    """The ``run`` section: run-wide settings every training stage reads."""

    seed: int = 1
    max_train_examples: int = 0
    """0: all. Otherwise train on the first N examples of the (shuffled) training split."""
    max_eval_examples: int = 0
    max_epochs: int = 0
    """0: each task's own epochs. Otherwise at most this many."""
    mixed_precision: bool = False
    distribution: str = "auto"
    """auto (MirroredStrategy over all GPUs when there are several, else the default), default, mirrored,
    one_device."""
    text_data: str = "mr"
    """The labelled texts chapter 7's MR classifiers train on: ``mr`` (the book's), or ``custom``: your own
    file, prepared by ``prepare@custom`` from ``prepare.custom.path`` (README, "Bring your own data")."""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RunSettings:
        sec = section(params, "run")
        unknown = set(sec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ParamError(f"params.yaml: unknown key(s) in run: {', '.join(sorted(unknown))}")
        s = cls(
            seed=require(sec, "seed", int, "run"),
            max_train_examples=require(sec, "max_train_examples", int, "run"),
            max_eval_examples=require(sec, "max_eval_examples", int, "run"),
            max_epochs=require(sec, "max_epochs", int, "run"),
            mixed_precision=require(sec, "mixed_precision", bool, "run"),
            distribution=require(sec, "distribution", str, "run"),
            text_data=require(sec, "text_data", str, "run") if "text_data" in sec else "mr",
        )
        for key in ("max_train_examples", "max_eval_examples", "max_epochs"):
            if getattr(s, key) < 0:
                raise ParamError(f"params.yaml: run.{key} must be >= 0 (0 means no cap)")
        if s.distribution not in ("auto", "default", "mirrored", "one_device"):
            raise ParamError(f"params.yaml: run.distribution must be auto, default, mirrored or one_device, "
                             f"got {s.distribution!r}")
        if s.text_data not in ("mr", "custom"):
            raise ParamError(f"params.yaml: run.text_data must be mr or custom, got {s.text_data!r}")
        return s

    def epochs(self, task_epochs: int) -> int:
        return min(task_epochs, self.max_epochs) if self.max_epochs else task_epochs

    def cap_train(self, n: int) -> int:
        return min(n, self.max_train_examples) if self.max_train_examples else n

    def cap_eval(self, n: int) -> int:
        return min(n, self.max_eval_examples) if self.max_eval_examples else n
