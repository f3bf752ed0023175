"""One training loop and one evaluation for the book's Keras classifiers.

A chapter module supplies the data (:class:`ClassifierData`) and a model builder; this module does the rest
the same way for every task, on any Keras backend: the input pipeline (tf.data on TensorFlow, a PyDataset
elsewhere: :mod:`dltm.batches`), the data-parallel scope, per-epoch history (``plots/<task>/history.csv`` for
``dvc plots``, and MLflow), a stop with an error when the loss stops being a number, the ``.keras`` model and
the tokenizer saved atomically into ``models/<task>/``, then metrics and a confusion matrix.

Every model the project saves loads with :func:`load_keras_model` (or plain ``keras.saving.load_model`` after
``import dltm.rnn``, which registers the project's own layers, cells and loss). A training run's id
(:func:`stamp_training_run`, written by ``stages.train``) ties each sub-model of ``models/<task>/`` to its
``run.json``; :func:`check_training_run` refuses a folder that mixes runs.
"""

from __future__ import annotations

import csv
import io
import math
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

import dltm.rnn  # noqa: F401 -- registers the project's Keras objects, so that every saved model loads
from dltm import batches, runtime
from dltm.cli import MissingOutputError, UserError
from dltm.evaluation import classification_metrics, confusion_matrix_png, history_png, write_metrics
from dltm.io import atomic_path, write_json
from dltm.params import ParamError, require
from dltm.runs import (  # noqa: F401  (re-exported: the run files' names and checks)
    DATA_INFO_FILE,
    MODEL_FILE,
    RUN_FILE,
    TRAINING_RUN_KEY,
    MixedRunError,
    check_training_run,
    stamp_training_run,
    sub_model_folders,
)
from dltm.tasks import Context, dvc_stage
from dltm.text import Tokenizer
from dltm.tracking import curve_name, curve_names, epoch_logger

TOKENIZER_FILE = "tokenizer.json"


@dataclass
class ClassifierData:
    """Encoded inputs and integer labels for the training and test splits of one task."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    tokenizer: Tokenizer | None = None
    info: dict[str, Any] = field(default_factory=dict)
    """Shapes and sizes the model builder needs (doc_length, vocab_size, ...)."""

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2


def image_data(ctx: Context, train: bool = True) -> ClassifierData:
    """Chapters 4-5's 28x28 images (n, 28, 28) in [0, 1] and labels 0-9: MNIST, the book's, or the dataset the
    run's ``--variant`` names (``fashion_mnist``: the stand-in of the offline mirror, which lacks MNIST's training
    images). ``train=False`` reads the test split only. Raises MissingOutputError when a file is not downloaded."""
    from dltm.data import IMAGE_CLASSES, mnist_splits

    dataset = ctx.task.dataset_of(ctx.variant)
    return ClassifierData(*mnist_splits(ctx.root / "data" / "raw", train, dataset), IMAGE_CLASSES[dataset])


def make_dataset(x, y, batch_size: int, shuffle_seed: int | None = None):
    """The input every task trains from: (shuffle) -> batch -> prefetch, as tf.data on TensorFlow and
    ``keras.utils.PyDataset`` on the other backends (:func:`dltm.batches.dataset`)."""
    return batches.dataset(x, y, batch_size, shuffle_seed)


OPTIMIZER_ALIASES = {"momentum": ("sgd", {"momentum": 0.9}),
                     "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True})}


def optimizer(name: str, learning_rate: float | None = None, clipnorm: float | None = None,
              **config: Any) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name ('adam', 'nadam', 'sgd', ...), with Keras' defaults unless given.

    Two names beyond Keras' (book 4.4): 'momentum' is SGD with momentum 0.9, 'nesterov' the same with
    Nesterov's look-ahead.
    """
    if name in OPTIMIZER_ALIASES:
        name, extra = OPTIMIZER_ALIASES[name]
        config = {**extra, **config}
    if learning_rate is not None:
        config["learning_rate"] = float(learning_rate)
    if clipnorm is not None:
        config["clipnorm"] = float(clipnorm)
    try:
        return keras.optimizers.get({"class_name": name, "config": config})
    except ValueError:
        raise ParamError(f"params.yaml: unknown optimizer {name!r} (try sgd, momentum, nesterov, adagrad, "
                         f"rmsprop, adam, nadam, adadelta, adamax)") from None


