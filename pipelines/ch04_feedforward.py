"""Chapter 4: deep feed-forward networks (第四章 深度前馈网络, book lines 1268-1940), on MNIST.

The book's sections and the task ids that run them:

- 4.5 softmax regression: Flatten -> Dense(10) -> Softmax (lines 1860-1905)       -> ``ch04_mnist_softmax``
- 4.5 a two-layer network: Dense(128, relu) -> Dropout(0.5) -> Dense(10) (1907-1931) -> ``ch04_mnist_mlp``
- 4.2-4.4 the tools of training deep nets, as params of ``ch04_mnist_mlp``: the optimizers (4.4, Appendix A),
  dropout, early stopping that restores the best weights, batch normalisation, L1/L2 regularisers,
  initialisers, gradient clipping. ``dvc exp run -S ch04_mnist_mlp.dropout=0.2`` and so on (README).
- 4.4 the optimizers side by side: one picture of their loss curves               -> ``ch04_optimizer_comparison``

The book's bug, fixed by default: its softmax model passes probabilities to
``SparseCategoricalCrossentropy(from_logits=True)``, which applies softmax a second time.
``ch04_mnist_softmax.book_from_logits: true`` reproduces it. The MLP ends in logits, so from_logits=True is
right there. The data path: ``dvc repro download@mnist`` -> ``data/raw/mnist/*.gz`` (idx files), read by
:func:`dltm.data.load_mnist` (``x / 255.0`` as in the book).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers

from dltm import params as P
from dltm.evaluation import line_png, write_metrics
from dltm.io import write_json
from dltm.params import ParamError, require
from dltm.tasks import Context, Reference, Task
from dltm.tracking import Tracker
from dltm.training import (
    ClassifierData,
    FitSettings,
    evaluate_classifier,
    image_data,
    load_model,
    predict_labels,
    train_classifier,
    write_history_csv,
)


def loss_fn(from_logits: bool) -> keras.losses.Loss:
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


# ------------------------------------------------------------------------------------------------------------
# 4.5 Softmax regression (lines 1860-1905)
# ------------------------------------------------------------------------------------------------------------


def build_softmax(data: ClassifierData) -> keras.Model:
    return keras.Sequential([
        keras.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(10),
        layers.Softmax(),
    ], name="softmax_regression")


def train_mnist_softmax(ctx: Context) -> dict[str, Any]:
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    book_bug = require(ctx.params, "book_from_logits", bool, ctx.task.id)
    return train_classifier(ctx, image_data(ctx), build_softmax, fit, loss=loss_fn(from_logits=book_bug))


# ------------------------------------------------------------------------------------------------------------
# 4.5 A two-layer network (lines 1907-1931), with the knobs of 4.2-4.4
# ------------------------------------------------------------------------------------------------------------


def regularizer(p: dict[str, Any], where: str) -> keras.regularizers.Regularizer | None:
    l1, l2 = float(p.get("l1", 0.0) or 0.0), float(p.get("l2", 0.0) or 0.0)
    if l1 < 0 or l2 < 0:
        raise ParamError(f"params.yaml: {where}.l1 and {where}.l2 must be >= 0")
    return keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None


def mlp_builder(p: dict[str, Any], where: str):
    """Flatten -> [Dense(units) -> (BatchNormalization) -> activation -> Dropout] per hidden layer -> Dense(10).

    At the defaults (one hidden layer of 128 relu units, dropout 0.5, no batch norm, no regulariser,
    glorot_uniform) this is exactly the book's model."""
    hidden_units = require(p, "hidden_units", list, where)
    dropout = require(p, "dropout", float, where)
    batch_norm = require(p, "batch_norm", bool, where)
    activation = require(p, "activation", str, where)
    initializer = require(p, "kernel_initializer", str, where)
    reg = regularizer(p, where)
    if not 0.0 <= dropout < 1.0:
        raise ParamError(f"params.yaml: {where}.dropout must be in [0, 1), got {dropout}")
    try:
        keras.initializers.get(initializer)
    except ValueError:
        raise ParamError(f"params.yaml: {where}.kernel_initializer: unknown initializer {initializer!r} "
                         f"(try glorot_uniform, he_normal, lecun_normal, zeros)") from None

    def build(data: ClassifierData) -> keras.Model:
        model = keras.Sequential(name="mlp")
        model.add(keras.Input(shape=(28, 28)))
        model.add(layers.Flatten())
        for units in hidden_units:
            if batch_norm:  # Dense -> BN -> activation (Ioffe & Szegedy); the bias is BN's beta
                model.add(layers.Dense(int(units), use_bias=False, kernel_initializer=initializer,
                                       kernel_regularizer=reg))
                model.add(layers.BatchNormalization())
                model.add(layers.Activation(activation))
            else:
                model.add(layers.Dense(int(units), activation=activation, kernel_initializer=initializer,
                                       kernel_regularizer=reg))
            if dropout:
                model.add(layers.Dropout(dropout))
        model.add(layers.Dense(10, kernel_initializer=initializer, kernel_regularizer=reg))  # logits
        return model

    return build


