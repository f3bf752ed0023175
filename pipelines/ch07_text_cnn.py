"""Chapter 7: CNN text classification (第七章 CNN 文本分类, book lines 3122-3923).

The book's sections, in order, and the task ids that run them:

- 7.1   the Keras Tokenizer on ten short documents            -> ``ch07_tokenizer_demo``
- 7.2   a simple Embedding -> Flatten -> Dense classifier      -> ``ch07_simple_classifier``
- 7.3.1-7.3.2  Kim (2014)'s CNN with region sizes 3, 4, 5 on MR -> ``ch07_kim_cnn`` (the rand variant)
- 7.3.4 the 1-D CNN of Keras' imdb_cnn example, applied to MR  -> ``ch07_cnn1d``
        and on IMDB, the data it was written for                -> ``ch07_cnn1d_imdb``

Model and variable names follow the book (``inputs``, ``embed``, ``reshape``, ``pooled_output``,
``hidden2``, ``output``; ``filter_sizes``, ``filter_nums``, ``embed_size``, ``vocab_size``). The data path:
``dvc repro download@mr`` -> ``prepare@mr`` (dltm.data.prepare_mr) -> ``train@<task>`` -> ``evaluate@<task>``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from dltm import params as P
from dltm import runtime
from dltm.data import IMDB_CLASSES, load_imdb, load_prepared_text
from dltm.embeddings import embedding_matrix, load_vectors
from dltm.evaluation import classification_metrics, confusion_matrix_png, write_metrics
from dltm.io import read_json, write_json, write_text
from dltm.params import ParamError, require
from dltm.tasks import Context, Reference, Task
from dltm.text import Tokenizer, pad_post
from dltm.tracking import Tracker
from dltm.training import ClassifierData, FitSettings, evaluate_classifier, load_model, predict_labels, train_classifier

# ------------------------------------------------------------------------------------------------------------
# 7.1 The Tokenizer (lines 3128-3275)
#
# Ten short documents. Keras 2's Tokenizer ranks words by frequency (ties by first appearance) from index 1.
# ------------------------------------------------------------------------------------------------------------

docs = ["Well done!", "Good work", "Great effort", "nice work", "Excellent!", "Weak", "Poor effort!", "not good",
        "poor work", "Could have done better."]

# What Keras 2 printed for t.word_index and t.texts_to_sequences(docs) (TASKS.md, ch07_tokenizer_demo).
BOOK_WORD_INDEX = {"work": 1, "done": 2, "good": 3, "effort": 4, "poor": 5, "well": 6, "great": 7, "nice": 8,
                   "excellent": 9, "weak": 10, "not": 11, "could": 12, "have": 13, "better": 14}
BOOK_SEQUENCES = [[6, 2], [3, 1], [7, 4], [8, 1], [9], [10], [5, 4], [11, 3], [5, 1], [12, 13, 2, 14]]


def tokenizer_from_params(p: dict[str, Any], where: str) -> Tokenizer:
    return Tokenizer(num_words=p.get("num_words"), oov_token=p.get("oov_token"),
                     lower=require(p, "lower", bool, where))


def train_tokenizer_demo(ctx: Context) -> dict[str, Any]:
    t = tokenizer_from_params(ctx.params, ctx.task.id)
    t.fit_on_texts(docs)
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    write_json(ctx.model_dir / "tokenizer.json", t.get_config())
    # what the book prints after fit_on_texts: word_counts, document_count, word_index, word_docs
    rows = ["word,index,count,docs"] + [f"{w},{i},{t.word_counts.get(w, 0)},{t.word_docs.get(w, 0)}"
                                        for w, i in t.word_index.items()]
    write_text(ctx.train_dir / "vocabulary.csv", "\n".join(rows) + "\n")
    ctx.tracker.log_artifact(ctx.model_dir / "tokenizer.json", "model")
    ctx.tracker.log_artifact(ctx.train_dir / "vocabulary.csv", "samples")
    return {"train_examples": len(docs), "epochs": 0}


def evaluate_tokenizer_demo(ctx: Context) -> dict[str, Any]:
    t = Tokenizer.load(ctx.model_dir / "tokenizer.json")
    sequences = t.texts_to_sequences(docs)
    metrics = {
        "word_index_matches_book": float(t.word_index == BOOK_WORD_INDEX),
        "sequences_match_book": float(sequences == BOOK_SEQUENCES),
        "vocabulary_size": len(t.word_index),
        "document_count": t.document_count,
    }
    outputs = {"word_index": t.word_index, "sequences": sequences, "word_counts": t.word_counts,
               "word_docs": t.word_docs}
    write_json(ctx.eval_dir / "outputs.json", outputs)
    ctx.tracker.log_artifact(ctx.eval_dir / "outputs.json", "samples")
    return write_metrics(ctx, metrics, keep=metrics)  # checks against the book, no split


# ------------------------------------------------------------------------------------------------------------
# 7.2 A simple text classifier (lines 3277-3414)
#
# Embedding(vocab_size, 8) -> Flatten -> Dense(1, sigmoid) on the ten documents padded to 4 words.
# Fix: the book gives 8 labels for 10 documents (Keras 3 refuses that); the intended labels are five 1s then
# five 0s. The book evaluates on its training documents, then predicts two new ones.
# ------------------------------------------------------------------------------------------------------------

labels = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=np.int32)
docs2 = ["weak poor situation", "Good morning,done"]


def build_simple_classifier(vocab_size: int, max_length: int, embed_size: int = 8) -> keras.Model:
    inputs = keras.Input((max_length,), dtype="int32", name="inputs")
    hidden = layers.Embedding(vocab_size, embed_size, name="embed")(inputs)
    hidden = layers.Flatten(name="flatten")(hidden)
    output = layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(hidden)
    return keras.Model(inputs, output, name="simple_classifier")


def simple_classifier_data(p: dict[str, Any]) -> ClassifierData:
    t = Tokenizer()
    t.fit_on_texts(docs)
    max_length = require(p, "max_length", int, "ch07_simple_classifier")
    padded_docs = pad_post(t.texts_to_sequences(docs), max_length)
    return ClassifierData(padded_docs, labels, padded_docs, labels, ["0", "1"], tokenizer=t,
                          info={"vocab_size": len(t.word_index) + 1, "max_length": max_length})


def train_simple_classifier(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    data = simple_classifier_data(p)
    embed_size = require(p, "embed_size", int, ctx.task.id)
    return train_classifier(
        ctx, data, lambda d: build_simple_classifier(d.info["vocab_size"], d.info["max_length"], embed_size),
        FitSettings.from_params(p, ctx.task.id), validate=False,
    )


def evaluate_simple_classifier(ctx: Context) -> dict[str, Any]:
    data = simple_classifier_data(ctx.params)

    def predict_docs2(model: keras.Model) -> dict[str, float]:
        padded_docs2 = pad_post(data.tokenizer.texts_to_sequences(docs2), data.info["max_length"])
        res = np.asarray(model.predict(padded_docs2, verbose=0)).reshape(-1)
        return {"p_weak_poor_situation": float(res[0]), "p_good_morning_done": float(res[1])}

    return evaluate_classifier(ctx, data, extra=predict_docs2, split="train")  # the book scores its 10 documents


# ------------------------------------------------------------------------------------------------------------
# 7.3 CNN text classification on MR (lines 3416-3923)
#
# Data (7.3.2 "数据准备"): dltm.data.prepare_mr does data_helpers.load_data_and_labels, the Tokenizer, the
# post padding and the seed-10 split once, in the prepare stage; each task applies its own vocab_size here.
# ``run.text_data: custom`` swaps MR for your own labelled texts (dltm.data.prepare_custom), any number of
# classes: the models then end in Dense(n_classes, softmax) instead of Dense(1, sigmoid).
# ------------------------------------------------------------------------------------------------------------


def text_data(ctx: Context, vocab_size: int | None, dataset: str | None = None) -> ClassifierData:
    """The book's MR split (or your own data, ``run.text_data: custom``) under a ``vocab_size`` cut
    (None: every word). ``dataset`` names the prepared data outright (chapter 9 reads MR)."""
    dataset = dataset or ctx.run.text_data
    mr = load_prepared_text(ctx.prepared(dataset), vocab_size)
    x_train, x_dev = mr.x[mr.train_idx], mr.x[mr.dev_idx]
    y_train, y_dev = mr.y[mr.train_idx], mr.y[mr.dev_idx]
    # how `python -m stages.predict` must encode new sentences: the dataset's cleaner, then post padding
    return ClassifierData(x_train, y_train, x_dev, y_dev, mr.class_names, tokenizer=mr.tokenizer,
                          info={"vocab_size": vocab_size or len(mr.tokenizer.word_index) + 1,
                                "doc_length": int(mr.x.shape[1]), "clean": mr.clean, "padding": "post",
                                "n_classes": len(mr.class_names), "dataset": dataset})


def mr_data(ctx: Context, vocab_size: int | None) -> ClassifierData:
    """The book's MR split, whatever ``run.text_data`` says (chapter 9's models)."""
    return text_data(ctx, vocab_size, "mr")


def output_layer(n_classes: int, constraint=None) -> layers.Dense:
    """Dense(1, sigmoid) for two classes, as the book; Dense(n, softmax) for more (your own data)."""
    if n_classes == 2:
        return layers.Dense(1, activation="sigmoid", kernel_constraint=constraint, dtype="float32", name="output")
    return layers.Dense(n_classes, activation="softmax", kernel_constraint=constraint, dtype="float32",
                        name="output")


def train_on_mr(ctx: Context, build, settings: dict[str, Any]) -> dict[str, Any]:
    """Train ``build(doc_length, **settings)`` on the book's MR split with the task's fit settings."""
    return train_classifier(ctx, text_data(ctx, settings["vocab_size"]),
                            lambda d: build(d.info["doc_length"], n_classes=d.info["n_classes"], **settings),
                            FitSettings.from_params(ctx.params, ctx.task.id))


def evaluate_on_mr(ctx: Context) -> dict[str, Any]:
    return evaluate_classifier(ctx, text_data(ctx, ctx.params.get("vocab_size")))


# 7.3.1-7.3.2 Kim's CNN (lines 3418-3639). The book's code uses 10 filters per region size; Kim used 100.
#
# One builder serves 7.3.2 (one random channel), Kim's four variants and 7.3.3 (a random and a GloVe channel):
# ``channels`` lists the embedding lookups, each (layer name, initial matrix or None, trainable). Several
# channels are stacked as the image's channels, so each filter spans all of them and sums over them (Kim's
# multichannel). ``conv="2d"`` is the book's Conv2D over the (m, embed_size, channels) image with a kernel as
# wide as the embedding; ``conv="1d"`` is the same function as a Conv1D over the m positions with
# embed_size x channels features (test_ch07 copies the weights across and gets the same outputs), about 50
# times faster on a CPU (TensorFlow's CPU Conv2D is slow for a kernel this wide).

Channel = tuple[str, "np.ndarray | None", bool]


def build_kim_cnn(doc_length: int, vocab_size: int = 10000, embed_size: int = 50,
                  filter_sizes=(3, 4, 5), filter_nums: int = 10, dropout: float = 0.5,
                  max_norm: float | None = None, n_classes: int = 2, conv: str = "2d",
                  channels: tuple[Channel, ...] = (("embed", None, True),),
                  init_scale: float | None = None) -> keras.Model:
    """Kim's CNN as the book builds it; ``max_norm`` (Kim: 3) caps the L2 norm of the output weights;
    ``init_scale`` draws random embeddings from U(-init_scale, init_scale) (Kim: 0.25; Keras: 0.05)."""
    m = doc_length
    inputs = keras.Input((m,), dtype="int32", name="inputs")
    init = keras.initializers.RandomUniform(-init_scale, init_scale) if init_scale else "uniform"
    lookups = [layers.Embedding(input_dim=vocab_size, output_dim=embed_size, embeddings_initializer=init,
                                trainable=trainable, name=name) for name, _, trainable in channels]
    embedded = [embed(inputs) for embed in lookups]
    if conv == "2d":
        reshaped_channels = [layers.Reshape((m, embed_size, 1), name=f"reshape_{e.name}" if len(channels) > 1
                                            else "reshape")(h) for e, h in zip(lookups, embedded, strict=True)]
        hidden = reshaped_channels[0] if len(channels) == 1 else layers.Concatenate(name="hidden")(reshaped_channels)
    elif conv == "1d":
        hidden = embedded[0] if len(channels) == 1 else layers.Concatenate(name="hidden")(embedded)
    else:
        raise ParamError(f"params.yaml: conv must be 2d (the book's Conv2D) or 1d (the same model as a Conv1D), "
                         f"got {conv!r}")
    pooled_output = []
    for fsize in filter_sizes:
        if fsize > m:
            raise ParamError(f"params.yaml: filter_sizes has {fsize}, longer than the longest document "
                             f"({m} words)")
        if conv == "2d":
            conv_out = layers.Conv2D(filters=filter_nums, kernel_size=(fsize, embed_size), activation="relu",
                                     padding="valid", name=f"conv_{fsize}")(hidden)
            pool = layers.MaxPool2D(pool_size=(m - fsize + 1, 1), name=f"pool_{fsize}")(conv_out)
        else:
            conv_out = layers.Conv1D(filters=filter_nums, kernel_size=fsize, activation="relu", padding="valid",
                                     name=f"conv_{fsize}")(hidden)
            pool = layers.GlobalMaxPooling1D(name=f"pool_{fsize}")(conv_out)
        drop = layers.Dropout(dropout, name=f"drop_{fsize}")(pool)
        reshaped = layers.Reshape((filter_nums,), name=f"reshaped_{fsize}")(drop)
        pooled_output.append(reshaped)
    hidden2 = layers.Concatenate(name="hidden2")(pooled_output) if len(pooled_output) > 1 else pooled_output[0]
    constraint = keras.constraints.MaxNorm(max_norm) if max_norm else None
    output = output_layer(n_classes, constraint)(hidden2)
    model = keras.Model(inputs=inputs, outputs=output, name="kim_cnn")
    for embed, (_, matrix, _) in zip(lookups, channels, strict=True):
        if matrix is not None:  # set after building: a Constant initializer would copy the matrix into the config
            if matrix.shape != (vocab_size, embed_size):
                raise ValueError(f"embedding matrix of shape {matrix.shape} for a ({vocab_size}, {embed_size}) "
                                 f"lookup")
            embed.set_weights([matrix])
    return model


def filter_sizes_param(p: dict[str, Any], where: str) -> tuple[int, ...]:
    sizes = p.get("filter_sizes")
    if not (isinstance(sizes, list) and sizes and all(isinstance(s, int) and s > 0 for s in sizes)):
        raise ParamError(f"params.yaml: {where}.filter_sizes should be a list of positive integers, got {sizes!r}")
    return tuple(sizes)


def kim_cnn_settings(p: dict[str, Any], where: str = "ch07_kim_cnn") -> dict[str, Any]:
    conv = require(p, "conv", str, where) if "conv" in p else "2d"
    if conv not in ("1d", "2d"):
        raise ParamError(f"params.yaml: {where}.conv must be 2d or 1d, got {conv!r}")
    return {
        "vocab_size": None if p.get("vocab_size") is None else require(p, "vocab_size", int, where),
        "embed_size": require(p, "embed_size", int, where),
        "filter_sizes": filter_sizes_param(p, where),
        "filter_nums": require(p, "filter_nums", int, where),
        "dropout": require(p, "dropout", float, where),
        "max_norm": None if p.get("max_norm") is None else require(p, "max_norm", float, where),
        "conv": conv,
    }


def train_kim_cnn(ctx: Context) -> dict[str, Any]:
    return train_on_mr(ctx, build_kim_cnn, kim_cnn_settings(ctx.params, ctx.task.id))


# Kim (2014)'s four variants and protocol (7.3.1 describes them; the book's code runs rand only):
#   rand          every word's vector random, learned                 [embed]
#   static        the pretrained vectors, frozen                       [embed (frozen)]
#   non-static    the pretrained vectors, fine-tuned                   [embed]
#   multichannel  both: one frozen copy, one fine-tuned, as channels   [embed_static (frozen), embed]
# Words without a pretrained vector start from U(-0.25, 0.25), as Kim's. Settings: 100 filters per region
# size 3, 4, 5, dropout 0.5, max-norm 3, batch 50, Adadelta. Protocol: the book's holdout, or Kim's
# stratified 10-fold cross-validation (the folds of prepare.mr), each fold an MLflow child run.

KIM_VARIANTS = ("rand", "static", "non-static", "multichannel")
KIM_TABLE2 = {"rand": 0.761, "static": 0.810, "non-static": 0.815, "multichannel": 0.811}  # MR column
PROTOCOLS = ("holdout", "cv")


def pretrained_matrix(ctx: Context, data: ClassifierData, path: str, dim: int | None, unknown: str) -> tuple:
    """The (vocab_size, dim) matrix of the vectors at ``path`` for the task's vocabulary, and its coverage."""
    kv = load_vectors(path, dim)
    matrix, coverage = embedding_matrix(data.tokenizer.word_index, kv, data.info["vocab_size"],
                                        scale=0.25, seed=ctx.run.seed)
    if unknown == "zeros":  # the book's 7.3.3: words without a vector stay zero
        known = np.zeros(len(matrix), bool)
        for word, i in data.tokenizer.word_index.items():
            if i < len(matrix) and (word in kv or word.lower() in kv):
                known[i] = True
        matrix[~known] = 0.0
    coverage["vectors"] = str(path)
    print(f"{ctx.name}: {coverage['found']} of {coverage['words']} words have a vector in {path} "
          f"({coverage['coverage']:.1%})")
    return matrix, coverage