def model_summary(model: keras.Model) -> str:
    buf = io.StringIO()
    model.summary(print_fn=lambda line, **_: buf.write(line + "\n"))
    return buf.getvalue()


def write_history_csv(history: dict[str, list[float]], path: Path) -> None:
    keys = list(history)
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["epoch", *keys])
        for i in range(len(history[keys[0]]) if keys else 0):
            w.writerow([i + 1, *(f"{history[k][i]:.6g}" for k in keys)])


@dataclass(frozen=True)
class FitSettings:
    """How a task fits: read from its params section. The defaults are Keras' and the book's."""

    epochs: int
    batch_size: int
    optimizer: str = "adam"
    learning_rate: float | None = None
    validation_split: float = 0.0
    """Hold out this last fraction of the training split for validation (Keras' validation_split)."""
    early_stopping_patience: int = 0
    """> 0: stop when validation accuracy has not improved for this many epochs, keep the best weights.
    Needs validation_split > 0: stopping on the test split would leak it into the model."""
    clipnorm: float | None = None
    """Gradient clipping by norm (book 4.3), None for none."""

    @classmethod
    def from_params(cls, p: dict[str, Any], where: str) -> FitSettings:
        s = cls(
            epochs=require(p, "epochs", int, where),
            batch_size=require(p, "batch_size", int, where),
            optimizer=require(p, "optimizer", str, where),
            learning_rate=None if p.get("learning_rate") is None else require(p, "learning_rate", float, where),
            validation_split=require(p, "validation_split", float, where) if "validation_split" in p else 0.0,
            early_stopping_patience=(require(p, "early_stopping_patience", int, where)
                                     if "early_stopping_patience" in p else 0),
            clipnorm=None if p.get("clipnorm") is None else require(p, "clipnorm", float, where),
        )
        if s.epochs < 1 or s.batch_size < 1:
            raise ParamError(f"params.yaml: {where}.epochs and {where}.batch_size must be >= 1")
        if not 0.0 <= s.validation_split < 1.0:
            raise ParamError(f"params.yaml: {where}.validation_split must be in [0, 1), got {s.validation_split}")
        if s.early_stopping_patience and not s.validation_split:
            raise ParamError(f"params.yaml: {where}.early_stopping_patience needs {where}.validation_split > 0 "
                             f"(early stopping on the test split would leak it into the model)")
        return s


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite: the model diverged (a learning rate too high for it, most
    often), and every weight after that step is garbage."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise :class:`NonFiniteLossError`, naming ``label`` (the task) and the epoch, at the first batch whose
    running loss is NaN or infinite, so that nothing diverged is saved. (Keras' TerminateOnNaN only stops
    quietly, and the stage would then save the model and report success.)"""

    def __init__(self, label: str, epochs: int | None = None):
        super().__init__()
        self.label, self.epochs, self.epoch = label, epochs, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            of = f" of {self.epochs}" if self.epochs else ""
            raise NonFiniteLossError(
                f"{self.label}: the training loss became {float(loss)} in epoch {self.epoch + 1}{of} (batch "
                f"{batch + 1}), so training stopped and saved nothing (most often a learning rate too high for "
                f"the model)")


def default_loss(data: ClassifierData) -> str:
    return "binary_crossentropy" if data.binary else "sparse_categorical_crossentropy"


def train_classifier(ctx: Context, data: ClassifierData, build: Callable[[ClassifierData], keras.Model],
                     fit: FitSettings, validate: bool = True, loss: Any = None, metrics: list | None = None,
                     model_dir: Path | None = None, curves_dir: Path | None = None,
                     seed: int | None = None, save_optimizer: bool = True) -> dict[str, Any]:
    """Fit ``build(data)`` on the training split, save it, log it. Returns what ``run.json`` records.

    Validation: a held-out slice of the training split when ``fit.validation_split`` > 0; otherwise the test
    split is shown beside the training curves (as the book's 7.3.4 does), for monitoring only.

    ``loss`` and ``metrics`` default to cross-entropy and accuracy; a regression passes ``loss="mse"`` and
    empty ``class_names``. ``model_dir``/``curves_dir`` (default ``ctx.model_dir``/``ctx.train_dir``) and
    ``seed`` (default ``run.seed``) let a task train several models, e.g. repeated runs; such a task may pass
    ``save_optimizer=False`` to keep only the weights (a third of the size with Adam or Adadelta).
    """
    run = ctx.run
    seed = run.seed if seed is None else seed
    model_dir = ctx.model_dir if model_dir is None else model_dir
    curves_dir = ctx.train_dir if curves_dir is None else curves_dir
    loss = default_loss(data) if loss is None else loss
    metrics = ["accuracy"] if metrics is None else metrics
    monitor = "val_accuracy" if "accuracy" in metrics else "val_loss"
    strategy = runtime.setup(run, seed)
    n_train = run.cap_train(len(data.x_train))
    x_train, y_train = data.x_train[:n_train], data.y_train[:n_train]
    if fit.validation_split:
        n_fit = n_train - int(n_train * fit.validation_split)
        x_val, y_val = x_train[n_fit:], y_train[n_fit:]
        x_train, y_train = x_train[:n_fit], y_train[:n_fit]
    else:
        n_val = run.cap_eval(len(data.x_test))
        x_val, y_val = data.x_test[:n_val], data.y_test[:n_val]
    epochs = run.epochs(fit.epochs)

    with strategy.scope():
        model = build(data)
        model.compile(optimizer=optimizer(fit.optimizer, fit.learning_rate, fit.clipnorm), loss=loss,
                      metrics=metrics)
    summary = model_summary(model)

    global_batch = fit.batch_size * strategy.num_replicas_in_sync
    train_ds = make_dataset(x_train, y_train, global_batch, shuffle_seed=seed)
    val_ds = make_dataset(x_val, y_val, global_batch) if validate or fit.validation_split else None
    sub = "" if model_dir == ctx.model_dir else "/" + model_dir.name
    held_out = "val" if fit.validation_split else "test"  # what Keras' val_* curves are measured on
    callbacks = [StopOnNonFiniteLoss(ctx.name + sub, epochs), epoch_logger(ctx.tracker, held_out, epochs)]
    if fit.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode="max" if "acc" in monitor else "min",
                                                       verbose=1,
                                                       patience=fit.early_stopping_patience,
                                                       restore_best_weights=True))

    start = time.perf_counter()
    print(f"{ctx.name + sub}: {model.count_params():,} parameters, {len(x_train)} training examples, "
          f"{epochs} epochs (model summary: models/{ctx.name}{sub}/summary.txt)", flush=True)
    hist = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0, shuffle=False, callbacks=callbacks)
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items()}, held_out)
    epochs_run = len(history["train_loss"])

    # DVC outputs first: the model folder in one rename, then the curves.
    with atomic_path(model_dir) as tmp:
        tmp.mkdir(parents=True)
        model.save(tmp / MODEL_FILE, include_optimizer=save_optimizer)
        if data.tokenizer is not None:
            (tmp / TOKENIZER_FILE).write_text(data.tokenizer.to_json(), encoding="utf-8")
        write_json(tmp / DATA_INFO_FILE, {"class_names": data.class_names, **data.info})
        (tmp / "summary.txt").write_text(summary, encoding="utf-8")
    write_history_csv(history, curves_dir / "history.csv")
    history_png(history, curves_dir / "history.png", f"{ctx.task.id}: training history",
                log_loss=epochs > 100)

    tr = ctx.tracker
    tr.log_metrics({"train_seconds": seconds, "train_examples_per_second": len(x_train) * epochs_run / seconds})
    tr.log_text(summary, "model_summary.txt")
    if tr.active:  # MLflow Models: the keras flavor, and raw text in for a text classifier (no run: no MLflow)
        from dltm import mlflow_models

        mlflow_models.log_models(tr, model_dir, x_train[:1], sub=model_dir.name if sub else "")
    tr.log_artifact(curves_dir / "history.csv", "plots" + sub)
    tr.log_artifact(curves_dir / "history.png", "plots" + sub)
    info = {
        "train_examples": int(len(x_train)),
        "validation_examples": int(len(x_val)) if fit.validation_split else 0,
        "epochs": int(epochs_run),
        "batch_size": int(fit.batch_size),
        "train_seconds": round(seconds, 3),
        "examples_per_second": round(len(x_train) * epochs_run / seconds, 1),
        "params": int(model.count_params()),
    }
    if fit.early_stopping_patience:
        curve = history[curve_name(monitor, held_out)]
        best = np.argmax(curve) if "acc" in monitor else np.argmin(curve)
        info["best_epoch"] = int(best + 1)
    return info


def load_keras_model(path: str | Path, hint: str | None = None, compile: bool = True) -> keras.Model:
    """``keras.saving.load_model(path)`` with the project's Keras objects registered (this module imports
    dltm.rnn). Raises :class:`MissingOutputError` for a missing file and :class:`UserError` for a file that is
    not a ``.keras`` archive (a truncated copy, say) or an archive without a model Keras can read (no
    config.json, say), each with ``hint`` (e.g. the command that writes it)."""
    path = Path(path)
    then = f"; {hint}" if hint else ""
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing{then}")
    if not zipfile.is_zipfile(path):  # Keras 3 raises a ValueError that says "File not found" for these
        raise UserError(f"{path}: not a readable .keras file (not a zip archive){then}")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (zipfile.BadZipFile, KeyError) as e:  # a damaged archive; one without config.json
        raise UserError(f"{path}: not a readable .keras file ({type(e).__name__}: {e}){then}") from None


def load_model(ctx: Context, sub: str | None = None) -> keras.Model:
    """The task's trained model, or the one in ``models/<task>/<sub>/`` for tasks that train several."""
    path = (ctx.model_dir if sub is None else ctx.model_dir / sub) / MODEL_FILE
    return load_keras_model(path, f"run `dvc repro {dvc_stage(ctx.task.id, ctx.variant)}` first")




