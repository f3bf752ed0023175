"""params.yaml: one section per task id, ``run`` for run-wide settings, ``prepare`` for the datasets.

``dvc exp run -S run.max_epochs=1`` and friends change these; the stages read them through here so that a
missing, misspelt or out-of-range key is an error that names the file, the key and what is accepted.

The file is read as DVC reads it (ruamel.yaml, YAML 1.2: ``2e-2`` is the number 0.02, as ``dvc exp run -S``
and ``dvc params diff`` see it). Each chapter module declares the keys of each task's section with a
:class:`Spec` (``PARAMS`` beside its ``TASKS``); :func:`validate` refuses an unknown key, listing the known
ones, and a value outside its spec, before anything is trained.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltm.cli import UserError

PARAMS_FILE = Path(os.environ.get("DLTM_PARAMS", "params.yaml"))


class ParamError(UserError, ValueError):
    """A missing, misspelt or out-of-range param; the message names the file, the key and what is accepted."""


def load(path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """The whole params file, parsed as DVC parses it (ruamel.yaml's safe loader, YAML 1.2).

    Raises ParamError when the file is missing, not YAML, or not a mapping."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))  # as dvc.utils.serialize.parse_yaml
    except FileNotFoundError:
        raise ParamError(f"{path}: not found (run the stages from the repository root)") from None
    except YAMLError as e:
        raise ParamError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
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
    """auto (data parallel over all GPUs when there are several, else one device), default, mirrored,
    one_device (``dltm.runtime.strategy_for``)."""
    backend: str = "tensorflow"
    """The Keras backend: tensorflow (the default and tested reference), jax or torch (``dltm.runtime``)."""
    text_data: str = "mr"
    """The labelled texts chapter 7's MR classifiers train on: ``mr`` (the book's), or ``custom``: your own
    file, prepared by ``prepare_custom`` from ``prepare.custom.path`` (README, "Bring your own data")."""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RunSettings:
        """The ``run`` section, checked against :data:`RUN`. Raises ParamError naming the key."""
        sec = validate("run", section(params, "run"), RUN)
        missing = [k for k in RUN if k not in sec and k not in ("text_data", "backend")]
        if missing:
            raise ParamError(f"params.yaml: run.{missing[0]} is missing")
        return cls(**sec)

    def epochs(self, task_epochs: int) -> int:
        return min(task_epochs, self.max_epochs) if self.max_epochs else task_epochs

    def cap_train(self, n: int) -> int:
        return min(n, self.max_train_examples) if self.max_train_examples else n

    def cap_eval(self, n: int) -> int:
        return min(n, self.max_eval_examples) if self.max_eval_examples else n


RUN: dict[str, Spec] = {}  # filled below, once Spec exists: what the run section accepts


# ---- what each key accepts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What one params.yaml key accepts: a type, and optionally null, a range, a set of choices, list items or
    the keys of a nested mapping. :meth:`check` returns the value (an int given for a float as a float) or
    raises ParamError naming the key and what is accepted."""

    kind: type
    """int, float, bool, str, list or dict."""
    null: bool = False
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    items: Spec | None = None
    """For a list: the spec of each item."""
    min_items: int = 0
    fields: Mapping[str, Spec] = field(default_factory=dict)
    """For a mapping (a nested section): the spec of each key; no other key is accepted."""

    def describe(self) -> str:
        if self.choices:
            text = "one of " + ", ".join(str(c) for c in self.choices)
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is list:
            text = f"a list of {'at least ' + str(self.min_items) + ' ' if self.min_items else ''}" \
                   f"({self.items.describe() if self.items else 'values'})"
        elif self.kind is dict:
            text = "a mapping of " + ", ".join(self.fields)
        else:
            text = {int: "an integer", float: "a number", str: "a string"}[self.kind]
            if self.low is not None and self.high is not None:
                left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
                text += f" in {left}{self.low:g}, {self.high:g}{right}"
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {self.low:g}"
            elif self.high is not None:
                text += f" {'<' if self.high_open else '<='} {self.high:g}"
        return f"null or {text}" if self.null else text

    def check(self, value: Any, where: str, file: str = "params.yaml") -> Any:
        def bad() -> ParamError:
            return ParamError(f"{file}: {where} should be {self.describe()}, got {value!r}")

        if value is None:
            if self.null:
                return None
            raise bad()
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (isinstance(value, bool) and self.kind is not bool):
            raise bad()
        if self.kind is float and not math.isfinite(value):
            raise bad()
        if self.choices and value not in self.choices:
            raise bad()
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise bad()
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise bad()
        if self.kind is list:
            if len(value) < self.min_items:
                raise bad()
            if self.items is not None:
                value = [self.items.check(v, f"{where}[{i}]", file) for i, v in enumerate(value)]
        if self.kind is dict and self.fields:
            value = validate(where, value, self.fields, file)
        return value


def Int(low: int | None = None, high: int | None = None, null: bool = False) -> Spec:  # noqa: N802
    return Spec(int, null=null, low=low, high=high)


def Float(low: float | None = None, high: float | None = None, low_open: bool = False,  # noqa: N802
          high_open: bool = False, null: bool = False) -> Spec:
    return Spec(float, null=null, low=low, high=high, low_open=low_open, high_open=high_open)


def Choice(*choices: Any, null: bool = False) -> Spec:  # noqa: N802
    kind = type(choices[0])
    return Spec(kind, null=null, choices=tuple(choices))


def List(items: Spec, min_items: int = 1) -> Spec:  # noqa: N802
    return Spec(list, items=items, min_items=min_items)


def Section(**fields: Spec) -> Spec:  # noqa: N802
    return Spec(dict, fields=fields)


BOOL = Spec(bool)
STR = Spec(str)
POSITIVE_INT = Int(1)
FRACTION = Float(0.0, 1.0, high_open=True)
"""[0, 1): a dropout rate, a validation share."""
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "nadam", "adadelta", "adamax",
              "adafactor", "ftrl", "lion")
"""Keras 3's optimizers by name, and the book's 4.4 'momentum' and 'nesterov' (dltm.training.optimizer)."""

COMMON: dict[str, Spec] = {
    # training (dltm.training.FitSettings)
    "epochs": POSITIVE_INT,
    "batch_size": POSITIVE_INT,
    "optimizer": Choice(*OPTIMIZERS),
    "learning_rate": Float(0.0, low_open=True, null=True),
    "clipnorm": Float(0.0, low_open=True, null=True),
    "validation_split": FRACTION,
    "early_stopping_patience": Int(0),
    # layers
    "dropout": FRACTION,
    "vocab_size": Int(1, null=True),
    "embed_size": POSITIVE_INT,
    "hidden_size": POSITIVE_INT,
    "filter_sizes": List(POSITIVE_INT),
    "filter_nums": POSITIVE_INT,
    "max_norm": Float(0.0, low_open=True, null=True),
    "conv": Choice("1d", "2d"),
    "masking": BOOL,
    "peephole": Choice("full", "diagonal"),
    "book_from_logits": BOOL,
    "init_scale": Float(0.0, low_open=True),
    # data
    "test_size": Float(0.0, 1.0, low_open=True, high_open=True),
    # chapter 6's embeddings and their evaluation
    "vocabulary_size": Int(2),
    "vector_size": POSITIVE_INT,
    "window": POSITIVE_INT,
    "neighbours": Choice("cosine", "dot"),
    "restrict_vocab": POSITIVE_INT,
    # chapter 2
    "eta": Float(0.0, low_open=True),
    "initial_weights": List(Float()),
}
"""The keys several tasks share, with one meaning everywhere. A chapter's ``PARAMS`` takes them by name
(:func:`keys`) and adds its own."""


def keys(*names: str, **own: Spec) -> dict[str, Spec]:
    """The spec of a task's section: shared keys by name (from :data:`COMMON`) and the task's own keys.

    Raises KeyError for a name that is not in COMMON (a bug of the chapter module, not a user error)."""
    return {**{n: COMMON[n] for n in names}, **own}


def validate(where: str, sec: Mapping[str, Any], spec: Mapping[str, Spec], file: str = "params.yaml"
             ) -> dict[str, Any]:
    """``sec`` checked against ``spec``: an unknown key (a typo such as ``epoch`` for ``epochs``) is an error
    that names it and lists the known keys; each value is checked by its :class:`Spec`. Keys the spec names
    but the section lacks are left to the task (most have defaults). Returns the checked values."""
    unknown = sorted(set(sec) - set(spec))
    if unknown:
        raise ParamError(f"{file}: unknown key {where}.{unknown[0]}"
                         + (f" (and {', '.join(unknown[1:])})" if unknown[1:] else "")
                         + f"; the keys of {where} are: {', '.join(spec) or '(none)'}")
    return {k: spec[k].check(v, f"{where}.{k}", file) for k, v in sec.items()}


RUN.update({
    "seed": Int(),
    "max_train_examples": Int(0),
    "max_eval_examples": Int(0),
    "max_epochs": Int(0),
    "mixed_precision": BOOL,
    "distribution": Choice("auto", "default", "mirrored", "one_device"),
    "text_data": Choice("mr", "custom"),
    "backend": Choice("tensorflow", "jax", "torch"),
})