def kim2014_builder(ctx: Context, data: ClassifierData) -> tuple:
    """The model builder for ``ctx.variant`` and what it records about the embeddings."""
    p, where = ctx.params, ctx.task.id
    settings = kim_cnn_settings(p, where)
    settings.pop("vocab_size")
    variant = ctx.variant
    if variant == "rand":
        channels: tuple[Channel, ...] = (("embed", None, True),)
        used = {"embeddings": "random U(-init_scale, init_scale)"}
    else:
        matrix, coverage = pretrained_matrix(ctx, data, require(p, "embeddings", str, where),
                                             p.get("embeddings_dim"), "uniform")
        settings["embed_size"] = matrix.shape[1]
        channels = {"static": (("embed", matrix, False),),
                    "non-static": (("embed", matrix, True),),
                    "multichannel": (("embed_static", matrix, False), ("embed", matrix, True))}[variant]
        used = {"embeddings": coverage["vectors"], "embedding_coverage": round(coverage["coverage"], 4),
                "embedding_dim": int(matrix.shape[1])}
    init_scale = require(p, "init_scale", float, where)

    def build(d: ClassifierData) -> keras.Model:
        return build_kim_cnn(d.info["doc_length"], d.info["vocab_size"], n_classes=d.info["n_classes"],
                             channels=channels, init_scale=init_scale, **settings)

    return build, used


