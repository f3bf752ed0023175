"""The task registry: every task id of TASKS.md, the chapter module that implements it, and what to beat.

A chapter module in ``pipelines/`` lists its tasks in a module-level ``TASKS`` tuple. The generic stages
(``stages/train.py``, ``stages/evaluate.py``, ``stages/report.py``) find a task here by id and call its
``train`` and ``evaluate`` functions with a :class:`Context`.
"""

from __future__ import annotations

import importlib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltm.cli import UserError

if TYPE_CHECKING:
    from dltm.params import RunSettings
    from dltm.tracking import Tracker

CHAPTER_MODULES = ("pipelines.ch02_basics", "pipelines.ch03_keras", "pipelines.ch04_feedforward",
                   "pipelines.ch05_cnn", "pipelines.ch06_word2vec", "pipelines.ch07_text_cnn", "pipelines.ch08_rnn",
                   "pipelines.ch09_lstm_sentiment", "pipelines.ch10_seq2seq",
                   "pipelines.ch11_attention", "pipelines.ch12_transformer", "pipelines.ch13_reading",
                   "pipelines.ch14_retrieval", "pipelines.appendices")


CORPUS_DATASETS = {"imdb_text": "imdb"}
"""Chapter 6's corpora that are prepared from another registered dataset's files: ``imdb_text``, IMDB's training
reviews as running text (``prepare_imdb_text``)."""


LOWER_IS_BETTER = ("perplexity", "bits_per_character", "cross_entropy", "loss", "mse", "mae", "rmse", "error")
"""Metric words that name a quantity better when smaller; every other metric is better when larger."""


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is better: one of :data:`LOWER_IS_BETTER` stands in its name as whole
    ``_``-separated words (``test_perplexity``, ``test_mse_nn``, ``train_mse_to_sine``, ``val_cross_entropy``),
    not inside another word."""
    name = f"_{metric}_"
    return any(f"_{word}_" in name for word in LOWER_IS_BETTER)


@dataclass(frozen=True)
class Reference:
    """A number to set beside ours: the book's, or a published one, with where it comes from."""

    value: float | None
    source: str
    by_variant: dict[str, float] | None = None
    """One value per variant of the task, e.g. Kim's table 2 for rand, static, non-static, multichannel."""
    source_by_variant: dict[str, str] | None = None
    """Where a variant's value comes from, when not from ``source`` (e.g. Fashion-MNIST's benchmark table)."""

    def for_variant(self, variant: str | None) -> float | None:
        return self.by_variant.get(variant, self.value) if self.by_variant and variant else self.value

    def source_for(self, variant: str | None) -> str:
        return (self.source_by_variant or {}).get(variant, self.source) if variant else self.source


@dataclass(frozen=True)
class Task:
    id: str
    section: str
    """The book section it implements, e.g. '7.3.1-7.3.2 (lines 3418-3639)'."""
    title: str
    dataset: str | None
    """A registry id (dltm.datasets), or None when the data is written in the code, as in the book."""
    metric: str
    """The key of metrics/<task>.json that the report shows."""
    train: Callable[[Context], dict[str, Any]]
    evaluate: Callable[[Context], dict[str, Any]]
    reference: Reference | None = None
    """The book's value, or the published one, for ``metric``."""
    notes: str = ""
    also: tuple[str, ...] = ()
    """Further keys of metrics/<task>.json that the report lists beside ``metric``."""
    outputs: str = "models"
    """Where ``train`` writes: ``models`` for models, ``data/embeddings`` for word vectors later tasks read."""
    variants: tuple[str | None, ...] = ()
    """The values of ``--variant`` the task runs with (chapter 6: the corpus; Kim's CNN: rand, static, ...);
    one DVC stage per value. None among them: the task also runs without ``--variant``, on ``dataset``
    (chapters 4-5: MNIST, the book's data; ``--variant fashion_mnist``: the stand-in)."""
    variants_are_datasets: bool = True
    """Whether a variant names the dataset read (chapter 6's corpora) or a model variant (Kim's)."""
    run_params: tuple[str, ...] = ("seed", "max_train_examples", "max_eval_examples", "max_epochs",
                                   "mixed_precision", "distribution", "backend")
    """The keys of params.yaml's ``run`` section the task reads (logged to MLflow with its own section); a task
    written in NumPy reads the seed at most, chapter 7's MR classifiers also ``text_data``."""

    def dataset_of(self, variant: str | None) -> str | None:
        """The registry id of the data a run of this task (with ``variant``) reads (a corpus prepared from
        another dataset's files, e.g. ``imdb_text``, names that dataset: :data:`CORPUS_DATASETS`)."""
        return CORPUS_DATASETS.get(variant, variant) if variant and self.variants_are_datasets else self.dataset

    @property
    def chapter(self) -> str:
        """The chapter module that implements the task, e.g. 'pipelines.ch07_text_cnn'."""
        return self.train.__module__

    @property
    def params(self) -> dict[str, Any]:
        """What the task's params.yaml section accepts: {key: dltm.params.Spec}, from its chapter module's
        ``PARAMS``."""
        return importlib.import_module(self.chapter).PARAMS[self.id]

    @property
    def experiment(self) -> str:
        """The MLflow experiment: the chapter module's name."""
        return self.chapter.rsplit(".", 1)[-1]


