"""Appendices A and B: Keras' common classes and functions, and smooth approximations (附录 A/B, book lines
5950-6670).

- A.1-A.6 initialisers, activations, losses, optimizers, core layers and merge layers: every value the
          appendix prints (and 4.4.1's cross-entropy example, line 1498), computed with Keras 3   -> ``appA_checks``
- B.1-B.4 logsumexp as a smooth max, softmax as a smooth onehot(argmax), soft-argmax, smooth accuracy and
          smooth F1; then smooth F1 as a training loss on an imbalanced MR subset, against binary
          cross-entropy, over seeds                                                                -> ``appB_smooth``

The appendix was written for tf.keras 2.1. Where Keras 3 changed a default or a formula, the check states what
Keras 3 does and records the book's value beside it (``hard_sigmoid``, Nadam's and Adamax's learning rates,
Adadelta's epsilon, ``relu``'s ``alpha`` now ``negative_slope``); where the book's code is wrong (4.5's
``Reshape((32), input_shape=(12,))``), the check is that Keras refuses it. ``checks_passed`` is the share of
checks that hold, as ``ch05_conv_numeric``'s.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from dltm import params as P
from dltm import runtime
from dltm.data import MR_CLASSES, load_prepared_text
from dltm.evaluation import figure, save_png, write_metrics
from dltm.io import read_json, write_json
from dltm.rnn import MeanOverTime
from dltm.tasks import Context, Reference, Task
from dltm.tracking import Tracker
from dltm.training import ClassifierData, FitSettings, load_model, predict_labels, train_classifier

# ------------------------------------------------------------------------------------------------------------
# A.1 initialisers (lines 5952-5972): the spread each one promises for a layer with fan_in inputs
# ------------------------------------------------------------------------------------------------------------

FAN_IN = 1000
INITIALIZERS = {  # name -> (the book's statistic, its value for FAN_IN)
    "he_normal": ("std", math.sqrt(2 / FAN_IN)),
    "he_uniform": ("limit", math.sqrt(6 / FAN_IN)),
    "lecun_normal": ("std", math.sqrt(1 / FAN_IN)),
    "lecun_uniform": ("limit", math.sqrt(3 / FAN_IN)),
}


def initializer_stats(seed: int) -> dict[str, float]:
    """The empirical std (normal) or largest |w| (uniform) of a FAN_IN x 1000 kernel from each initialiser,
    divided by the book's value; 1.0 means the book's formula holds. Keras 3's truncated normals rescale so that
    the *truncated* std is the formula's (the book's text leaves it open)."""
    out = {}
    for name, (stat, want) in INITIALIZERS.items():
        w = np.asarray(keras.initializers.get({"class_name": name, "config": {"seed": seed}})((FAN_IN, 1000)))
        got = w.std() if stat == "std" else np.abs(w).max()
        out[f"{name}_{stat}_ratio"] = float(got / want)
    return out


# ------------------------------------------------------------------------------------------------------------
# A.2 activations (lines 5974-6079): the book's formula beside keras.activations on a grid
# ------------------------------------------------------------------------------------------------------------

GRID = np.linspace(-4, 4, 161).astype("float32")
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946  # the book's


def book_hard_sigmoid(x: np.ndarray) -> np.ndarray:
    """The book's (tf.keras 2.1's) hard_sigmoid: 0 below -2.5, 1 above 2.5, 0.2 x + 0.5 between."""
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def book_relu(x: np.ndarray, alpha: float, max_value: float, threshold: float) -> np.ndarray:
    """The book's relu(x, alpha, max_value, threshold): max_value above it, x from threshold, alpha (x - t) below."""
    return np.where(x >= max_value, max_value, np.where(x >= threshold, x, alpha * (x - threshold)))


BOOK_ACTIVATIONS = {  # name -> (the book's formula, Keras 3's function of x)
    "elu": (lambda x: np.where(x > 0, x, np.exp(x) - 1), keras.activations.elu),
    "selu": (lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)), keras.activations.selu),
    "softplus": (lambda x: np.log(np.exp(x) + 1), keras.activations.softplus),
    "softsign": (lambda x: x / (np.abs(x) + 1), keras.activations.softsign),
    "relu": (lambda x: np.maximum(x, 0), keras.activations.relu),
    "relu_0.1_2_0.5": (lambda x: book_relu(x, 0.1, 2.0, 0.5),  # the book's alpha is Keras 3's negative_slope
                       lambda x: keras.activations.relu(x, negative_slope=0.1, max_value=2.0, threshold=0.5)),
    "tanh": (lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)), keras.activations.tanh),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), keras.activations.sigmoid),
    "exponential": (np.exp, keras.activations.exponential),
}