def cv_folds(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and the fold id of every example, for Kim's cross-validation, in a fixed random order (seed 0).

    The prepared texts are in the file's order, all positive sentences first: a run cap
    (``run.max_train_examples``, ``run.max_eval_examples``) takes the first N of a fold, which would then be one
    class. The folds' contents do not change (the order of training batches does, with it the numbers within
    noise)."""
    prepared = load_prepared_text(ctx.prepared(ctx.run.text_data), ctx.params.get("vocab_size"))
    if prepared.folds.min() < 0:
        raise ValueError(f"{ctx.prepared(ctx.run.text_data)}/folds.npy: no folds (a class has fewer examples than "
                         f"prepare.{ctx.run.text_data}.cv_folds); use {ctx.task.id}.protocol: holdout")
    order = np.random.default_rng(0).permutation(len(prepared.y))
    return prepared.x[order], prepared.y[order], prepared.folds[order]


def protocol_param(ctx: Context) -> str:
    protocol = require(ctx.params, "protocol", str, ctx.task.id)
    if protocol not in PROTOCOLS:
        raise ParamError(f"params.yaml: {ctx.task.id}.protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol


def train_kim2014(ctx: Context) -> dict[str, Any]:
    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    data = text_data(ctx, ctx.params.get("vocab_size"))
    build, used = kim2014_builder(ctx, data)
    if protocol_param(ctx) == "holdout":
        return {**train_classifier(ctx, data, build, fit), **used, "protocol": "holdout"}
    x, y, folds = cv_folds(ctx)
    infos, children = [], {}
    for k in range(int(folds.max()) + 1):
        name = f"fold_{k}"
        fold = ClassifierData(x[folds != k], y[folds != k], x[folds == k], y[folds == k], data.class_names,
                              tokenizer=data.tokenizer, info=data.info)
        with Tracker(ctx.task.experiment, f"{ctx.name}/{name}", tags={"fold": str(k), "variant": ctx.variant},
                     parent=ctx.tracker) as child:
            sub = dataclasses.replace(ctx, tracker=child)  # writes where ctx writes (the train stage's staging)
            infos.append(train_classifier(sub, fold, build, fit, model_dir=ctx.model_dir / name,
                                          curves_dir=ctx.train_dir if k == 0 else ctx.train_dir / name,
                                          save_optimizer=False))
            children[name] = child.run_id
    seconds = sum(i["train_seconds"] for i in infos)
    return {**infos[0], **used, "protocol": "cv", "folds": len(infos), "child_runs": children,
            "train_seconds": round(seconds, 3),
            "examples_per_second": round(sum(i["train_examples"] * i["epochs"] for i in infos) / seconds, 1)}


def evaluate_kim2014(ctx: Context) -> dict[str, Any]:
    run_info = read_json(ctx.model_dir / "run.json")
    used = {k: run_info[k] for k in ("embeddings", "embedding_coverage", "embedding_dim") if k in run_info}
    if run_info.get("protocol") != "cv":
        metrics = evaluate_on_mr(ctx)
        metrics.update(used)
        write_json(ctx.metrics_file, metrics)
        return metrics
    runtime.seed_everything(ctx.run.seed)
    x, y, folds = cv_folds(ctx)
    data = text_data(ctx, ctx.params.get("vocab_size"))
    children = run_info.get("child_runs", {})
    accuracies, y_all, pred_all = [], [], []
    for k in range(int(folds.max()) + 1):
        name = f"fold_{k}"
        xk, yk = x[folds == k], y[folds == k]
        n = ctx.run.cap_eval(len(xk))
        _, y_pred = predict_labels(load_model(ctx, name), xk[:n], data.binary)
        accuracies.append(float(np.mean(y_pred == yk[:n])))
        y_all.append(yk[:n])
        pred_all.append(y_pred)
        if children.get(name):
            with Tracker(ctx.task.experiment, f"{ctx.name}/{name}", run_id=children[name],
                         parent=ctx.tracker) as child:
                child.log_metrics({"test_accuracy": accuracies[-1]})
    acc = np.asarray(accuracies)
    y_all, pred_all = np.concatenate(y_all), np.concatenate(pred_all)
    metrics: dict[str, Any] = {"accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
                               "accuracy_n": len(acc), "fold_accuracies": [round(a, 4) for a in accuracies],
                               "n_examples": int(len(y_all)), **used}
    pooled = classification_metrics(y_all, pred_all, data.class_names)
    metrics.update({k: v for k, v in pooled.items() if k.startswith(("f1_", "recall_", "macro_"))})
    png = confusion_matrix_png(y_all, pred_all, data.class_names, ctx.eval_dir / "confusion_matrix.png",
                               f"{ctx.name}: {len(acc)} folds pooled (mean test accuracy {acc.mean():.3f})")
    ctx.tracker.log_artifact(png, "plots")
    return write_metrics(ctx, metrics, keep=["n_examples", *used])  # each fold's held-out part


# 7.3.3 (lines 3641-3830): a trainable random channel beside a frozen GloVe channel (glove.twitter.27B, 25, 50,
# 100 or 200 dimensions); as in the book, words GloVe lacks stay zero in the GloVe channel.


def train_cnn_glove_2ch(ctx: Context) -> dict[str, Any]:
    p, where = ctx.params, ctx.task.id
    settings = kim_cnn_settings(p, where)
    data = text_data(ctx, settings.pop("vocab_size"))
    dim = require(p, "embed_size", int, where)
    unknown = require(p, "unknown", str, where)
    if unknown not in ("zeros", "uniform"):
        raise ParamError(f"params.yaml: {where}.unknown must be zeros (the book) or uniform (Kim), got {unknown!r}")
    glove = ctx.root / "data" / "raw" / "glove_twitter"  # the book's vectors; their dimension is embed_size
    matrix, coverage = pretrained_matrix(ctx, data, str(glove), dim, unknown)
    channels = (("embed", None, True), ("preembed", matrix, False))

    def build(d: ClassifierData) -> keras.Model:
        return build_kim_cnn(d.info["doc_length"], d.info["vocab_size"], n_classes=d.info["n_classes"],
                             channels=channels, **settings)

    info = train_classifier(ctx, data, build, FitSettings.from_params(p, where))
    return {**info, "embeddings": coverage["vectors"], "embedding_coverage": round(coverage["coverage"], 4),
            "embedding_dim": dim}


# 7.3.4 The 1-D CNN (lines 3832-3923): Keras' imdb_cnn example applied to MR.


def build_cnn1d(doc_length: int, vocab_size: int = 5000, embedding_dims: int = 50, filters: int = 250,
                kernel_size: int = 3, hidden_dims: int = 250, dropout: float = 0.2, n_classes: int = 2) -> keras.Model:
    model = keras.Sequential(name="cnn1d")
    model.add(keras.Input((doc_length,), dtype="int32", name="inputs"))
    model.add(layers.Embedding(vocab_size, embedding_dims, name="embed"))
    model.add(layers.Dropout(dropout, name="embed_dropout"))
    model.add(layers.Conv1D(filters, kernel_size, padding="valid", activation="relu", strides=1, name="conv"))
    model.add(layers.GlobalMaxPooling1D(name="pool"))
    model.add(layers.Dense(hidden_dims, name="hidden"))
    model.add(layers.Dropout(dropout, name="hidden_dropout"))
    model.add(layers.Activation("relu", name="relu"))
    model.add(layers.Dense(1 if n_classes == 2 else n_classes, name="logit"))
    model.add(layers.Activation("sigmoid" if n_classes == 2 else "softmax", dtype="float32", name="output"))
    return model


def cnn1d_settings(p: dict[str, Any], where: str = "ch07_cnn1d") -> dict[str, Any]:
    return {k: require(p, k, float if k == "dropout" else int, where)
            for k in ("vocab_size", "embedding_dims", "filters", "kernel_size", "hidden_dims", "dropout")}


def train_cnn1d(ctx: Context) -> dict[str, Any]:
    return train_on_mr(ctx, build_cnn1d, cnn1d_settings(ctx.params, ctx.task.id))


# 7.3.4 on IMDB, the data Keras' imdb_cnn was written for: 5000 words, reviews cut or padded to 400 words.


def imdb_data(ctx: Context, num_words: int, maxlen: int, train: bool = True) -> ClassifierData:
    prepared = ctx.prepared("imdb")
    x_test, y_test = load_imdb(prepared, num_words, maxlen, "test")
    x_train, y_train = load_imdb(prepared, num_words, maxlen, "train") if train else (x_test[:0], y_test[:0])
    tokenizer = Tokenizer.load(prepared / "tokenizer.json")
    tokenizer.num_words = num_words
    return ClassifierData(x_train, y_train, x_test, y_test, IMDB_CLASSES, tokenizer=tokenizer,
                          info={"vocab_size": num_words, "doc_length": maxlen, "clean": "html_breaks",
                                "padding": "pre"})


def train_cnn1d_imdb(ctx: Context) -> dict[str, Any]:
    settings = cnn1d_settings(ctx.params, ctx.task.id)
    maxlen = require(ctx.params, "maxlen", int, ctx.task.id)
    return train_classifier(ctx, imdb_data(ctx, settings["vocab_size"], maxlen),
                            lambda d: build_cnn1d(maxlen, **settings), FitSettings.from_params(ctx.params, ctx.task.id))


def evaluate_cnn1d_imdb(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    return evaluate_classifier(ctx, imdb_data(ctx, require(p, "vocab_size", int, ctx.task.id),
                                              require(p, "maxlen", int, ctx.task.id), train=False))


_FIT = ("optimizer", "learning_rate", "epochs", "batch_size")
_HOLDOUT = ("validation_split", "early_stopping_patience")
_KIM = ("filter_sizes", "filter_nums", "dropout", "max_norm", "conv")
_IMDB_CNN = P.keys("vocab_size", "dropout", *_FIT, *_HOLDOUT, embedding_dims=P.POSITIVE_INT,
                   filters=P.POSITIVE_INT, kernel_size=P.POSITIVE_INT, hidden_dims=P.POSITIVE_INT)
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch07_tokenizer_demo": {"num_words": P.Int(2, null=True), "oov_token": P.Spec(str, null=True),
                            "lower": P.BOOL},
    "ch07_simple_classifier": P.keys("embed_size", "epochs", "batch_size", "optimizer", max_length=P.POSITIVE_INT),
    "ch07_kim_cnn": P.keys("vocab_size", "embed_size", *_KIM, *_FIT, *_HOLDOUT),
    "ch07_kim2014": P.keys("vocab_size", "embed_size", "init_scale", *_KIM, *_FIT, *_HOLDOUT,
                           protocol=P.Choice("cv", "holdout"), embeddings=P.STR, embeddings_dim=P.Int(1, null=True)),
    "ch07_cnn_glove_2ch": P.keys("vocab_size", *_KIM, *_FIT, embed_size=P.Choice(25, 50, 100, 200),
                                 unknown=P.Choice("zeros", "uniform")),
    "ch07_cnn1d": _IMDB_CNN,
    "ch07_cnn1d_imdb": {**_IMDB_CNN, "maxlen": P.POSITIVE_INT},
}

TEXT_RUN = (*Task.run_params, "text_data")
"""Chapter 7's MR classifiers also read run.text_data (mr, or your own data)."""

