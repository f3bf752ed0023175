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

from typing import Any

import keras
import numpy as np
from keras import layers

from dltm.data import IMDB_CLASSES, load_imdb, load_prepared_text
from dltm.io import write_json, write_text
from dltm.params import ParamError, require
from dltm.tasks import Context, Reference, Task
from dltm.text import Tokenizer, pad_post
from dltm.training import ClassifierData, FitSettings, evaluate_classifier, train_classifier

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
    write_json(ctx.metrics_file, metrics)
    ctx.tracker.log_metrics(metrics)
    ctx.tracker.log_artifact(ctx.eval_dir / "outputs.json", "samples")
    return metrics


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

    return evaluate_classifier(ctx, data, extra=predict_docs2)


# ------------------------------------------------------------------------------------------------------------
# 7.3 CNN text classification on MR (lines 3416-3923)
#
# Data (7.3.2 "数据准备"): dltm.data.prepare_mr does data_helpers.load_data_and_labels, the Tokenizer, the
# post padding and the seed-10 split once, in the prepare stage; each task applies its own vocab_size here.
# ------------------------------------------------------------------------------------------------------------


def mr_data(ctx: Context, vocab_size: int) -> ClassifierData:
    mr = load_prepared_text(ctx.prepared("mr"), vocab_size)
    x_train, x_dev = mr.x[mr.train_idx], mr.x[mr.dev_idx]
    y_train, y_dev = mr.y[mr.train_idx], mr.y[mr.dev_idx]
    # how `python -m stages.predict` must encode new sentences: Kim's clean_str, then post padding
    return ClassifierData(x_train, y_train, x_dev, y_dev, mr.class_names, tokenizer=mr.tokenizer,
                          info={"vocab_size": vocab_size, "doc_length": int(mr.x.shape[1]), "clean": "kim",
                                "padding": "post"})


def train_on_mr(ctx: Context, build, settings: dict[str, Any]) -> dict[str, Any]:
    """Train ``build(doc_length, **settings)`` on the book's MR split with the task's fit settings."""
    return train_classifier(ctx, mr_data(ctx, settings["vocab_size"]),
                            lambda d: build(d.info["doc_length"], **settings),
                            FitSettings.from_params(ctx.params, ctx.task.id))


def evaluate_on_mr(ctx: Context) -> dict[str, Any]:
    return evaluate_classifier(ctx, mr_data(ctx, require(ctx.params, "vocab_size", int, ctx.task.id)))


# 7.3.1-7.3.2 Kim's CNN (lines 3418-3639). The book's code uses 10 filters per region size; Kim used 100.


def build_kim_cnn(doc_length: int, vocab_size: int = 10000, embed_size: int = 50,
                  filter_sizes=(3, 4, 5), filter_nums: int = 10, dropout: float = 0.5,
                  max_norm: float | None = None) -> keras.Model:
    """Kim's CNN as the book builds it; ``max_norm`` (Kim: 3) caps the L2 norm of the output weights."""
    m = doc_length
    inputs = keras.Input((m,), dtype="int32", name="inputs")
    embed = layers.Embedding(input_dim=vocab_size, output_dim=embed_size, name="embed")
    hidden = embed(inputs)
    reshape = layers.Reshape((m, embed_size, 1), name="reshape")(hidden)
    pooled_output = []
    for fsize in filter_sizes:
        if fsize > m:
            raise ParamError(f"params.yaml: ch07_kim_cnn.filter_sizes has {fsize}, longer than the "
                             f"longest document ({m} words)")
        conv = layers.Conv2D(filters=filter_nums, kernel_size=(fsize, embed_size), activation="relu",
                             padding="valid", name=f"conv_{fsize}")(reshape)
        pool = layers.MaxPool2D(pool_size=(m - fsize + 1, 1), name=f"pool_{fsize}")(conv)
        drop = layers.Dropout(dropout, name=f"drop_{fsize}")(pool)
        reshaped = layers.Reshape((filter_nums,), name=f"reshaped_{fsize}")(drop)
        pooled_output.append(reshaped)
    hidden2 = layers.Concatenate(name="hidden2")(pooled_output)
    constraint = keras.constraints.MaxNorm(max_norm) if max_norm else None
    output = layers.Dense(1, activation="sigmoid", kernel_constraint=constraint, dtype="float32",
                          name="output")(hidden2)
    return keras.Model(inputs=inputs, outputs=output, name="kim_cnn")