def activation_errors() -> dict[str, float]:
    """max |book formula - Keras 3| over GRID, per activation; and hard_sigmoid's against both formulas."""
    out = {}
    for name, (book, k3) in BOOK_ACTIVATIONS.items():
        x = GRID[GRID != 0.5] if name.startswith("relu_") else GRID  # the threshold point: below
        out[name] = float(np.max(np.abs(book(x.astype("float64")) - np.asarray(k3(x), "float64"))))
    # At x = threshold the book's relu gives x (its formula: threshold <= x); Keras 3 keeps x > threshold only
    out["relu_at_threshold_keras3"] = float(BOOK_ACTIVATIONS["relu_0.1_2_0.5"][1](np.float32([0.5]))[0])
    hard = np.asarray(keras.activations.hard_sigmoid(GRID), "float64")
    out["hard_sigmoid_vs_book"] = float(np.max(np.abs(hard - book_hard_sigmoid(GRID))))
    out["hard_sigmoid_vs_relu6"] = float(np.max(np.abs(hard - np.clip(GRID / 6 + 0.5, 0, 1))))  # Keras 3's
    softmax = np.asarray(keras.activations.softmax(GRID[:160].reshape(8, 20)))
    out["softmax_rows_sum_to_one"] = float(np.max(np.abs(softmax.sum(axis=-1) - 1)))
    return out


def activations_png(path) -> Any:
    """Keras 3's activations on [-4, 4]: the unbounded ones, and the squashing ones with hard_sigmoid drawn
    both ways (the book's 0.2 x + 0.5, Keras 3's relu6(x + 3) / 6)."""
    fig, (left, right) = figure(1, 2, figsize=(10, 4))
    for name in ("relu", "elu", "selu", "softplus"):
        left.plot(GRID, np.asarray(BOOK_ACTIVATIONS[name][1](GRID)), label=name)
    for name in ("sigmoid", "tanh", "softsign"):
        right.plot(GRID, np.asarray(BOOK_ACTIVATIONS[name][1](GRID)), label=name)
    right.plot(GRID, np.asarray(keras.activations.hard_sigmoid(GRID)), label="hard_sigmoid, Keras 3")
    right.plot(GRID, book_hard_sigmoid(GRID), linestyle="--", label="hard_sigmoid, the book")
    for ax, title in ((left, "unbounded"), (right, "squashing")):
        ax.set(title=f"Appendix A.2, Keras 3: {title}", xlabel="x", ylabel="f(x)")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.legend(loc="upper left", fontsize=8)
    return save_png(fig, path)


# ------------------------------------------------------------------------------------------------------------
# A.3 losses (lines 6080-6140) and 4.4.1's cross-entropy example (line 1498)
# ------------------------------------------------------------------------------------------------------------

CCE_TRUE = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
CCE_PRED = [[0.9, 0.05, 0.05], [0.05, 0.89, 0.06], [0.05, 0.01, 0.94]]
BOOK_LOSSES = {"categorical_crossentropy": 0.0946, "sparse_categorical_crossentropy": 0.0946,
               "mean_squared_error": 0.75, "crossentropy_4_4_1": 0.4797}
"""The appendix prints 0.0945 for categorical cross-entropy (its comment truncates; the mean of -ln 0.9,
-ln 0.89, -ln 0.94 is 0.09459); 4.4.1 prints 0.479 for -ln 0.619 = 0.47965."""


