"""Chapter 11: attention, and custom regularisers and losses (第十一章 注意力机制, book lines 5173-5812).

The book's sections, in order, and the task ids that run them:

- 11.1.2 the alignment score functions: :mod:`dltm.attention` (chapter 10's attention decoder uses them)
- 11.3 custom regularisers and losses (lines 5353-5451): a 10 -> 8 -> 1 MLP with the book's three ways of
  adding a term to the loss -> ``ch11_custom_losses``:

  - 11.3.1 an activity regulariser *function* (``l1_reg``: 0.01 sum |x|) and a ``Regularizer`` *subclass*
    (:class:`L2Regularizer`);
  - 11.3.2 a custom loss (``custom_loss()``: binary cross-entropy, as a closure);
  - 11.3.3 ``model.add_loss`` of a penalty on a hidden layer's output: Keras 3 refuses ``add_loss`` on a
    symbolic tensor of a functional model, so the penalty is a layer that calls ``self.add_loss`` in ``call``
    (:class:`GramPenalty`), which also saves and reloads with the model.

Keras 3 divides an activity regulariser's value by the batch size, as tf.keras 2.1 did; a loss added in
``call`` is not divided.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from dltm import params as P
from dltm.tasks import Context, Reference, Task
from dltm.training import ClassifierData, FitSettings, evaluate_classifier, load_model, train_classifier

# ------------------------------------------------------------------------------------------------------------
# 11.3.1 custom regularisers, 11.3.2 a custom loss, 11.3.3 a penalty added in a layer's call
# ------------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dltm")
def l1_reg(x):
    """The book's regulariser function: ``0.01 * sum(|x|)`` (its coefficient fixed in the code, the book's point
    against this form). x: any shape; returns a scalar."""
    return 0.01 * ops.sum(ops.abs(x))


@keras.saving.register_keras_serializable(package="dltm")
class L2Regularizer(keras.regularizers.Regularizer):
    """The book's ``L2Regularizer``: ``l2 * sum(x x^T)``. Not an L2 penalty: for activations x (batch, units),
    ``sum(x x^T) = sum_i sum_j <x_i, x_j> = ||sum_i x_i||^2``, the squared norm of the batch's summed activation
    vector (for a weight matrix W (in, out): the squared norm of its row sum). Kept, under the book's name, for
    what the book shows: a regulariser class whose coefficient is a parameter and which serialises
    (``get_config``)."""

    def __init__(self, l2: float = 0.0):
        self.l2 = float(l2)

    def __call__(self, x):
        return self.l2 * ops.sum(ops.matmul(x, ops.transpose(x)))

    def get_config(self):
        return {"l2": self.l2}


@keras.saving.register_keras_serializable(package="dltm")
def mean_binary_crossentropy(y_true, y_pred):
    """The loss of the book's 11.3.2: binary cross-entropy averaged over the last axis
    (``K.mean(K.binary_crossentropy(y_true, y_pred), axis=-1)``): (batch, 1) -> (batch,)."""
    return ops.mean(ops.binary_crossentropy(ops.cast(y_true, y_pred.dtype), y_pred), axis=-1)


def custom_loss():
    """The book's 11.3.2: a function that returns the loss function, to pass to ``compile``. The book's returns a
    closure (``def loss(y_true, y_pred)`` inside): a model compiled with a closure saves but does not reload
    compiled in Keras 3 (it cannot find the function by name), so this returns :func:`mean_binary_crossentropy`,
    the same function registered under its name."""
    return mean_binary_crossentropy


@keras.saving.register_keras_serializable(package="dltm")
class GramPenalty(layers.Layer):
    """The book's 11.3.3 penalty, ``coef * sum(x^T x)`` of its input x (batch, units), added to the loss in
    ``call`` (Keras 3's way; the book calls ``model.add_loss`` on symbolic tensors, which Keras 3 refuses).
    ``sum(x^T x) = sum_i (sum_j x_ij)^2``: the squared row sums of the activations. Returns x unchanged."""

    def __init__(self, coef: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.coef = float(coef)

    def call(self, x):
        self.add_loss(self.coef * ops.sum(ops.matmul(ops.transpose(x), x)))
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "coef": self.coef}


def build_custom_losses_mlp(n_features: int, l2: float = 0.01, gram: float = 0.01, book: bool = True) -> keras.Model:
    """The book's 10 -> 8 -> 1 MLP (relu, he_normal; sigmoid output): ``l1_reg`` on the first layer's activity,
    :class:`L2Regularizer` (``l2``) on the second's, and :class:`GramPenalty` (``gram``) on the second's output;
    ``book=False``: the same MLP without any of them. Input (batch, n_features), output (batch, 1)."""
    inputs = keras.Input(shape=(n_features,), name="input")
    layer1 = layers.Dense(10, activation="relu", kernel_initializer="he_normal",
                          activity_regularizer=l1_reg if book else None, name="layer1")(inputs)
    layer2 = layers.Dense(8, activation="relu", kernel_initializer="he_normal",
                          activity_regularizer=L2Regularizer(l2) if book else None, name="layer2")(layer1)
    if book:
        layer2 = GramPenalty(gram, name="gram_penalty")(layer2)
    output = layers.Dense(1, activation="sigmoid", name="output")(layer2)
    return keras.Model(inputs, output, name="custom_losses_mlp" if book else "plain_mlp")


def penalty_terms(model: keras.Model, x: np.ndarray) -> dict[str, float]:
    """The three terms each batch ``x`` adds to the loss, computed from the hidden activations by NumPy: the
    activity regularisers divided by the batch size, as Keras applies them, and the Gram penalty as it is."""
    probe = keras.Model(model.inputs, [model.get_layer("layer1").output, model.get_layer("layer2").output])
    h1, h2 = (np.asarray(ops.convert_to_numpy(t), dtype=np.float64) for t in probe.predict_on_batch(x))
    n = len(x)
    l2 = model.get_layer("layer2").activity_regularizer.l2
    gram = model.get_layer("gram_penalty").coef
    return {"l1_reg": 0.01 * np.abs(h1).sum() / n, "l2_regularizer": l2 * (h2 @ h2.T).sum() / n,
            "gram_penalty": gram * (h2.T @ h2).sum()}


# ------------------------------------------------------------------------------------------------------------
# The task: the MLP with the three terms, beside the same MLP without them, on synthetic binary data
# ------------------------------------------------------------------------------------------------------------


def synthetic_data(p: dict[str, Any]) -> ClassifierData:
    """scikit-learn's ``make_classification`` (the book gives no data for 11.3): ``n_samples`` examples of
    ``n_features`` features, two classes, the last ``test_size`` share as the test split, from ``data_seed``."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=p["n_samples"], n_features=p["n_features"], n_informative=p["n_informative"],
                               random_state=p["data_seed"])
    n_test = round(len(x) * p["test_size"])
    x, y = x.astype("float32"), y.astype("int32")
    return ClassifierData(x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:], ["0", "1"])