@dataclass
class Context:
    """What a task's train/evaluate functions get: its params, the run settings, where to write, a tracker."""

    task: Task
    params: dict[str, Any]
    run: RunSettings
    tracker: Tracker
    root: Path = Path(".")
    variant: str | None = None
    """e.g. the corpus an embedding is trained on; outputs are then named ``<task>-<variant>``."""
    staging: Path | None = None
    """Where training writes ``model_dir`` and ``train_dir`` instead, laid out like ``root`` (``stages.train``
    moves each folder into place whole when training succeeds: see ``dltm.io.staged``). None: in place."""

    @property
    def name(self) -> str:
        return f"{self.task.id}-{self.variant}" if self.variant else self.task.id

    @property
    def model_dir(self) -> Path:
        """models/<task>/ (or data/embeddings/<task>-<variant>/ for word vectors), under ``staging`` if set."""
        return (self.staging or self.root) / self.task.outputs / self.name

    @property
    def train_dir(self) -> Path:
        """plots/<task>/train/: what training shows (history.csv for ``dvc plots``, history.png), under
        ``staging`` if set."""
        return (self.staging or self.root) / "plots" / self.name / "train"

    @property
    def eval_dir(self) -> Path:
        """plots/<task>/eval/: what evaluation shows (confusion_matrix.png, sample outputs)."""
        return self.root / "plots" / self.name / "eval"

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics" / f"{self.name}.json"

    def prepared(self, dataset: str) -> Path:
        return self.root / "data" / "prepared" / dataset


def all_tasks() -> dict[str, Task]:
    """Every task of every chapter module, by id (imports them all: Keras and TensorFlow with chapter 3's)."""
    tasks: dict[str, Task] = {}
    for name in CHAPTER_MODULES:
        module = importlib.import_module(name)
        for task in module.TASKS:
            if task.id in tasks:
                raise ValueError(f"task id {task.id} is defined twice ({name})")
            tasks[task.id] = task
    return tasks


def chapter_module_of(task_id: str) -> str | None:
    """The chapter module whose tasks share ``task_id``'s prefix (``ch02_xor`` -> ``pipelines.ch02_basics``), or
    None. Every task id starts with its chapter's ``chNN_`` (a test checks it), so :func:`get` imports that one
    module instead of all of them."""
    prefix = task_id.split("_", 1)[0] + "_"
    if prefix.startswith("app"):  # appA_checks, appB_smooth: the appendices' module
        prefix = "appendices"
    found = [name for name in CHAPTER_MODULES if name.rsplit(".", 1)[-1].startswith(prefix)]
    return found[0] if len(found) == 1 else None