HEADLINE = "ch07_kim2014-rand"  # the result reports/results.md's summary leads this chapter with

TASKS = (
    Task("ch07_tokenizer_demo", "7.1 (lines 3128-3275)", "Keras 2 Tokenizer on ten documents", None,
         "word_index_matches_book", train_tokenizer_demo, evaluate_tokenizer_demo,
         Reference(1.0, "book 7.1: word_index and texts_to_sequences as printed by Keras 2"),
         notes="1.0 means our word_index and sequences equal the book's exactly", run_params=()),
    Task("ch07_simple_classifier", "7.2 (lines 3277-3414)", "Embedding -> Flatten -> Dense on ten documents",
         None, "train_accuracy", train_simple_classifier, evaluate_simple_classifier,
         Reference(None, "book 7.2 prints no accuracy; its (unseeded) predictions for docs2 are "
                   "0.4786 and 0.5547"),
         notes="accuracy on the ten training documents, as in the book"),
    Task("ch07_kim_cnn", "7.3.1-7.3.2 (lines 3418-3639)", "Kim's CNN, rand variant, on MR (holdout)", "mr",
         "test_accuracy", train_kim_cnn, evaluate_on_mr,
         Reference(0.761, "Kim 2014, table 2, CNN-rand on MR (100 filters, 10-fold CV)"),
         notes="the book's code (10 filters, adam, 10 epochs) on the book's holdout (seed-10 permutation, last "
               "1000 as dev)", run_params=TEXT_RUN),
    Task("ch07_kim2014", "7.3.1 (lines 3418-3470)", "Kim's CNN with Kim's settings, variants and protocol",
         "mr", "test_accuracy", train_kim2014, evaluate_kim2014,
         Reference(None, "Kim 2014, table 2, MR (300-d GoogleNews word2vec, 10-fold CV)",
                   by_variant=KIM_TABLE2),
         notes="100 filters, dropout 0.5, max-norm 3, batch 50, Adadelta; 10-fold CV mean ± std (see the MR "
               "table)", also=("embedding_coverage",), variants=KIM_VARIANTS, variants_are_datasets=False,
         run_params=TEXT_RUN),
    Task("ch07_cnn_glove_2ch", "7.3.3 (lines 3641-3830)", "Kim's CNN, a random and a frozen GloVe channel",
         "glove_twitter", "test_accuracy", train_cnn_glove_2ch, evaluate_on_mr,
         Reference(None, "the book prints no number; Kim's multichannel (word2vec) reached 0.811"),
         notes="the book's holdout; glove.twitter.27B at embed_size dimensions", also=("embedding_coverage",),
         run_params=TEXT_RUN),
    Task("ch07_cnn1d", "7.3.4 (lines 3832-3923)", "1-D CNN (Keras imdb_cnn) on MR (holdout)", "mr",
         "test_accuracy", train_cnn1d, evaluate_on_mr,
         Reference(None, "the book prints no number; Keras' imdb_cnn reached ~0.89 on IMDB"),
         notes="the book's holdout (seed-10 permutation, last 1000 as dev)", run_params=TEXT_RUN),
    Task("ch07_cnn1d_imdb", "7.3.4 (lines 3832-3923)", "1-D CNN (Keras imdb_cnn) on IMDB", "imdb",
         "test_accuracy", train_cnn1d_imdb, evaluate_cnn1d_imdb,
         Reference(0.864, "keras-io text_classification_from_scratch, 86.4% test accuracy (stretch 0.89, "
                   "Keras imdb_cnn)"),
         notes="the 25,000 IMDB test reviews; Tokenizer fitted on the 25,000 training reviews"),
)