def train_custom_losses(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    data = synthetic_data(p)
    fit = FitSettings.from_params(p, ctx.task.id)
    info = train_classifier(ctx, data, lambda d: build_custom_losses_mlp(d.x_train.shape[1], p["l2"], p["gram"]),
                            fit, loss=custom_loss())
    plain = train_classifier(ctx, data, lambda d: build_custom_losses_mlp(d.x_train.shape[1], book=False), fit,
                             loss=custom_loss(), model_dir=ctx.model_dir / "plain", curves_dir=ctx.train_dir / "plain")
    return {**info, "plain_epochs": plain["epochs"]}


def evaluate_custom_losses(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    data = synthetic_data(p)
    n = ctx.run.cap_eval(len(data.x_test))

    def extra(model: keras.Model) -> dict[str, float]:
        plain = load_model(ctx, "plain")
        y_plain = (np.asarray(plain.predict(data.x_test[:n], verbose=0))[:, 0] > 0.5).astype("int32")
        terms = penalty_terms(model, data.x_test[:n])
        return {"test_accuracy_without_penalties": float(np.mean(y_plain == data.y_test[:n])),
                **{f"{k}_term": float(v) for k, v in terms.items()}}

    return evaluate_classifier(ctx, data, extra)


PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch11_custom_losses": P.keys("epochs", "batch_size", "optimizer", n_samples=P.Int(10),
                                 n_features=P.POSITIVE_INT, n_informative=P.POSITIVE_INT, data_seed=P.Int(0),
                                 test_size=P.Float(0.0, 1.0, low_open=True, high_open=True),
                                 l2=P.Float(0.0), gram=P.Float(0.0)),
}

TASKS = (
    Task("ch11_custom_losses", "11.3 (lines 5353-5451)",
         "10->8->1 MLP with a regulariser function, a Regularizer subclass, a custom loss and a penalty in call",
         None, "test_accuracy", train_custom_losses, evaluate_custom_losses,
         Reference(None, "the book trains no model here; beside the same MLP without the three terms"),
         notes="synthetic binary data (make_classification); the *_term values: what each term adds to the loss "
               "on the test batch", also=("test_accuracy_without_penalties", "l1_reg_term", "l2_regularizer_term",
                                          "gram_penalty_term")),
)