def loss_values() -> dict[str, float]:
    """The appendix's loss examples through Keras 3's loss classes, and binary cross-entropy's example (the book
    prints no value) beside its formula with Keras' clipping of predictions to [eps, 1 - eps] (eps = 1e-7): both
    8.04, the two clipped terms -ln(1.19e-7) = 15.9 each."""
    eps = np.float32(keras.config.epsilon())
    bce_true, bce_pred = np.float32([0.0, 0.0, 1.0, 1.0]), np.float32([1.0, 0.1, 1.0, 0.0])
    clipped = np.clip(bce_pred, eps, 1 - eps)  # in float32, as Keras: 1 - 1e-7 rounds to 1 - 1.19e-7
    return {
        "binary_crossentropy": float(keras.losses.BinaryCrossentropy()(bce_true, bce_pred)),
        "binary_crossentropy_formula": float(np.mean(-bce_true * np.log(clipped)
                                                     - (1 - bce_true) * np.log(1 - clipped))),
        "categorical_crossentropy": float(keras.losses.CategoricalCrossentropy()(CCE_TRUE, CCE_PRED)),
        "sparse_categorical_crossentropy": float(keras.losses.SparseCategoricalCrossentropy()(
            np.array([0, 1, 2]), np.array(CCE_PRED))),
        "mean_squared_error": float(keras.losses.MeanSquaredError()([0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0])),
        "crossentropy_4_4_1": float(keras.losses.CategoricalCrossentropy()([[0.0, 1.0, 0.0]],
                                                                           [[0.228, 0.619, 0.153]])),
    }


# ------------------------------------------------------------------------------------------------------------
# A.4 optimizers (lines 6142-6222): the defaults the book lists beside Keras 3's
# ------------------------------------------------------------------------------------------------------------

BOOK_OPTIMIZERS = {
    "Adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-8},
    "Adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "RMSprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "centered": False},
    "Adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "amsgrad": False},
    "Adamax": {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999},
    "Nadam": {"learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999},
}
"""The defaults appendix A.4 writes for each optimizer (tf.keras 2.1); SGD's section lists no values."""
KNOWN_CHANGES = {("Adadelta", "epsilon"), ("Adamax", "learning_rate"), ("Nadam", "learning_rate")}
"""Where Keras 3's defaults differ from the book's (issue 19; Keras 3 release notes)."""


def optimizer_defaults() -> list[dict[str, Any]]:
    """One row per (optimizer, argument) the book lists: the book's default and Keras 3's
    (``get_config()`` of an optimizer built with no arguments)."""
    rows = []
    for name, book in BOOK_OPTIMIZERS.items():
        config = getattr(keras.optimizers, name)().get_config()
        for arg, value in book.items():
            rows.append({"optimizer": name, "argument": arg, "book": value, "keras3": config.get(arg)})
    return rows


def changed_defaults(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(r["optimizer"], r["argument"]) for r in rows
            if not (r["book"] == r["keras3"] or (isinstance(r["book"], float) and isinstance(r["keras3"], float)
                                                 and math.isclose(r["book"], r["keras3"], rel_tol=1e-6)))}


# ------------------------------------------------------------------------------------------------------------
# A.5-A.6 core layers and merge layers (lines 6224-6560)
# ------------------------------------------------------------------------------------------------------------


def output_shape(*stack: layers.Layer, input_shape: tuple) -> list:
    """The output shape (batch dimension left out) of ``stack`` on an Input of ``input_shape``, as the book's
    ``model.output_shape`` comments state them."""
    x = inp = keras.Input(shape=input_shape)
    for layer in stack:
        x = layer(x)
    return list(keras.Model(inp, x).output_shape[1:])


def antirectifier(x):
    """The book's Lambda example (A.5.8), in keras.ops: centre, L2-normalise, then [relu(x), relu(-x)]."""
    x = x - ops.mean(x, axis=1, keepdims=True)
    x = x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True), 1e-12))
    return ops.concatenate([ops.relu(x), ops.relu(-x)], axis=1)