def predict_labels(model: keras.Model, x: np.ndarray, binary: bool, batch_size: int = 256) -> tuple:
    probs = model.predict(make_dataset(x, np.zeros(len(x)), batch_size), verbose=0)
    probs = np.asarray(probs, dtype=np.float32)
    if binary:
        probs = probs.reshape(-1)
        return probs, (probs > 0.5).astype(int)
    return probs, probs.argmax(axis=-1)


def evaluate_classifier(ctx: Context, data: ClassifierData,
                        extra: Callable[[keras.Model], dict[str, float]] | None = None, split: str = "test"
                        ) -> dict[str, Any]:
    """Metrics on the test split (capped by run.max_eval_examples), written to metrics/<task>.json and the MLflow
    run as ``test_*`` (``test_accuracy``, ``test_loss``, ``test_f1_macro``, ...; ``n_examples`` as it is).
    ``extra(model)`` adds task-specific values, kept as the task names them. ``split="train"`` names the results
    ``train_*`` for a task that scores its training data (the book's 7.2 on its ten documents). Returns the
    named metrics."""
    runtime.seed_everything(ctx.run.seed)
    model = load_model(ctx)
    n = ctx.run.cap_eval(len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    scores = model.evaluate(make_dataset(x, y, 256), verbose=0, return_dict=True)
    _, y_pred = predict_labels(model, x, data.binary)
    metrics: dict[str, Any] = {"loss": float(scores["loss"])}
    metrics.update(classification_metrics(y, y_pred, data.class_names))
    own = extra(model) if extra is not None else {}  # the task's own values, named by the task
    metrics.update(own)
    png = confusion_matrix_png(y, y_pred, data.class_names, ctx.eval_dir / "confusion_matrix.png",
                               f"{ctx.task.id} (n={n}, {split} accuracy {metrics['accuracy']:.3f})")
    named = write_metrics(ctx, metrics, split=split, keep=("n_examples", *own))
    ctx.tracker.log_artifact(png, "plots")
    return named