# ------------------------------------------------------------------------------------------------------------
# The report's MR table: ours beside Kim (2014) table 2, with the embeddings each row used and why it differs.
# ------------------------------------------------------------------------------------------------------------


def kim_gap(variant: str, metrics: dict[str, Any], run: dict[str, Any], kim: float) -> str:
    """One sentence on the gap between our number and Kim's, from what the run recorded."""
    ours = metrics.get("test_accuracy_mean", metrics.get("test_accuracy"))
    if not isinstance(ours, (int, float)):
        return "no test_accuracy in the metrics file (an older naming scheme: re-run the stage)"
    gap = (ours - kim) * 100
    reasons = []
    epochs = run.get("epochs")
    if epochs is not None and epochs < 25 and not run.get("validation_examples"):  # no early stopping: a cap
        reasons.append(f"{epochs} epochs against Kim's 25")
    caps = {k: v for k, v in run.get("caps", {}).items() if v}
    if caps:
        reasons.append("caps " + ", ".join(f"{k}={v}" for k, v in caps.items()))
    if variant != "rand":
        cov = metrics.get("embedding_coverage")
        reasons.append(f"vectors from {metrics.get('embeddings', '?')} ({metrics.get('embedding_dim', '?')}-d, "
                       f"{cov:.0%} of MR's words found) against Kim's 300-d GoogleNews word2vec (100B tokens, "
                       f"most words found)" if cov is not None else "other vectors than Kim's")
    if run.get("protocol") == "holdout":
        reasons.append("one holdout split rather than 10-fold CV")
    direction = "below" if gap < 0 else "above"
    return f"{abs(gap):.1f} points {direction} Kim" + (f": {'; '.join(reasons)}" if reasons else "") + "."