def layer_values(seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        # A.5.3: the book's shapes assume channels_first (Keras 3's default is channels_last: 3 x 32 x 64)
        "flatten_channels_first": output_shape(layers.Conv2D(64, (3, 3), padding="same",
                                                             data_format="channels_first"),
                                               layers.Flatten(), input_shape=(3, 32, 32)),
        "flatten_channels_last": output_shape(layers.Conv2D(64, (3, 3), padding="same"), layers.Flatten(),
                                              input_shape=(3, 32, 32)),
        "reshape_3_4": output_shape(layers.Reshape((3, 4)), input_shape=(12,)),
        "permute": output_shape(layers.Permute((2, 1)), input_shape=(10, 64)),
        "repeat_vector": output_shape(layers.Dense(32), layers.RepeatVector(3), input_shape=(32,)),
        "lambda_antirectifier": output_shape(layers.Lambda(antirectifier), input_shape=(64,)),
    }
    try:  # A.5.5 as printed: 12 values cannot take the shape (32,)
        output_shape(layers.Reshape((32,)), input_shape=(12,))
        out["reshape_book_refused"] = False
    except ValueError:
        out["reshape_book_refused"] = True
    x = np.random.RandomState(seed).normal(size=(3, 6, 4)).astype("float32")  # A.5.9's example
    x[0, 3, :] = 0
    x[2, 5, :] = 0
    mask = np.asarray(layers.Masking(mask_value=0.0).compute_mask(x))
    out["masked_steps"] = np.argwhere(~mask).tolist()
    bn = layers.BatchNormalization()
    bn.build((None, 4))
    mean, var = np.array([1.0, -1.0, 0.5, 0.0], "float32"), np.array([4.0, 1.0, 0.25, 9.0], "float32")
    bn.set_weights([np.full(4, 2.0, "float32"), np.full(4, 0.5, "float32"), mean, var])  # gamma, beta, moving
    y = np.asarray(bn(x[1], training=False))
    out["batchnorm_defaults"] = {"momentum": bn.momentum, "epsilon": bn.epsilon}
    out["batchnorm_inference_error"] = float(np.max(np.abs(y - ((x[1] - mean) / np.sqrt(var + bn.epsilon) * 2 + 0.5))))
    # A.6: the book's Dot / Multiply / K.dot example on [1..5] and [6..10], and the other merge layers
    a, b = np.arange(1, 6, dtype="float32")[None], np.arange(6, 11, dtype="float32")[None]
    out["merge"] = {
        "dot": np.asarray(layers.Dot(axes=1)([a, b])).ravel().tolist(),
        "multiply": np.asarray(layers.Multiply()([a, b])).ravel().tolist(),
        "matmul_transpose": np.asarray(ops.matmul(a, ops.transpose(b))).ravel().tolist(),  # the book's K.dot
        "add": np.asarray(layers.Add()([a, b])).ravel().tolist(),
        "subtract": np.asarray(layers.Subtract()([a, b])).ravel().tolist(),
        "average": np.asarray(layers.Average()([a, b])).ravel().tolist(),
        "maximum": np.asarray(layers.Maximum()([a, b])).ravel().tolist(),
        "minimum": np.asarray(layers.Minimum()([a, b])).ravel().tolist(),
    }
    inp = keras.Input(shape=(37,))  # A.6.2's Concatenate example
    hn = layers.Dense(10, activation="relu")(inp)
    out["concatenate"] = list(layers.Concatenate()([layers.Dense(37, activation="sigmoid")(hn),
                                                    layers.Dense(37)(hn)]).shape[1:])
    return out


def compute_appendix_a(seed: int) -> dict[str, Any]:
    """Every value appendix A states, computed with the running Keras 3 (``appA_checks``'s outputs.json)."""
    keras.utils.set_random_seed(seed)
    return {"keras_version": keras.__version__, "backend": keras.backend.backend(),
            "initializers": initializer_stats(seed), "activations": activation_errors(), "losses": loss_values(),
            "optimizers": optimizer_defaults(), "layers": layer_values(seed)}


