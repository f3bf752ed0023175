"""Chapter 11: attention, custom regularisers and losses, self-attentive author profiling (第十一章 注意力机制,
book lines 5173-5812).

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
- 11.4 author profiling with a self-attentive sentence embedding (lines 5453-5553): Lin et al. (2017)'s
  Embedding -> BiLSTM -> A = softmax(W_s2 tanh(W_s1 H^T)) -> M = A H -> Flatten -> Dense, with the book's bugs
  fixed (:mod:`dltm.self_attention`), predicting a blogger's age group and gender, beside a BiLSTM with max
  pooling, Kim's CNN and a TF-IDF logistic regression on the same split -> ``ch11_author_profiling``
- 11.5 title generation (lines 5555-5798): abstract -> title with a BiGRU encoder and a GRU decoder with "general"
  attention (:class:`AttentiveGRUDecoder`), whose context now feeds the next step (the book's loop computes it
  and never uses it: ``book_faithful`` keeps that loop), decoded by chapter 10's
  :class:`dltm.translation.Translator` (greedy, as the book, and beam search), scored by ROUGE
  -> ``ch11_title_generation``

Keras 3 divides an activity regulariser's value by the batch size, as tf.keras 2.1 did; a loss added in
``call`` is not divided.

11.4's data: the book's PAN 2013 sample is not public; the Blog Authorship Corpus stands in (:mod:`dltm.blogs`:
1,500 bloggers, 250 per gender x age group, 300 of them held out, split by blogger). Each blogger is one
document, tokenized as the book does (``Tokenizer(num_words=vocab_size)``, fitted here on the training bloggers
only) and cut to its last ``time_steps`` words (the book's ``pad_sequences(padding='post')`` keeps the last words
of a longer text).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from dltm import datasets, runtime
from dltm import params as P
from dltm.attention import AlignmentAttention
from dltm.blogs import AGE_GROUPS, GENDERS, load_authors
from dltm.cli import MissingOutputError, UserError
from dltm.data import DataFileError
from dltm.evaluation import figure, save_png, write_metrics
from dltm.inference import encode
from dltm.io import read_json, write_text
from dltm.params import ParamError, require
from dltm.rouge import rouge_scores
from dltm.self_attention import MaskedMaxPooling, StructuredSelfAttention, redundancy
from dltm.tasks import Context, Reference, Task, dvc_stage
from dltm.text import Tokenizer
from dltm.tracking import Tracker, curve_names, epoch_logger
from dltm.training import (
    ClassifierData,
    FitSettings,
    StopOnNonFiniteLoss,
    evaluate_classifier,
    load_model,
    predict_labels,
    train_classifier,
)
from dltm.translation import END, START, detokenize, load_translator, save_translator, split_words, token_index
from dltm.translation import encode as encode_tokens
from pipelines.ch07_text_cnn import build_kim_cnn, output_layer
from pipelines.ch09_lstm_sentiment import csv_text
from pipelines.ch10_seq2seq import NotPadding, attention_png, samples_table, teacher_forcing

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

# ------------------------------------------------------------------------------------------------------------
# 11.4 author profiling: Lin et al.'s self-attentive model, and the baselines on the same split
# ------------------------------------------------------------------------------------------------------------

TARGETS = {"age": ("age_group", list(AGE_GROUPS)), "gender": ("gender", list(GENDERS))}
"""What ``targets`` may name -> (the field of a prepared blogger, its classes)."""
PROFILERS = ("self_attention", "bilstm_max", "kim_cnn")
"""The neural models of ``models``, trained once per seed; ``tfidf_lr`` (deterministic) is fit in evaluate."""


def build_self_attentive(time_steps: int, n_classes: int, vocab_size: int = 5000, embed_size: int = 64,
                         hidden_size: int = 200, da: int = 30, r: int = 50, penalty: float = 1.0) -> keras.Model:
    """Figure 11.3 and the book's listing (``inputs``, ``embed``, ``H``, ``A``, ``M``), fixed: Embedding (padding
    masked) -> BiLSTM(``hidden_size``) every step, H (batch, T, 2u) -> :class:`StructuredSelfAttention` (``da``,
    ``r`` hops, the penalty ``penalty * ||A A^T - I||_F^2``) -> M (batch, r, 2u) -> Flatten -> softmax over the
    classes (sigmoid for two). Input (batch, time_steps) word ids; output (batch, n_classes) or (batch, 1)."""
    inputs = keras.Input(shape=(time_steps,), dtype="int32", name="inputs")
    embed_input = layers.Embedding(vocab_size, embed_size, mask_zero=True, name="embed")(inputs)
    H = layers.Bidirectional(layers.LSTM(hidden_size, return_sequences=True), name="H")(embed_input)
    M, _ = StructuredSelfAttention(da, r, penalty, name="A")(H)
    flat = layers.Flatten(name="flat")(M)
    return keras.Model(inputs, output_layer(n_classes)(flat), name="self_attentive")


def build_bilstm_max(time_steps: int, n_classes: int, vocab_size: int = 5000, embed_size: int = 64,
                     hidden_size: int = 200) -> keras.Model:
    """Lin et al.'s BiLSTM baseline: the same Embedding and BiLSTM, max pooling over the real words instead of
    attention. Input and output as :func:`build_self_attentive`'s."""
    inputs = keras.Input(shape=(time_steps,), dtype="int32", name="inputs")
    embed_input = layers.Embedding(vocab_size, embed_size, mask_zero=True, name="embed")(inputs)
    H = layers.Bidirectional(layers.LSTM(hidden_size, return_sequences=True), name="H")(embed_input)
    return keras.Model(inputs, output_layer(n_classes)(MaskedMaxPooling(name="maxpool")(H)), name="bilstm_max")