def fmt_accuracy(value: Any) -> str:
    """An accuracy to 4 digits; "-" for none (a metrics file of an older naming scheme, marked stale)."""
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def mr_table(root: Path) -> list[str]:
    lines = ["## MR beside Kim (2014), table 2", "",
             "Kim's CNN on MR (`ch07_kim2014-<variant>`, Kim's settings; the book's code as `ch07_kim_cnn`).", "",
             "| Variant | Ours | Protocol | Epochs | Embeddings | Kim 2014 | Gap |", "|---|---|---|---|---|---|---|"]
    book = root / "metrics" / "ch07_kim_cnn.json"
    if book.is_file():
        m = read_json(book)
        run = read_json(root / "models" / "ch07_kim_cnn" / "run.json") if (
            root / "models" / "ch07_kim_cnn" / "run.json").is_file() else {}
        lines.append(f"| rand, the book's code (10 filters, adam) | {fmt_accuracy(m.get('test_accuracy'))} | holdout | "
                     f"{run.get('epochs', '?')} | random | {KIM_TABLE2['rand']:.3f} | "
                     f"{kim_gap('rand', m, {**run, 'protocol': 'holdout'}, KIM_TABLE2['rand'])} |")
    for variant in KIM_VARIANTS:
        name = f"ch07_kim2014-{variant}"
        mfile, rfile = root / "metrics" / f"{name}.json", root / "models" / name / "run.json"
        if not (mfile.is_file() and rfile.is_file()):
            lines.append(f"| {variant} | not run | | | | {KIM_TABLE2[variant]:.3f} | |")
            continue
        m, run = read_json(mfile), read_json(rfile)
        ours = (f"{m['test_accuracy_mean']:.4f} ± {m['test_accuracy_std']:.4f}" if "test_accuracy_mean" in m
                else fmt_accuracy(m.get("test_accuracy")))
        emb = "random" if variant == "rand" else f"{m.get('embeddings')} ({m.get('embedding_coverage', 0):.0%})"
        protocol = f"{run.get('folds')}-fold CV" if run.get("protocol") == "cv" else "holdout"
        lines.append(f"| {variant} | {ours} | {protocol} | {run.get('epochs')} | {emb} | "
                     f"{KIM_TABLE2[variant]:.3f} | {kim_gap(variant, m, run, KIM_TABLE2[variant])} |")
    return lines


REPORT_SECTIONS = (mr_table,)