def kim_cnn_settings(p: dict[str, Any], where: str = "ch07_kim_cnn") -> dict[str, Any]:
    variant = require(p, "variant", str, where)
    if variant != "rand":
        raise ParamError(f"params.yaml: {where}.variant={variant!r}: only 'rand' (embeddings learned from "
                         f"scratch) is available; static, non-static and multichannel need pretrained vectors")
    sizes = p.get("filter_sizes")
    if not (isinstance(sizes, list) and sizes and all(isinstance(s, int) and s > 0 for s in sizes)):
        raise ParamError(f"params.yaml: {where}.filter_sizes should be a list of positive integers, got {sizes!r}")
    return {
        "vocab_size": require(p, "vocab_size", int, where),
        "embed_size": require(p, "embed_size", int, where),
        "filter_sizes": tuple(sizes),
        "filter_nums": require(p, "filter_nums", int, where),
        "dropout": require(p, "dropout", float, where),
        "max_norm": None if p.get("max_norm") is None else require(p, "max_norm", float, where),
    }


def train_kim_cnn(ctx: Context) -> dict[str, Any]:
    return train_on_mr(ctx, build_kim_cnn, kim_cnn_settings(ctx.params, ctx.task.id))


# 7.3.4 The 1-D CNN (lines 3832-3923): Keras' imdb_cnn example applied to MR.


def build_cnn1d(doc_length: int, vocab_size: int = 5000, embedding_dims: int = 50, filters: int = 250,
                kernel_size: int = 3, hidden_dims: int = 250, dropout: float = 0.2) -> keras.Model:
    model = keras.Sequential(name="cnn1d")
    model.add(keras.Input((doc_length,), dtype="int32", name="inputs"))
    model.add(layers.Embedding(vocab_size, embedding_dims, name="embed"))
    model.add(layers.Dropout(dropout, name="embed_dropout"))
    model.add(layers.Conv1D(filters, kernel_size, padding="valid", activation="relu", strides=1, name="conv"))
    model.add(layers.GlobalMaxPooling1D(name="pool"))
    model.add(layers.Dense(hidden_dims, name="hidden"))
    model.add(layers.Dropout(dropout, name="hidden_dropout"))
    model.add(layers.Activation("relu", name="relu"))
    model.add(layers.Dense(1, name="logit"))
    model.add(layers.Activation("sigmoid", dtype="float32", name="output"))
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


TASKS = (
    Task("ch07_tokenizer_demo", "7.1 (lines 3128-3275)", "Keras 2 Tokenizer on ten documents", None,
         "word_index_matches_book", train_tokenizer_demo, evaluate_tokenizer_demo,
         Reference(1.0, "book 7.1: word_index and texts_to_sequences as printed by Keras 2"),
         notes="1.0 means our word_index and sequences equal the book's exactly"),
    Task("ch07_simple_classifier", "7.2 (lines 3277-3414)", "Embedding -> Flatten -> Dense on ten documents",
         None, "accuracy", train_simple_classifier, evaluate_simple_classifier,
         Reference(None, "book 7.2 prints no accuracy; its (unseeded) predictions for docs2 are "
                   "0.4786 and 0.5547"),
         notes="accuracy on the ten training documents, as in the book"),
    Task("ch07_kim_cnn", "7.3.1-7.3.2 (lines 3418-3639)", "Kim's CNN, rand variant, on MR (holdout)", "mr",
         "accuracy", train_kim_cnn, evaluate_on_mr,
         Reference(0.761, "Kim 2014, table 2, CNN-rand on MR (100 filters, 10-fold CV)"),
         notes="the book's holdout (seed-10 permutation, last 1000 as dev)"),
    Task("ch07_cnn1d", "7.3.4 (lines 3832-3923)", "1-D CNN (Keras imdb_cnn) on MR (holdout)", "mr",
         "accuracy", train_cnn1d, evaluate_on_mr,
         Reference(None, "the book prints no number; Keras' imdb_cnn reached ~0.89 on IMDB"),
         notes="the book's holdout (seed-10 permutation, last 1000 as dev)"),
    Task("ch07_cnn1d_imdb", "7.3.4 (lines 3832-3923)", "1-D CNN (Keras imdb_cnn) on IMDB", "imdb",
         "accuracy", train_cnn1d_imdb, evaluate_cnn1d_imdb,
         Reference(0.864, "keras-io text_classification_from_scratch, 86.4% test accuracy (stretch 0.89, "
                   "Keras imdb_cnn)"),
         notes="the 25,000 IMDB test reviews; Tokenizer fitted on the 25,000 training reviews"),
)