def profiler_builder(model: str, s: dict[str, Any], n_classes: int):
    """``model``'s builder at the task's sizes. Kim's CNN: Kim's 100 filters of 3, 4 and 5 words, on the same
    embedding size."""
    common = {"vocab_size": s["vocab_size"], "embed_size": s["embed_size"]}
    if model == "kim_cnn":
        return lambda d: build_kim_cnn(d.info["doc_length"], filter_nums=100, conv="1d", n_classes=n_classes,
                                       **common)
    if model == "bilstm_max":
        return lambda d: build_bilstm_max(d.info["doc_length"], n_classes, hidden_size=s["hidden_size"], **common)
    return lambda d: build_self_attentive(d.info["doc_length"], n_classes, hidden_size=s["hidden_size"], da=s["da"],
                                          r=s["r"], penalty=s["penalty"], **common)


def profiling_plan(ctx: Context) -> tuple[list[str], list[str], list[int]]:
    """(targets, models, seeds) of the task's params, checked: each a non-empty list without repeats."""
    where = ctx.task.id
    plan = [require(ctx.params, k, list, where) for k in ("targets", "models", "seeds")]
    for key, values in zip(("targets", "models", "seeds"), plan, strict=True):
        if not values or len(set(map(str, values))) != len(values):
            raise ParamError(f"params.yaml: {where}.{key} must be a non-empty list without repeats, got {values!r}")
    return [str(t) for t in plan[0]], [str(m) for m in plan[1]], [int(x) for x in plan[2]]


@dataclass
class Bloggers:
    """The prepared bloggers of both splits, the training ones shuffled with seed 10 (as the book's
    ``np.random.seed(10)``, by NumPy's newer generator: another order)."""

    train: list[dict[str, Any]]
    test: list[dict[str, Any]]

    def labels(self, target: str, split: str) -> np.ndarray:
        field_name, classes = TARGETS[target]
        return np.array([classes.index(b[field_name]) for b in getattr(self, split)], dtype=np.int32)


def load_bloggers(ctx: Context) -> Bloggers:
    train = load_authors(ctx.prepared("authors"), "train")
    order = np.random.default_rng(10).permutation(len(train))  # seed 10, as the book's shuffle
    return Bloggers([train[i] for i in order], load_authors(ctx.prepared("authors"), "test"))


def profiling_info(s: dict[str, Any]) -> dict[str, Any]:
    """``data_info.json``'s encoding: the last ``time_steps`` words of a text, zeros after a shorter one."""
    return {"doc_length": s["time_steps"], "padding": "post", "truncating": "pre", "clean": "none",
            "vocab_size": s["vocab_size"]}


def profiling_data(bloggers: Bloggers, target: str, tokenizer: Tokenizer, s: dict[str, Any],
                   x: tuple[np.ndarray, np.ndarray] | None = None) -> ClassifierData:
    """One target's :class:`ClassifierData`: word ids (:func:`dltm.inference.encode`: the last ``time_steps``
    words) and class ids; ``x`` reuses the encoded (train, test) arrays of another target."""
    info = profiling_info(s)
    if x is None:
        x = tuple(encode([b["text"] for b in rows], tokenizer, info) for rows in (bloggers.train, bloggers.test))
    classes = TARGETS[target][1]
    return ClassifierData(x[0], bloggers.labels(target, "train"), x[1], bloggers.labels(target, "test"), classes,
                          tokenizer, {**info, "n_classes": len(classes), "target": target})


def train_author_profiling(ctx: Context) -> dict[str, Any]:
    """Every (target, neural model, seed) on the same split, an MLflow child run each (``<task>/<target>_<model>_s
    <seed>``), saved in ``models/<task>/<target>_<model>_s<seed>/``; early stopping on the last
    ``validation_split`` of the training bloggers."""
    where = ctx.task.id
    s = ctx.params
    targets, models, seeds = profiling_plan(ctx)
    fit = FitSettings.from_params(s, where)
    bloggers = load_bloggers(ctx)
    tokenizer = Tokenizer(num_words=s["vocab_size"])
    tokenizer.fit_on_texts(b["text"] for b in bloggers.train)
    x = None
    children, rows = {}, []
    for target in targets:
        data = profiling_data(bloggers, target, tokenizer, s, x)
        x = (data.x_train, data.x_test)
        for model in (m for m in models if m in PROFILERS):
            for seed in seeds:
                name = f"{target}_{model}_s{seed}"
                with Tracker(ctx.task.experiment, f"{where}/{name}", parent=ctx.tracker,
                             tags={"target": target, "model": model, "seed": str(seed)}) as child:
                    sub = dataclasses.replace(ctx, tracker=child)
                    info = train_classifier(sub, data, profiler_builder(model, s, len(data.class_names)), fit,
                                            model_dir=ctx.model_dir / name, curves_dir=ctx.train_dir / name,
                                            seed=seed, save_optimizer=False)
                    children[name] = child.run_id
                rows.append({"target": target, "model": model, "seed": seed, "params": info["params"],
                             "epochs": info["epochs"], "best_epoch": info.get("best_epoch", info["epochs"]),
                             "train_seconds": info["train_seconds"]})
    if rows:
        write_text(ctx.train_dir / "runs.csv", csv_text(rows))
        ctx.tracker.log_artifact(ctx.train_dir / "runs.csv", "plots")
    return {"train_bloggers": len(bloggers.train), "test_bloggers": len(bloggers.test),
            "train_seconds": round(sum(r["train_seconds"] for r in rows), 3), "targets": targets, "models": models,
            "seeds": seeds, "runs": rows, "child_runs": children,
            "epochs": max((r["epochs"] for r in rows), default=0)}