def appendix_a_checks(o: dict[str, Any]) -> dict[str, bool]:
    """Each of the appendix's statements, true when Keras 3 bears it out (or, where Keras 3 changed it, when
    the change is the known one)."""
    close = lambda a, b, tol=1e-4: bool(np.allclose(a, b, atol=tol))  # noqa: E731
    act, loss, lay = o["activations"], o["losses"], o["layers"]
    checks = {f"init_{k.removesuffix('_ratio')}": abs(v - 1) < (0.02 if "std" in k else 0.01)
              for k, v in o["initializers"].items()}
    checks.update({f"activation_{k}": v < 1e-4 * (60 if k == "exponential" else 1)  # exp(4) = 54.6 in float32
                   for k, v in act.items() if k in BOOK_ACTIVATIONS})
    checks["activation_hard_sigmoid_is_keras3s_relu6"] = act["hard_sigmoid_vs_relu6"] < 1e-6
    checks["activation_hard_sigmoid_changed_from_book"] = act["hard_sigmoid_vs_book"] > 0.05
    checks["activation_softmax_sums_to_one"] = act["softmax_rows_sum_to_one"] < 1e-5
    checks["activation_relu_threshold_point_changed"] = act["relu_at_threshold_keras3"] == 0.0  # the book: 0.5
    checks.update({f"loss_{k}": abs(loss[k] - v) < 1e-4 for k, v in BOOK_LOSSES.items()})
    checks["loss_binary_crossentropy_formula"] = close(loss["binary_crossentropy"],
                                                       loss["binary_crossentropy_formula"], 1e-3)
    checks["optimizer_defaults_changed_where_known"] = changed_defaults(o["optimizers"]) == KNOWN_CHANGES
    checks["layer_flatten_65536"] = lay["flatten_channels_first"] == [65536]
    checks["layer_reshape_3_4"] = lay["reshape_3_4"] == [3, 4]
    checks["layer_reshape_book_refused"] = lay["reshape_book_refused"]
    checks["layer_permute"] = lay["permute"] == [64, 10]
    checks["layer_repeat_vector"] = lay["repeat_vector"] == [3, 32]
    checks["layer_lambda_doubles"] = lay["lambda_antirectifier"] == [128]
    checks["layer_masking"] = lay["masked_steps"] == [[0, 3], [2, 5]]
    checks["layer_batchnorm"] = (lay["batchnorm_defaults"] == {"momentum": 0.99, "epsilon": 0.001}
                                 and lay["batchnorm_inference_error"] < 1e-5)
    m = lay["merge"]
    checks["merge_dot_130"] = m["dot"] == [130.0] and m["matmul_transpose"] == [130.0]
    checks["merge_multiply"] = m["multiply"] == [6.0, 14.0, 24.0, 36.0, 50.0]
    checks["merge_add_subtract_average"] = (m["add"] == [7.0, 9.0, 11.0, 13.0, 15.0] and m["subtract"] == [-5.0] * 5
                                            and m["average"] == [3.5, 4.5, 5.5, 6.5, 7.5])
    checks["merge_maximum_minimum"] = m["maximum"] == [6.0, 7.0, 8.0, 9.0, 10.0] and m["minimum"] == [1.0, 2.0, 3.0,
                                                                                                     4.0, 5.0]
    checks["merge_concatenate_74"] = lay["concatenate"] == [74]
    return checks


def optimizer_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| optimizer | argument | the book (tf.keras 2.1) | Keras 3 |", "|---|---|---:|---:|"]
    text = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731  (Keras 3 stores float32 rates)
    for r in rows:
        mark = " **(changed)**" if changed_defaults([r]) else ""
        lines.append(f"| {r['optimizer']} | {r['argument']} | {text(r['book'])} | {text(r['keras3'])}{mark} |")
    return lines


def train_checks(ctx: Context) -> dict[str, Any]:
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    o = compute_appendix_a(ctx.run.seed)
    write_json(ctx.model_dir / "outputs.json", o)
    png = activations_png(ctx.train_dir / "activations.png")
    ctx.tracker.log_artifact(ctx.model_dir / "outputs.json", "samples")
    ctx.tracker.log_artifact(png, "plots")
    return {"train_examples": 0, "epochs": 0}


def evaluate_checks(ctx: Context) -> dict[str, Any]:
    o = read_json(ctx.model_dir / "outputs.json")
    checks = appendix_a_checks(o)
    metrics = {k: float(v) for k, v in checks.items()}
    metrics["checks_passed"] = float(np.mean(list(checks.values())))
    failed = [k for k, v in checks.items() if not v]
    if failed:
        print(f"{ctx.name}: {len(failed)} of {len(checks)} checks fail: {', '.join(failed)}", flush=True)
    ctx.eval_dir.mkdir(parents=True, exist_ok=True)
    (ctx.eval_dir / "optimizer_defaults.md").write_text("\n".join(optimizer_table(o["optimizers"])) + "\n",
                                                        encoding="utf-8")
    ctx.tracker.log_artifact(ctx.eval_dir / "optimizer_defaults.md", "samples")
    return write_metrics(ctx, metrics, keep=metrics)  # checks against the book, no split


