"""The task registry: every task id of TASKS.md, the chapter module that implements it, and what to beat.

A chapter module in ``pipelines/`` lists its tasks in a module-level ``TASKS`` tuple. The generic stages
(``stages/train.py``, ``stages/evaluate.py``, ``stages/report.py``) find a task here by id and call its
``train`` and ``evaluate`` functions with a :class:`Context`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dltm.params import RunSettings
    from dltm.tracking import Tracker

CHAPTER_MODULES = ("pipelines.ch02_basics", "pipelines.ch03_keras", "pipelines.ch04_feedforward",
                   "pipelines.ch05_cnn", "pipelines.ch06_word2vec", "pipelines.ch07_text_cnn", "pipelines.ch08_rnn",
                   "pipelines.ch09_lstm_sentiment")


@dataclass(frozen=True)
class Reference:
    """A number to set beside ours: the book's, or a published one, with where it comes from."""

    value: float | None
    source: str
    by_variant: dict[str, float] | None = None
    """One value per variant of the task, e.g. Kim's table 2 for rand, static, non-static, multichannel."""

    def for_variant(self, variant: str | None) -> float | None:
        return self.by_variant.get(variant, self.value) if self.by_variant and variant else self.value


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
    variants: tuple[str, ...] = ()
    """The values of ``--variant`` the task runs with (chapter 6: the corpus; Kim's CNN: rand, static, ...);
    one DVC stage per value."""
    variants_are_datasets: bool = True
    """Whether a variant names the dataset read (chapter 6's corpora) or a model variant (Kim's)."""

    def dataset_of(self, variant: str | None) -> str | None:
        """The registry id of the data a run of this task (with ``variant``) reads."""
        return variant if variant and self.variants_are_datasets else self.dataset

    @property
    def chapter(self) -> str:
        """The chapter module that implements the task, e.g. 'pipelines.ch07_text_cnn'."""
        return self.train.__module__

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

    @property
    def name(self) -> str:
        return f"{self.task.id}-{self.variant}" if self.variant else self.task.id

    @property
    def model_dir(self) -> Path:
        """models/<task>/ (or data/embeddings/<task>-<variant>/ for word vectors)."""
        return self.root / self.task.outputs / self.name

    @property
    def train_dir(self) -> Path:
        """plots/<task>/train/: what training shows (history.csv for ``dvc plots``, history.png)."""
        return self.root / "plots" / self.name / "train"

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
    tasks: dict[str, Task] = {}
    for name in CHAPTER_MODULES:
        module = importlib.import_module(name)
        for task in module.TASKS:
            if task.id in tasks:
                raise ValueError(f"task id {task.id} is defined twice ({name})")
            tasks[task.id] = task
    return tasks


def get(task_id: str) -> Task:
    tasks = all_tasks()
    try:
        return tasks[task_id]
    except KeyError:
        raise KeyError(f"unknown task {task_id!r}; known: {', '.join(sorted(tasks))}") from None