def tfidf_accuracy(bloggers: Bloggers, target: str, time_steps: int, n_test: int) -> float:
    """A TF-IDF logistic regression (scikit-learn: sublinear tf, words in 2+ training documents, L2, C=1) on the
    last ``time_steps`` words of each text, split as the book's Tokenizer splits: every word, where the neural
    models keep the last ``time_steps`` words of their vocabulary (a span as long or longer). All training
    bloggers (``run.max_train_examples`` caps the neural models only); the test accuracy of the first ``n_test``
    test bloggers."""
    from dltm.baselines import tfidf_logistic_regression

    def docs(rows):
        split = Tokenizer().text_to_word_sequence  # lower-cased, punctuation dropped; no vocabulary needed
        return [" ".join(split(b["text"])[-time_steps:]) for b in rows]

    y_pred = tfidf_logistic_regression(docs(bloggers.train), bloggers.labels(target, "train"),
                                       docs(bloggers.test[:n_test]))
    return float(np.mean(y_pred == bloggers.labels(target, "test")[:n_test]))


def token_weights(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A (n, r, T), each token's weight summed over the hops / r (n, T)) of a self-attentive model."""
    probe = keras.Model(model.inputs, model.get_layer("A").output[1])
    a = np.asarray(ops.convert_to_numpy(probe.predict(x, verbose=0, batch_size=64)), dtype=np.float64)
    return a, a.mean(axis=1)


def words_heatmap_png(examples: list[tuple[str, list[str], np.ndarray]], path, title: str, window: int = 96,
                      per_line: int = 12):
    """Lin et al.'s Figure 2: the words of each text, left to right and line by line, on a background as dark as
    their attention (the mean over the hops), the ``window`` consecutive words with the most of it. Each panel's
    colours span its own lowest to highest weight, both given in its title beside the uniform weight 1/T: a
    nearly uniform attention still shows which words it leans to, and says how little."""
    fig, axes = figure(len(examples), 1, figsize=(12, 3.1 * len(examples)), squeeze=False)
    for ax, (label, words, w) in zip(axes[:, 0], examples, strict=True):
        start = int(np.argmax(np.convolve(w, np.ones(min(window, len(w))), "valid"))) if len(w) > window else 0
        ws, ww = words[start:start + window], w[start:start + window]
        lo, hi = float(ww.min()), float(ww.max())
        ax.set_axis_off()
        ax.set_xlim(0, per_line)
        ax.set_ylim(-(len(ws) // per_line + 1), 1)
        for i, (word, weight) in enumerate(zip(ws, ww, strict=True)):
            shade = (weight - lo) / (hi - lo) if hi > lo else 1.0
            ax.text(i % per_line + 0.02, -(i // per_line), word[:14], fontsize=8, va="top",
                    bbox={"facecolor": (1.0, 0.2, 0.1, 0.05 + 0.95 * float(shade)), "edgecolor": "none", "pad": 1.5})
        ax.set_title(f"{label}; words {start + 1}-{start + len(ws)} of {len(w)}; weights {lo:.4f} (palest) to "
                     f"{hi:.4f} (darkest), uniform {1 / len(w):.4f}", fontsize=9, loc="left")
    fig.suptitle(title)
    return save_png(fig, path)


def evaluate_author_profiling(ctx: Context) -> dict[str, Any]:
    """Test accuracy of every (target, model, seed), mean ± std over the seeds (``test_<model>_<target>_accuracy``
    with ``_mean``, ``_std``, ``_n``); the TF-IDF baseline; the self-attention's redundancy ``||A A^T - I||_F^2``
    on the test texts (what the penalty lowers); the attention over the words of a few test texts
    (``attention.png``)."""
    where = ctx.task.id
    s = ctx.params
    targets, models, seeds = profiling_plan(ctx)
    bloggers = load_bloggers(ctx)
    n = ctx.run.cap_eval(len(bloggers.test))
    run_info = read_json(ctx.model_dir / "run.json")
    children = run_info.get("child_runs", {})
    metrics: dict[str, Any] = {}
    rows = []
    for target in targets:
        y = bloggers.labels(target, "test")[:n]
        for model in models:
            accs, redund = [], []
            for seed in seeds if model in PROFILERS else [None]:
                if model == "tfidf_lr":
                    acc = tfidf_accuracy(bloggers, target, s["time_steps"], n)
                    rows.append({"target": target, "model": model, "seed": "", "accuracy": round(acc, 6)})
                    accs.append(acc)
                    continue
                name = f"{target}_{model}_s{seed}"
                keras_model = load_model(ctx, name)
                tok = Tokenizer.load(ctx.model_dir / name / "tokenizer.json")
                x = encode([b["text"] for b in bloggers.test[:n]], tok, profiling_info(s))
                _, y_pred = predict_labels(keras_model, x, binary=len(TARGETS[target][1]) == 2)
                acc = float(np.mean(y_pred == y))
                accs.append(acc)
                row = {"target": target, "model": model, "seed": seed, "accuracy": round(acc, 6)}
                if model == "self_attention":
                    a, _ = token_weights(keras_model, x)
                    row["redundancy"] = float(np.mean(ops.convert_to_numpy(redundancy(ops.convert_to_tensor(a)))))
                    redund.append(row["redundancy"])
                rows.append(row)
                if children.get(name):
                    with Tracker(ctx.task.experiment, f"{where}/{name}", run_id=children[name],
                                 parent=ctx.tracker) as child:
                        child.log_metrics({"test_accuracy": acc})
            a = np.asarray(accs)
            metrics.update({f"{model}_{target}_accuracy_mean": float(a.mean()),
                            f"{model}_{target}_accuracy_std": float(a.std()), f"{model}_{target}_accuracy_n": len(a)})
            if redund:
                metrics[f"{model}_{target}_redundancy"] = float(np.mean(redund))
    metrics["n_examples"] = int(n)
    write_text(ctx.eval_dir / "accuracy.csv", csv_text(rows))
    ctx.tracker.log_artifact(ctx.eval_dir / "accuracy.csv", "plots")
    if "self_attention" in models:
        heatmap(ctx, bloggers, targets[0], f"{targets[0]}_self_attention_s{seeds[0]}")
    return write_metrics(ctx, metrics, keep=["n_examples"])


def heatmap(ctx: Context, bloggers: Bloggers, target: str, name: str) -> None:
    """``attention.png`` and ``attention.md``: the words of the first ``heatmap_examples`` test bloggers under
    the attention of model ``name``, and the ten words it weighs most in each."""
    k = min(ctx.params["heatmap_examples"], len(bloggers.test))
    if not k:
        return
    model = load_model(ctx, name)
    tok = Tokenizer.load(ctx.model_dir / name / "tokenizer.json")
    info = profiling_info(ctx.params)
    rows = bloggers.test[:k]
    x = encode([b["text"] for b in rows], tok, info)
    _, w = token_weights(model, x)
    field_name, classes = TARGETS[target]
    y_prob, y_pred = predict_labels(model, x, binary=len(classes) == 2)
    examples, lines = [], [f"# {ctx.name}: the words `{name}` attends to most, first {k} test bloggers\n"]
    for b, ids, weights, pred in zip(rows, x, w, y_pred, strict=True):
        real = ids > 0
        words = [tok.index_word[int(i)] for i in ids[real]]
        label = f"blogger {b['blogger']}: {b[field_name]}, predicted {classes[int(pred)]}"
        examples.append((label, words, weights[real]))
        top = np.argsort(-weights[real])[:10]
        lines.append(f"- {label}: " + ", ".join(f"{words[i]} ({weights[real][i]:.3f})" for i in top))
    png = words_heatmap_png(examples, ctx.eval_dir / "attention.png",
                            f"{ctx.task.id}: self-attention over the words (mean of the hops)")
    write_text(ctx.eval_dir / "attention.md", "\n".join(lines) + "\n")
    ctx.tracker.log_artifact(png, "plots")
    ctx.tracker.log_artifact(ctx.eval_dir / "attention.md", "samples")


# ------------------------------------------------------------------------------------------------------------
# 11.5 title generation: abstract -> title with a BiGRU encoder and an attentive GRU decoder
# ------------------------------------------------------------------------------------------------------------

TITLES_FILE = "title.json"


def read_titles(path: Path) -> tuple[list[str], list[str]]:
    """(abstracts, titles) of the book's ``title.json`` (JSON lines ``{"Title", "Abstract"}``), in file order; an
    abstract's line breaks joined (a word hyphenated across a line break, "es-\\ntimate", made whole again).
    Raises MissingOutputError for a missing file and DataFileError, naming the line, for a line that is not
    JSON or lacks a field."""
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@titles`")
    abstracts, titles = [], []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFileError(f"{path}:{i}: not a JSON line ({e.msg})") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip()
                                                for k in ("Title", "Abstract")):
            raise DataFileError(f"{path}:{i}: expected {{\"Title\": text, \"Abstract\": text}}")
        abstracts.append(" ".join(re.sub(r"-\n(?=\w)", "", row["Abstract"]).split()))
        titles.append(" ".join(row["Title"].split()))
    return abstracts, titles


@keras.saving.register_keras_serializable(package="dltm")
class MaskedMean(layers.Layer):
    """``[sequence (batch, S, d), mask (batch, S)]`` -> the mean of the real steps (batch, d): the book's first
    context ``c = K.mean(encoder_outputs, axis=1)``, padding left out."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the mask is an input here

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def call(self, inputs):
        x, mask = inputs
        keep = ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return ops.sum(x * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1.0)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[0][2])


@keras.saving.register_keras_serializable(package="dltm")
class AttentiveGRUDecoder(layers.Layer):
    """The book's 11.5 decoder loop as one layer: for each step t,

        s_t = GRU([E y_{t-1}; c_{t-1}], s_{t-1}),   alpha_t = softmax_j(s_t^T W_a h_j),   c_t = sum_j alpha_tj h_j

    (the "general" score of :class:`dltm.attention.AlignmentAttention`; padding of the source excluded), the
    context of each step fed to the next (Bahdanau et al. 2015's order). ``feed_context=False`` is the book's
    loop: it computes ``c`` but concatenates the first context (the mean) at every step, so attention changes
    nothing.

    ``call(y, encoder_outputs, state, context, key_mask)``: y (batch, T, e) with T known, encoder outputs
    (batch, S, d), the first state (batch, units) and context (batch, d), key_mask (batch, S) True for a real
    source token -> (outputs s_1..s_T (batch, T, units), weights (batch, T, S), s_T, c_T)."""

    def __init__(self, units: int, feed_context: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.feed_context = int(units), bool(feed_context)
        self.cell = layers.GRUCell(self.units, name="decoder")
        self.attention = AlignmentAttention("general", name="attention")
        self.supports_masking = True  # the title's padding: the loss leaves it out (ignore_class=0)

    def compute_mask(self, inputs, previous_mask=None):
        return [None] * 4

    def build(self, y_shape, encoder_outputs_shape, state_shape=None, context_shape=None, key_mask_shape=None):
        self.cell.build((y_shape[0], y_shape[-1] + encoder_outputs_shape[-1]))
        self.attention.build((y_shape[0], 1, self.units), encoder_outputs_shape)

    def call(self, y, encoder_outputs, state, context, key_mask=None):
        outputs, weights = [], []
        for t in range(y.shape[1]):
            out, new = self.cell(ops.concatenate([y[:, t], context], axis=-1), state)
            state = new[0] if isinstance(new, (list, tuple)) else new
            c, w = self.attention(ops.expand_dims(out, 1), encoder_outputs, key_mask=key_mask)
            if self.feed_context:
                context = c[:, 0]
            outputs.append(out)
            weights.append(w[:, 0])
        return ops.stack(outputs, axis=1), ops.stack(weights, axis=1), state, context

    def compute_output_shape(self, y_shape, encoder_outputs_shape, state_shape=None, context_shape=None,
                             key_mask_shape=None):
        return ((y_shape[0], y_shape[1], self.units), (y_shape[0], y_shape[1], encoder_outputs_shape[1]),
                (y_shape[0], self.units), (y_shape[0], encoder_outputs_shape[-1]))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "feed_context": self.feed_context}


def build_title_model(num_tokens: int, decoder_steps: int, embed_size: int = 100, hidden_size: int = 500,
                      book_faithful: bool = False) -> keras.Model:
    """Figure 11.8 and the book's title_train.py: one ``embed`` (Embedding(num_tokens + 1, embed_size), 0 =
    padding) for abstracts and titles; ``encoder`` = Bidirectional(GRU(hidden_size)) over the abstract; its
    forward final state starts :class:`AttentiveGRUDecoder` (``decoder``), whose first context is the mean of
    the encoder outputs; ``outputs`` = Dense(num_tokens + 1, softmax). ``book_faithful``: the book's loop, which
    never feeds the attention context back. Inputs: abstract ids (batch, S), title ids (batch, decoder_steps);
    output (batch, decoder_steps, num_tokens + 1)."""
    encoder_inputs = keras.Input(shape=(None,), dtype="int32", name="encoder_inputs")
    decoder_inputs = keras.Input(shape=(decoder_steps,), dtype="int32", name="decoder_inputs")
    embed = layers.Embedding(num_tokens + 1, embed_size, mask_zero=True, name="embed")
    encoder = layers.Bidirectional(layers.GRU(hidden_size, return_sequences=True, return_state=True), name="encoder")
    encoder_outputs, encoder_states, _ = encoder(embed(encoder_inputs))
    mask = NotPadding(name="source_mask")(encoder_inputs)
    c = MaskedMean(name="mean_context")([encoder_outputs, mask])
    decoder = AttentiveGRUDecoder(hidden_size, feed_context=not book_faithful, name="attentive_decoder")
    decoder_outputs, _, _, _ = decoder(embed(decoder_inputs), encoder_outputs, encoder_states, c, key_mask=mask)
    outputs = layers.Dense(num_tokens + 1, activation="softmax", name="outputs")(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], outputs, name="title_generator")


def inference_models(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The book's ``encoder_model`` and ``decoder_model`` in :mod:`dltm.translation`'s contract: abstract ids ->
    ``[s_0, c_0, encoder outputs, source mask]``; ``[token (batch, 1), s, c, encoder outputs, mask]`` ->
    ``[probabilities (batch, 1, V), s', c', attention weights (batch, 1, S)]`` (two recurrent states, two
    memories). Raises UserError for a model that is not :func:`build_title_model`'s."""
    if model.name != "title_generator":
        raise UserError(f"{model.name}: not chapter 11.5's title generator")
    get = model.get_layer
    decoder = get("attentive_decoder")
    encoder_inputs = keras.Input(shape=(None,), dtype="int32", name="encoder_inputs")
    encoder_outputs, s0, _ = get("encoder")(get("embed")(encoder_inputs))
    mask = get("source_mask")(encoder_inputs)
    encoder_model = keras.Model(encoder_inputs, [s0, get("mean_context")([encoder_outputs, mask]), encoder_outputs,
                                                 mask], name="encoder_model")
    d = int(encoder_outputs.shape[-1])
    token = keras.Input(shape=(1,), dtype="int32", name="decoder_inputs")
    s_in = keras.Input(shape=(decoder.units,), name="decoder_state_input")
    c_in = keras.Input(shape=(d,), name="context_input")
    outputs_in = keras.Input(shape=(None, d), name="encoder_outputs_input")
    mask_in = keras.Input(shape=(None,), dtype="bool", name="source_mask_input")
    out, weights, s, c = decoder(get("embed")(token), outputs_in, s_in, c_in, key_mask=mask_in)
    return encoder_model, keras.Model([token, s_in, c_in, outputs_in, mask_in], [get("outputs")(out), s, c, weights],
                                      name="decoder_model")


def title_split(ctx: Context) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """((train abstracts, titles), (dev abstracts, titles)): the last ``dev_size`` pairs of the file are the dev
    set (the book's); the others train, in a ``split_seed`` random order (Keras' ``validation_split`` takes the
    last of them). Raises ParamError when dev_size leaves fewer than 2 training pairs."""
    s = ctx.params
    abstracts, titles = read_titles(datasets.require("titles", ctx.root / "data" / "raw") / TITLES_FILE)
    n_train = len(abstracts) - s["dev_size"]
    if n_train < 2:
        raise ParamError(f"params.yaml: {ctx.task.id}.dev_size {s['dev_size']} leaves {max(n_train, 0)} training "
                         f"pairs of {len(abstracts)}; need 2")
    order = np.random.default_rng(s["split_seed"]).permutation(n_train)[:ctx.run.cap_train(n_train)]
    return ([abstracts[i] for i in order], [titles[i] for i in order]), (abstracts[n_train:], titles[n_train:])


def train_titles(ctx: Context) -> dict[str, Any]:
    """Teacher forcing, as chapter 10 (sparse cross-entropy over real tokens, ``ignore_class=0``), one vocabulary
    of ``vocab_size`` tokens (``<unk>`` and the start and end tokens included) for abstracts and titles, fitted
    on the training pairs; early stopping on the validation loss where ``patience`` > 0 (the book: 100 epochs,
    no validation)."""
    s = ctx.params
    if s["patience"] and not s["validation_split"]:
        raise ParamError(f"params.yaml: {ctx.task.id}.patience needs {ctx.task.id}.validation_split > 0 (early "
                         f"stopping watches the validation loss)")
    (abstracts, titles), _ = title_split(ctx)
    n_fit = math.floor(len(abstracts) * (1 - s["validation_split"]))  # Keras' validation_split cut
    if n_fit < 1:
        raise ParamError(f"params.yaml: {ctx.task.id}.validation_split {s['validation_split']} leaves no training "
                         f"pair of {len(abstracts)}")
    src = [split_words(a, "en") for a in abstracts]
    tgt = [split_words(t, "en") for t in titles]
    index = token_index([*src, *([START, *t, END] for t in tgt)], s["vocab_size"], unknown=True)
    encoder_input_data = encode_tokens(src, index, s["encoder_steps"])
    decoder_input_data, decoder_target_data = teacher_forcing(tgt, index, s["decoder_steps"])
    strategy = runtime.setup(ctx.run)
    epochs = ctx.run.epochs(s["epochs"])
    with strategy.scope():
        model = build_title_model(len(index), s["decoder_steps"], s["embed_size"], s["hidden_size"],
                                  s["book_faithful"])
        model.compile(optimizer=s["optimizer"], loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))
    print(f"{ctx.name}: {len(src)} training pairs, {len(index)} tokens, {model.count_params():,} parameters",
          flush=True)
    callbacks = [StopOnNonFiniteLoss(ctx.name, epochs), epoch_logger(ctx.tracker, "val", epochs)]
    if s["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(patience=s["patience"], restore_best_weights=True))
    start = time.perf_counter()
    hist = model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=s["batch_size"],
                     epochs=epochs, validation_split=s["validation_split"], verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items()}, "val")
    info = {"task": ctx.name, "module": __name__, "unit": "word", "source_lang": "en", "target_lang": "en",
            "input_token_index": index, "target_token_index": index, "max_encoder_seq_length": s["encoder_steps"],
            "max_decoder_seq_length": s["decoder_steps"], "n_states": 2, "n_memory": 2, "example": abstracts[0]}
    save_translator(ctx, model, info, history, seconds)
    val = history.get("val_loss", [])
    return {"train_examples": n_fit, "validation_examples": len(src) - n_fit, "epochs": len(history["train_loss"]),
            "best_epoch": int(np.argmin(val)) + 1 if val else len(history["train_loss"]),
            "train_seconds": round(seconds, 3), "params": int(model.count_params()),
            "target_unk_share": round(float(np.mean(decoder_target_data[decoder_target_data > 0] == 1)), 4)}


def lead_baseline(abstracts: list[str], n_words: int) -> list[str]:
    """The first ``n_words`` words of each abstract: the baseline a generated title must beat."""
    return [detokenize(split_words(a, "en")[:n_words], "word", "en") for a in abstracts]


def evaluate_titles(ctx: Context) -> dict[str, Any]:
    """Greedy and beam-search titles of the dev abstracts, ROUGE-1/2/L F1 against the real titles
    (:func:`dltm.rouge.rouge_scores`), beside the lead baseline (the abstract's first words, as many as the
    median training title); samples.md; the attention of the first dev abstract (attention.png)."""
    s = ctx.params
    runtime.seed_everything(ctx.run.seed)
    (_, train_titles_), (abstracts, titles) = title_split(ctx)
    n = ctx.run.cap_eval(len(abstracts))
    abstracts, titles = abstracts[:n], titles[:n]
    translator = load_translator(ctx.model_dir, f"run `dvc repro {dvc_stage(ctx.task.id)}`")
    greedy_out = translator.translate(abstracts)
    metrics: dict[str, Any] = {**rouge_scores(greedy_out, titles), "n_examples": n}
    outputs = {"greedy": greedy_out}
    if s["beam_width"] > 1:
        beam_out = translator.translate(abstracts, beam=s["beam_width"], alpha=s["length_alpha"])
        metrics.update({f"{k}_beam": v for k, v in rouge_scores(beam_out, titles).items()},
                       beam_width=s["beam_width"])
        outputs[f"beam {s['beam_width']}"] = beam_out
    lead_words = int(np.median([len(split_words(t, "en")) for t in train_titles_]))
    lead = lead_baseline(abstracts, lead_words)
    metrics.update({f"{k}_lead": v for k, v in rouge_scores(lead, titles).items()}, lead_words=lead_words)
    outputs[f"first {lead_words} words"] = lead
    shown = [" ".join(a.split()[:25]) + " ..." for a in abstracts]
    text = f"# {ctx.name}: dev abstracts (the file's last {s['dev_size']})\n\n" + samples_table(shown, titles, outputs)
    src, out, w = translator.attend(abstracts[0])
    keep = min(len(src), 40)
    attention_png([(src[:keep], out, w[:, :keep])], ctx.eval_dir / "attention.png",
                  f"{ctx.name}: attention over the first {keep} words of a dev abstract")
    text += f"\n# Attention (attention.png): {' '.join(f'{j + 1}:{t}' for j, t in enumerate(out))}\n"
    ctx.tracker.log_artifact(ctx.eval_dir / "attention.png", "plots")
    write_text(ctx.eval_dir / "samples.md", text)
    ctx.tracker.log_artifact(ctx.eval_dir / "samples.md", "samples")
    return write_metrics(ctx, metrics, keep=["n_examples", "beam_width", "lead_words"])


# ------------------------------------------------------------------------------------------------------------
# The report's chapter-11 sections
# ------------------------------------------------------------------------------------------------------------

LIN_2017_AGE = {"self_attention": 80.45, "bilstm_max": 77.40, "kim_cnn": 78.15}
"""Lin et al. (2017), Table 1, Age (their Twitter data, 5 age groups; test accuracy, %): theirs, BiLSTM, CNN."""
PROFILER_NAMES = {"self_attention": "Self-attentive BiLSTM (Lin et al.; book 11.4)",
                  "bilstm_max": "BiLSTM, max pooling", "kim_cnn": "Kim's CNN (100 filters of 3, 4, 5)",
                  "tfidf_lr": "TF-IDF logistic regression"}


def _mean_std(m: dict[str, Any], key: str, scale: float = 100.0) -> str:
    if f"{key}_mean" not in m:
        return "-"
    n = m.get(f"{key}_n", 1)
    mean = scale * m[f"{key}_mean"]
    return f"{mean:.1f}" if n == 1 else f"{mean:.1f} ± {scale * m.get(f'{key}_std', 0.0):.1f} (n={n})"


def _section(root: Path, title: str, task_id: str) -> tuple[list[str], dict[str, Any] | None]:
    """A report section's heading, and the task's metrics (None, and a line saying so, where it has not run)."""
    path = root / "metrics" / f"{task_id}.json"
    lines = [f"## {title}", ""]
    if not path.is_file():
        stage = dvc_stage(task_id, kind="evaluate", root=root)
        return [*lines, f"Not run in this workspace: `dvc repro {stage}`."], None
    return lines, read_json(path)


def profiling_table(root: Path) -> list[str]:
    """The report's 11.4 section: every model on both targets, mean ± std over the seeds, beside Lin et al."""
    lines, m = _section(root, "Author profiling (chapter 11.4)", "ch11_author_profiling")
    if m is None:
        return lines
    lines += [f"The Blog Authorship Corpus (Schler et al. 2006), 1,500 bloggers (250 per gender x age group), "
              f"{m.get('n_examples', '?')} of them held out (no blogger on both sides); each blogger one document, "
              f"its last words. Test accuracy, %, mean ± std over the seeds. Chance: 33.3 (age), 50.0 (gender). "
              f"The book's PAN 2013 sample is not public, so its setting is not reproduced; Lin et al.'s Age task "
              f"(Twitter, 5 groups) is another dataset, shown for scale only; Schler et al. report about 76 (age) "
              f"and 80 (gender) on the whole corpus (19,320 bloggers) with all of each blogger's text.", "",
              "| Model | Age group | Gender | Lin et al. 2017, Age (other data) |", "|---|---|---|---|"]
    for model, name in PROFILER_NAMES.items():
        if f"test_{model}_age_accuracy_mean" not in m and f"test_{model}_gender_accuracy_mean" not in m:
            continue
        ref = f"{LIN_2017_AGE[model]:.2f}" if model in LIN_2017_AGE else "-"
        lines.append(f"| {name} | {_mean_std(m, f'test_{model}_age_accuracy')} | "
                     f"{_mean_std(m, f'test_{model}_gender_accuracy')} | {ref} |")
    redundancy = [f"{t}: {m[f'test_self_attention_{t}_redundancy']:.2f}" for t in TARGETS
                  if f"test_self_attention_{t}_redundancy" in m]
    if redundancy:
        lines += ["", f"The hops' redundancy ||AA^T - I||_F^2 on the test texts (0: every hop on its own word; "
                      f"about r, the number of hops, when every hop spreads evenly over the words; r^2 - r: all "
                      f"on one): {', '.join(redundancy)}. "
                      f"`dvc exp run -S ch11_author_profiling.penalty=0` trains without the penalty."]
    return lines


def titles_table(root: Path) -> list[str]:
    """The report's 11.5 section: ROUGE of greedy and beam-search titles beside the lead baseline."""
    lines, m = _section(root, "Title generation (chapter 11.5)", "ch11_title_generation")
    if m is None:
        return lines
    lines += [f"ROUGE F1 (rouge-score; our word split, punctuation left out, no stemming; 0-100) of the titles "
              f"written for the {m.get('n_examples', '?')} dev abstracts (the file's last), against the real ones. "
              f"The book prints example titles and no score. *Lead*: the abstract's first "
              f"{m.get('lead_words', '?')} words (the median title length).", "",
              "| Decoding | ROUGE-1 | ROUGE-2 | ROUGE-L |", "|---|---|---|---|"]
    for label, suffix in (("greedy (the book's)", ""), (f"beam {m.get('beam_width', '')}", "_beam"),
                          ("lead baseline", "_lead")):
        if f"test_rouge1{suffix}" in m:
            lines.append(f"| {label} | " + " | ".join(f"{m[f'test_{k}{suffix}']:.1f}" for k in
                                                   ("rouge1", "rouge2", "rougeL")) + " |")
    return lines


REPORT_SECTIONS = (profiling_table, titles_table)


PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch11_custom_losses": P.keys("epochs", "batch_size", "optimizer", n_samples=P.Int(10),
                                 n_features=P.POSITIVE_INT, n_informative=P.POSITIVE_INT, data_seed=P.Int(0),
                                 test_size=P.Float(0.0, 1.0, low_open=True, high_open=True),
                                 l2=P.Float(0.0), gram=P.Float(0.0)),
    "ch11_author_profiling": P.keys("epochs", "batch_size", "optimizer", "validation_split",
                                    "early_stopping_patience", targets=P.List(P.Choice(*TARGETS)),
                                    models=P.List(P.Choice(*PROFILERS, "tfidf_lr")), seeds=P.List(P.Int()),
                                    vocab_size=P.Int(2), embed_size=P.POSITIVE_INT, hidden_size=P.POSITIVE_INT,
                                    da=P.POSITIVE_INT, r=P.POSITIVE_INT, penalty=P.Float(0.0),
                                    time_steps=P.POSITIVE_INT, heatmap_examples=P.Int(0)),
    "ch11_title_generation": P.keys("batch_size", "epochs", "validation_split", "optimizer",
                                    vocab_size=P.Int(4), embed_size=P.POSITIVE_INT, hidden_size=P.POSITIVE_INT,
                                    encoder_steps=P.POSITIVE_INT, decoder_steps=P.Int(3), dev_size=P.POSITIVE_INT,
                                    split_seed=P.Int(), book_faithful=P.BOOL, patience=P.Int(0),
                                    beam_width=P.POSITIVE_INT, length_alpha=P.Float(0.0)),
}

HEADLINE = "ch11_author_profiling"  # the result reports/results.md's summary leads this chapter with

TASKS = (
    Task("ch11_custom_losses", "11.3 (lines 5353-5451)",
         "10->8->1 MLP with a regulariser function, a Regularizer subclass, a custom loss and a penalty in call",
         None, "test_accuracy", train_custom_losses, evaluate_custom_losses,
         Reference(None, "the book trains no model here; beside the same MLP without the three terms"),
         notes="synthetic binary data (make_classification); the *_term values: what each term adds to the loss "
               "on the test batch", also=("test_accuracy_without_penalties", "l1_reg_term", "l2_regularizer_term",
                                          "gram_penalty_term")),
    Task("ch11_author_profiling", "11.4 (lines 5453-5553)",
         "Lin et al. (2017)'s self-attentive BiLSTM: a blogger's age group and gender, beside a BiLSTM with max "
         "pooling, Kim's CNN and TF-IDF logistic regression", "authors", "test_self_attention_age_accuracy",
         train_author_profiling, evaluate_author_profiling,
         Reference(None, "not comparable (other data): Lin et al. 2017 Age 80.45 on their Twitter data "
                   "(BiLSTM 77.40, CNN 78.15); Schler et al. 2006 on the whole blog corpus about 76 age / 80 gender"),
         notes="Blog Authorship Corpus, 1,500 bloggers (250 per gender x age group), 300 held out by blogger; "
               "mean ± std over the seeds; the book's PAN 2013 sample is not public",
         also=("test_bilstm_max_age_accuracy", "test_kim_cnn_age_accuracy", "test_tfidf_lr_age_accuracy",
               "test_self_attention_gender_accuracy", "test_tfidf_lr_gender_accuracy")),
    Task("ch11_title_generation", "11.5 (lines 5555-5798)",
         "abstract -> title: BiGRU encoder, GRU decoder with general attention, the context fed back (the book's "
         "fix)", "titles", "test_rouge1", train_titles, evaluate_titles,
         Reference(None, "the book prints example titles, no score; beside the abstract's first words (lead)"),
         notes="ROUGE F1 (rouge-score, our word split, no stemming) on the file's last 100 pairs; _beam: beam "
               "search; _lead: the abstract's first words",
         also=("test_rouge2", "test_rougeL", "test_rouge1_beam", "test_rouge1_lead", "test_rougeL_lead")),
)