# ------------------------------------------------------------------------------------------------------------
# Appendix B: smooth approximations (lines 6562-6670)
# ------------------------------------------------------------------------------------------------------------

BOOK_X = [2.0, 1.0, 3.0, 5.0, 4.0]
BOOK_SOFTMAX = [0.0317, 0.0117, 0.0861, 0.6364, 0.2341]
BOOK_SOFT_ARGMAX = 4.0296  # 1-indexed, as the book counts
BOOK_LOGSUMEXP = 5.4519    # K = 1


def smooth_max(x, k: float = 1.0):
    """B.1: max(x) ~ (1/K) logsumexp(K x), over the last axis; K -> inf gives the max. ``x`` (..., n)."""
    return ops.logsumexp(ops.multiply(x, k), axis=-1) / k


def soft_argmax(x, k: float = 1.0):
    """B.3: argmax(x) ~ sum_i i softmax(K x)_i, 1-indexed as the book counts. ``x`` (..., n) -> (...)."""
    n = ops.shape(x)[-1]
    return ops.sum(ops.softmax(ops.multiply(x, k), axis=-1) * ops.arange(1, n + 1, dtype=x.dtype), axis=-1)


def smooth_accuracy(y_true, y_pred):
    """B.4, binary: the mean of y p + (1 - y)(1 - p) over the batch, p the predicted probability of class 1."""
    y = ops.cast(ops.reshape(y_true, (-1,)), y_pred.dtype)
    p = ops.reshape(y_pred, (-1,))
    return ops.mean(y * p + (1 - y) * (1 - p))


@keras.saving.register_keras_serializable(package="dltm")
def smooth_f1_loss(y_true, y_pred):
    """B.4's smooth F1 of the positive class as a loss: 1 - 2 sum(t p) / sum(t + p) over the batch (one value
    per batch, not per example: F1 does not decompose). ``y_true`` (batch,) or (batch, 1) in {0, 1};
    ``y_pred`` (batch, 1) probabilities. The 1e-7 keeps a batch without positives and predictions finite."""
    t = ops.cast(ops.reshape(y_true, (-1,)), y_pred.dtype)
    p = ops.reshape(y_pred, (-1,))
    return 1.0 - 2.0 * ops.sum(t * p) / (ops.sum(t + p) + 1e-7)


def smooth_values() -> dict[str, Any]:
    """Appendix B's check values on the book's x = [2, 1, 3, 5, 4], through keras.ops, and how the smooth max
    and soft-argmax approach max = 5 and argmax = 4 as K grows."""
    x = ops.convert_to_tensor(np.array(BOOK_X, "float32"))
    ks = [0.5, 1, 2, 3, 5, 10, 20]
    return {
        "softmax": np.asarray(ops.softmax(x)).tolist(),
        "soft_argmax": float(soft_argmax(x)),
        "logsumexp": float(smooth_max(x)),
        "K": ks,
        "smooth_max_by_K": [float(smooth_max(x, k)) for k in ks],
        "soft_argmax_by_K": [float(soft_argmax(x, k)) for k in ks],
    }


def imbalanced_mr(ctx: Context) -> ClassifierData:
    """MR's sentences in a seeded order (``data_seed``), the last ``test_size`` share as the test side; each side
    keeps every negative sentence and a seeded ``positive_fraction`` of the positive ones: a minority class for F1
    to be about (the book's 1,000-sentence dev split would leave ~50 positives, too few to tell the losses
    apart)."""
    p = ctx.params
    prep = load_prepared_text(ctx.prepared("mr"), p["vocab_size"])
    rng = np.random.RandomState(p["data_seed"])
    order = rng.permutation(len(prep.y))
    n_test = round(len(order) * p["test_size"])

    def keep(idx: np.ndarray) -> np.ndarray:
        pos = idx[prep.y[idx] == 1]
        chosen = rng.choice(pos, size=max(1, round(len(pos) * p["positive_fraction"])), replace=False)
        return np.concatenate([idx[prep.y[idx] == 0], chosen])

    train, test = keep(order[:-n_test]), keep(order[-n_test:])
    train, test = train[rng.permutation(len(train))], test[rng.permutation(len(test))]  # a capped test: both
    return ClassifierData(prep.x[train], prep.y[train].astype("int32"), prep.x[test], prep.y[test].astype("int32"),
                          MR_CLASSES, prep.tokenizer,
                          {"vocab_size": p["vocab_size"], "doc_length": int(prep.x.shape[1]), "clean": prep.clean})