def train_mnist_mlp(ctx: Context) -> dict[str, Any]:
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    return train_classifier(ctx, image_data(ctx), mlp_builder(ctx.params, ctx.task.id), fit,
                            loss=loss_fn(from_logits=True))


def evaluate_mnist(ctx: Context) -> dict[str, Any]:
    return evaluate_classifier(ctx, image_data(ctx, train=False))


# ------------------------------------------------------------------------------------------------------------
# 4.4 The optimizers side by side (lines 1502-1685; Appendix A)
#
# The ch04_mnist_mlp model, trained from the same initial weights with each optimizer at its Keras defaults.
# Each optimizer is an MLflow child run under the task's run.
# ------------------------------------------------------------------------------------------------------------


def optimizer_names(ctx: Context) -> list[str]:
    names = [str(n) for n in require(ctx.params, "optimizers", list, ctx.task.id)]
    if not names or len(set(names)) != len(names):
        raise ParamError(f"params.yaml: {ctx.task.id}.optimizers must be a non-empty list without repeats")
    return names


def train_optimizer_comparison(ctx: Context) -> dict[str, Any]:
    p, where = ctx.params, ctx.task.id
    data = image_data(ctx)
    build = mlp_builder(require(p, "model", dict, where), f"{where}.model")
    losses: dict[str, dict[str, list[float]]] = {}
    infos = {}
    children = {}
    for name in optimizer_names(ctx):
        fit = FitSettings(epochs=require(p, "epochs", int, where), batch_size=require(p, "batch_size", int, where),
                          optimizer=name)
        with Tracker(ctx.task.experiment, f"{where}/{name}", tags={"optimizer": name},
                     parent=ctx.tracker) as child:
            sub = Context(ctx.task, p, ctx.run, child, ctx.root)
            infos[name] = train_classifier(sub, data, build, fit, loss=loss_fn(from_logits=True),
                                           model_dir=ctx.model_dir / name, curves_dir=ctx.train_dir / name)
            children[name] = child.run_id
        hist = np.genfromtxt(ctx.train_dir / name / "history.csv", delimiter=",", names=True)
        losses[name] = {"loss": list(np.atleast_1d(hist["train_loss"])),
                        "test_loss": list(np.atleast_1d(hist["test_loss"]))}
    # one table and one picture of every optimizer's training loss, for `dvc plots` and the report
    write_history_csv({n: v["loss"] for n, v in losses.items()}, ctx.train_dir / "losses.csv")
    png = line_png({n: (np.arange(1, len(v["loss"]) + 1), v["loss"]) for n, v in losses.items()},
                   ctx.train_dir / "optimizers.png", "MNIST MLP: training loss per optimizer", "epoch", "loss",
                   logy=True)
    ctx.tracker.log_artifact(png, "plots")
    first = next(iter(infos.values()))
    return {**first, "train_seconds": round(sum(i["train_seconds"] for i in infos.values()), 3),
            "per_optimizer": infos, "child_runs": children}