class UnknownTaskError(UserError, KeyError):
    """A task id that no chapter module defines."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get(task_id: str) -> Task:
    """The task ``task_id``; :class:`UnknownTaskError` lists the known ids.

    Imports only the task's chapter module (:func:`chapter_module_of`): a chapter-2 task never imports Keras.
    An id outside that convention, or unknown, is looked up in :func:`all_tasks`."""
    module = chapter_module_of(task_id)
    if module is not None:
        for task in importlib.import_module(module).TASKS:
            if task.id == task_id:
                return task
    tasks = all_tasks()
    try:
        return tasks[task_id]
    except KeyError:
        known = sorted(tasks, key=lambda t: (t.startswith("app"), t))  # the chapters', then the appendices'
        raise UnknownTaskError(f"unknown task {task_id!r}; known: {', '.join(known)}") from None


# ---- the DVC stages that run a task ------------------------------------------------------------------------

_CMD = re.compile(r"python -m stages\.(train|embed|evaluate) (\S+)(?: --variant (\S+))?\s*$")


def _render(template: str, values: dict[str, Any]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(values.get(m.group(1).strip(), m.group(0))), template)


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{'a': {'b': 1}} -> [('a', {'b': 1}), ('a.b', 1)]: the names DVC's ``${...}`` takes."""
    out: list[tuple[str, Any]] = []
    for k, v in tree.items():
        out.append((prefix + str(k), v))
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
    return out


@lru_cache(maxsize=4)
def _stages_in(dvc_yaml: Path) -> dict[tuple[str, str | None, str], str]:
    """{(task id, variant, 'train' | 'evaluate'): stage name} of every stage of ``dvc_yaml`` that runs
    ``python -m stages.train|embed|evaluate``, with ``foreach`` and ``matrix`` expanded as DVC names them."""
    import yaml

    doc = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    params = dvc_yaml.with_name("params.yaml")  # DVC's default vars: ${prepare.babi.tasks} names a params list
    var: dict[str, Any] = dict(_flatten(yaml.safe_load(params.read_text(encoding="utf-8")) or {})
                               if params.is_file() else {})
    for entry in doc.get("vars", []):
        if isinstance(entry, dict):
            var.update(entry)

    def lookup(ref: Any) -> Any:
        m = re.fullmatch(r"\$\{([^}]+)\}", str(ref).strip())
        return var.get(m.group(1).strip()) if m else ref

    found: dict[tuple[str, str | None, str], str] = {}
    for group, spec in (doc.get("stages") or {}).items():
        if "foreach" in spec:
            items = lookup(spec["foreach"]) or ()  # a ${...} that params.yaml lacks: no stages, as for DVC
            pairs = items.items() if isinstance(items, dict) else ((i, i) for i in items)
            expanded = []
            for key, item in pairs:
                values = {"key": key, "item": item}
                if isinstance(item, dict):
                    values.update({f"item.{k}": v for k, v in item.items()})
                expanded.append((f"{group}@{key}", _render(spec["do"]["cmd"], values)))
        elif "matrix" in spec:
            axes = {k: lookup(v) or () for k, v in spec["matrix"].items()}
            expanded = []
            for combo in itertools.product(*axes.values()):
                values = {f"item.{k}": v for k, v in zip(axes, combo, strict=True)}
                expanded.append((f"{group}@{'-'.join(map(str, combo))}", _render(spec["cmd"], values)))
        else:
            expanded = [(group, str(spec.get("cmd", "")))]
        for name, cmd in expanded:
            m = _CMD.search(cmd)
            if m:
                kind = "evaluate" if m.group(1) == "evaluate" else "train"
                found[(m.group(2), m.group(3), kind)] = name
    return found


def dvc_stage(task_id: str, variant: str | None = None, kind: str = "train", root: Path | None = None) -> str:
    """The name of the DVC stage that trains (``kind='train'``) or evaluates a task, as ``dvc repro`` takes it:
    ``train@ch02_xor``, ``train_text@ch07_cnn1d``, ``train_kim2014@rand``, ``embed@ch06_glove-ptb``.

    Read from ``dvc.yaml`` (at ``root``, default the working directory), so it is right by construction;
    without a ``dvc.yaml`` it falls back to ``train@<task>[-<variant>]``.
    """
    path = (root or Path(".")) / "dvc.yaml"
    if path.is_file():
        name = _stages_in(path.resolve()).get((task_id, variant, kind))
        if name:
            return name
    return f"{kind}@{task_id}" + (f"-{variant}" if variant else "")