def build_mean_embedding(vocab_size: int, embed_size: int) -> keras.Model:
    """The classifier both losses train: Embedding (padding masked) -> the mean of the word vectors ->
    Dense(1, sigmoid); cheap enough for several seeds on a CPU. Input (batch, T) ids, output (batch, 1)."""
    inputs = keras.Input(shape=(None,), dtype="int32", name="words")
    x = layers.Embedding(vocab_size, embed_size, mask_zero=True, name="embedding")(inputs)
    x = MeanOverTime(name="mean")(x)  # zeros for a sentence without a known word (Keras' pooling: 0/0 = NaN)
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid", name="positive")(x), name="mean_embedding")


LOSSES = {"bce": "binary_crossentropy", "smooth_f1": smooth_f1_loss}
"""The losses appB_smooth compares, by the name its outputs use."""


def smooth_runs(ctx: Context) -> list[tuple[str, int]]:
    return [(loss, seed) for loss in LOSSES for seed in ctx.params["seeds"]]


def train_smooth(ctx: Context) -> dict[str, Any]:
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    values = smooth_values()
    write_json(ctx.model_dir / "smooth_values.json", values)
    fig, axes = figure(1, 2, figsize=(9, 3.5))
    axes[0].plot(values["K"], values["smooth_max_by_K"], marker="o", label="(1/K) logsumexp(Kx)")
    axes[0].axhline(max(BOOK_X), color="grey", linestyle=":", label="max = 5")
    axes[1].plot(values["K"], values["soft_argmax_by_K"], marker="o", label="sum i softmax(Kx)_i")
    axes[1].axhline(4, color="grey", linestyle=":", label="argmax = 4")
    for ax, t in zip(axes, ("B.1 smooth max", "B.3 soft-argmax (1-indexed)"), strict=True):
        ax.set(title=f"{t}, x = [2, 1, 3, 5, 4]", xlabel="K", xscale="log")
        ax.legend()
    ctx.tracker.log_artifact(save_png(fig, ctx.train_dir / "smooth_by_K.png"), "plots")

    data = imbalanced_mr(ctx)
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    infos, children = {}, {}
    for loss, seed in smooth_runs(ctx):
        name = f"{loss}-s{seed}"
        with Tracker(ctx.task.experiment, f"{ctx.task.id}/{name}", tags={"seed": str(seed), "loss": loss},
                     parent=ctx.tracker) as child:
            sub = Context(ctx.task, ctx.params, ctx.run, child, ctx.root)
            infos[name] = train_classifier(
                sub, data, lambda d: build_mean_embedding(ctx.params["vocab_size"], ctx.params["embed_size"]),
                fit, loss=LOSSES[loss], model_dir=ctx.model_dir / name, curves_dir=ctx.train_dir / name, seed=seed,
                save_optimizer=False)
            children[name] = child.run_id
    return {"train_examples": len(data.x_train), "train_positives": int(data.y_train.sum()),
            "epochs": max(v["epochs"] for v in infos.values()),
            "train_seconds": round(sum(v["train_seconds"] for v in infos.values()), 3), "child_runs": children}