def evaluate_optimizer_comparison(ctx: Context) -> dict[str, Any]:
    from dltm.io import read_json

    data = image_data(ctx, train=False)
    n = ctx.run.cap_eval(len(data.x_test))
    children = read_json(ctx.model_dir / "run.json").get("child_runs", {})
    metrics: dict[str, Any] = {}
    for name in optimizer_names(ctx):
        model = load_model(ctx, name)
        _, y_pred = predict_labels(model, data.x_test[:n], binary=False)
        acc = float(np.mean(y_pred == data.y_test[:n]))
        metrics[f"accuracy_{name}"] = acc
        if children.get(name):
            with Tracker(ctx.task.experiment, f"{ctx.task.id}/{name}", run_id=children[name],
                         parent=ctx.tracker) as child:
                child.log_metrics({"test_accuracy": acc})
    best = max(optimizer_names(ctx), key=lambda k: metrics[f"accuracy_{k}"])
    metrics.update({"best_accuracy": metrics[f"accuracy_{best}"], "n_examples": int(n)})
    write_json(ctx.eval_dir / "best.json", {"best_optimizer": best})
    return write_metrics(ctx, metrics, keep=["n_examples"])


MNIST_NOTE = ("test accuracy on the 10,000 test images of MNIST (-fashion_mnist: of Fashion-MNIST, the stand-in for "
              "MNIST, whose training images the offline mirror lacks)")
IMAGES = (None, "fashion_mnist")  # no --variant: MNIST, the book's; --variant fashion_mnist: the stand-in
FASHION = "Xiao et al. 2017 (Fashion-MNIST's benchmark)"

ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "selu", "gelu", "silu", "swish", "softplus", "softsign",
               "leaky_relu", "relu6", "mish", "hard_sigmoid", "exponential", "linear")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                "random_uniform", "random_normal", "truncated_normal", "orthogonal", "zeros", "ones")
_MLP = P.keys("dropout", hidden_units=P.List(P.POSITIVE_INT, min_items=0), activation=P.Choice(*ACTIVATIONS),
              batch_norm=P.BOOL, kernel_initializer=P.Choice(*INITIALIZERS), l1=P.Float(0.0), l2=P.Float(0.0))
_FIT = ("optimizer", "learning_rate", "epochs", "batch_size", "validation_split", "early_stopping_patience")
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch04_mnist_softmax": P.keys("book_from_logits", *_FIT),
    "ch04_mnist_mlp": {**_MLP, **P.keys(*_FIT, "clipnorm")},
    "ch04_optimizer_comparison": P.keys("epochs", "batch_size", optimizers=P.List(P.Choice(*P.OPTIMIZERS)),
                                        model=P.Section(**_MLP)),
}

HEADLINE = "ch04_mnist_mlp-fashion_mnist"  # the result reports/results.md's summary leads this chapter with

TASKS = (
    Task("ch04_mnist_softmax", "4.5 (lines 1860-1905)", "Softmax regression on MNIST", "mnist", "test_accuracy",
         train_mnist_softmax, evaluate_mnist,
         Reference(0.88, "LeCun et al. 1998: linear classifier (1-layer NN), 12.0% test error",
                   by_variant={"fashion_mnist": 0.842},
                   source_by_variant={"fashion_mnist": f"{FASHION}: scikit-learn LogisticRegression, its best "
                                      "setting"}),
         notes=MNIST_NOTE + "; the book's double softmax is fixed (book_from_logits: false)", variants=IMAGES),
    Task("ch04_mnist_mlp", "4.5 (lines 1907-1931)", "Dense(128)-Dropout(0.5)-Dense(10) on MNIST", "mnist",
         "test_accuracy", train_mnist_mlp, evaluate_mnist,
         Reference(0.9659, "book ch. 1 (line 124): MLP 96.59%", by_variant={"fashion_mnist": 0.8833},
                   source_by_variant={"fashion_mnist": f"{FASHION}, submitted benchmarks: MLP 256-128-100 (a "
                                      "larger MLP than this one)"}),
         notes=MNIST_NOTE, variants=IMAGES),
    Task("ch04_optimizer_comparison", "4.4 (lines 1502-1685), Appendix A", "The ch04_mnist_mlp model under "
         "seven optimizers", "mnist", "test_best_accuracy", train_optimizer_comparison, evaluate_optimizer_comparison,
         Reference(None, "the book compares optimizers in prose only"),
         notes=MNIST_NOTE + ", of the best optimizer; each optimizer is an MLflow child run", variants=IMAGES,
         also=("test_accuracy_sgd", "test_accuracy_momentum", "test_accuracy_nesterov", "test_accuracy_adagrad",
               "test_accuracy_rmsprop", "test_accuracy_adam", "test_accuracy_nadam")),
)