def evaluate_smooth(ctx: Context) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    v = read_json(ctx.model_dir / "smooth_values.json")
    data = imbalanced_mr(ctx)
    n = ctx.run.cap_eval(len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    children = read_json(ctx.model_dir / "run.json").get("child_runs", {})
    runtime.seed_everything(ctx.run.seed)
    f1: dict[str, list[float]] = {loss: [] for loss in LOSSES}
    for loss, seed in smooth_runs(ctx):
        name = f"{loss}-s{seed}"
        _, y_pred = predict_labels(load_model(ctx, name), x, binary=True)
        f1[loss].append(float(f1_score(y, y_pred, zero_division=0.0)))
        if children.get(name):
            with Tracker(ctx.task.experiment, f"{ctx.task.id}/{name}", run_id=children[name],
                         parent=ctx.tracker) as child:
                child.log_metrics({"test_f1": f1[loss][-1]})
    metrics: dict[str, Any] = {
        "softmax_matches_book": float(np.allclose(v["softmax"], BOOK_SOFTMAX, atol=5e-5)),
        "soft_argmax_matches_book": float(abs(v["soft_argmax"] - BOOK_SOFT_ARGMAX) < 1e-3),
        "logsumexp_matches_book": float(abs(v["logsumexp"] - BOOK_LOGSUMEXP) < 1e-4),
        "soft_argmax": v["soft_argmax"], "logsumexp": v["logsumexp"],
        "test_f1": float(np.mean(f1["smooth_f1"])), "test_f1_std": float(np.std(f1["smooth_f1"])),
        "test_f1_bce": float(np.mean(f1["bce"])), "test_f1_bce_std": float(np.std(f1["bce"])),
        "seeds": len(ctx.params["seeds"]), "n_examples": int(n), "test_positives": int(y.sum()),
    }
    write_json(ctx.eval_dir / "f1_by_seed.json", {"seeds": ctx.params["seeds"], **f1})
    ctx.tracker.log_artifact(ctx.eval_dir / "f1_by_seed.json", "samples")
    return write_metrics(ctx, metrics, keep=[k for k in metrics if not k.startswith("test_")])


def appendix_table(root) -> list[str]:
    """The report's appendix section: appendix A's optimizer defaults beside Keras 3's, and appendix B's smooth
    F1 against binary cross-entropy."""
    lines = []
    a = root / "plots" / "appA_checks" / "eval" / "optimizer_defaults.md"
    if a.is_file():
        lines += ["### Appendix A: the book's optimizer defaults beside Keras 3's", "",
                  *a.read_text(encoding="utf-8").rstrip("\n").split("\n"), ""]
    b = root / "metrics" / "appB_smooth.json"
    if b.is_file():
        m = read_json(b)
        lines += ["### Appendix B: smooth F1 as a training loss, imbalanced MR", "",
                  f"Positive-class F1 on a held-out {m.get('n_examples')} MR sentences ({m.get('test_positives')} "
                  f"positive), mean +- std over {m.get('seeds')} seeds, threshold 0.5:", "",
                  "| loss | test F1 |", "|---|---:|",
                  f"| binary cross-entropy | {m['test_f1_bce']:.3f} +- {m['test_f1_bce_std']:.3f} |",
                  f"| 1 - smooth F1 (B.4) | {m['test_f1']:.3f} +- {m['test_f1_std']:.3f} |", ""]
    return lines


REPORT_SECTIONS = (appendix_table,)

PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "appA_checks": {},
    "appB_smooth": P.keys("epochs", "batch_size", "optimizer", "learning_rate", "embed_size", "test_size",
                          vocab_size=P.Int(2), positive_fraction=P.Float(0.0, 1.0, low_open=True), data_seed=P.Int(),
                          seeds=P.List(P.Int())),
}

TASKS = (
    Task("appA_checks", "Appendix A (lines 5950-6560)",
         "Keras' initialisers, activations, losses, optimizer defaults, core and merge layers: the appendix's "
         "values computed with Keras 3", None, "checks_passed", train_checks, evaluate_checks,
         Reference(1.0, "appendix A: CCE 0.0946, MSE 0.75, 4.4.1's 0.4797, [1..5].[6..10] = 130, the layer shapes; "
                   "Keras 3's changes (hard_sigmoid, Nadam/Adamax 0.001, Adadelta eps 1e-7) as expected"),
         notes="the share of the appendix's statements that Keras 3 bears out (or changed as documented)",
         run_params=("seed",)),
    Task("appB_smooth", "Appendix B (lines 6562-6670)",
         "logsumexp, softmax, soft-argmax and smooth F1; smooth F1 as a loss on imbalanced MR against binary "
         "cross-entropy", "mr", "test_f1", train_smooth, evaluate_smooth,
         Reference(None, "the book's check values for x = [2, 1, 3, 5, 4]: softmax ~[0.0317, 0.0117, 0.0861, "
                   "0.6364, 0.2341], soft-argmax 4.0296, logsumexp 5.4519; no published F1"),
         notes="positive-class F1 of the smooth-F1-trained classifier, mean over seeds; test_f1_bce: the same "
               "classifier trained with binary cross-entropy", also=("test_f1_bce",)),
)
