"""Chapter 6: word representations (第六章 词的表示, book lines 2637-3120).

The book's sections and the task ids that build them. Each writes word vectors that later chapters read,
``data/embeddings/<task>-<corpus>/vectors.txt`` (word2vec text format), and each is evaluated the same way
(:mod:`dltm.embeddings`: analogies, WordSim-353, SimLex-999, nearest neighbours, a 2-D picture).

- 6.3  skip-gram with negative sampling in Keras (lines 2935-3120)       -> ``ch06_word2vec_keras``
- 6.2.1-6.2.2 word2vec's skip-gram and CBOW, with gensim                 -> ``ch06_gensim_skipgram``,
                                                                            ``ch06_gensim_cbow``
- 6.2 (GloVe, Pennington et al. 2014): co-occurrence counts and weighted
  least squares, a Keras model on any backend                           -> ``ch06_glove``

Every task runs on each corpus of ``CORPORA`` (a DVC matrix): ``text8``, the book's (downloaded), ``ptb``, Penn
Treebank's training text, which the offline mirror has, and ``imdb_text``, IMDB's 25,000 training reviews in Kim's
tokens: 6.3M tokens of film reviews, the domain of MR, for chapter 7's pretrained vectors. The corpus is prepared
once by ``prepare@<corpus>`` (``prepare_imdb_text``; :func:`dltm.data.prepare_corpus`, the book's
``build_dataset``: ids by frequency, UNK = 0). Each set of vectors is scored on the same tests, and by how many of
MR's words it has a vector for (``mr_coverage``).

The book's 6.3 listing has four bugs; each has a switch whose default is the fix:
``book_first_pairs`` (the book trains on batches drawn from the first 50,000 pairs only; 0 = the whole
corpus, streamed), ``use_sampling_table`` (described, then never passed to ``skipgrams``), ``neighbours``
(the book ranks by raw dot product; cosine is right). Its fourth, the labels passed inside ``x`` to
``train_on_batch``, has no switch: ``model.fit`` on ``((target, context), label)`` cannot make it.
"""

from __future__ import annotations

import math
import time
import zlib
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from dltm import datasets
from dltm import params as P
from dltm.cli import MissingOutputError
from dltm.data import Corpus, load_corpus
from dltm.embeddings import (
    analogy_accuracy,
    keyed_vectors,
    load_word2vec,
    nearest_neighbours,
    null_metrics_note,
    projection_png,
    save_word2vec,
    word_coverage,
    word_pair_correlations,
)
from dltm.evaluation import history_png, write_metrics
from dltm.io import atomic_path, write_json
from dltm.params import ParamError, require
from dltm.runtime import seed_everything, setup
from dltm.skipgram import make_sampling_table, shuffled_pair_batches, skipgram_dataset, skipgrams
from dltm.tasks import Context, Reference, Task
from dltm.text import Tokenizer
from dltm.tracking import curve_names, epoch_logger
from dltm.training import StopOnNonFiniteLoss, model_summary, optimizer, write_history_csv

CORPORA = ("text8", "ptb", "imdb_text")
VECTORS = "vectors.txt"


def corpus(ctx: Context) -> Corpus:
    """The prepared corpus of this run's variant, cut to ``run.max_train_examples`` tokens if set."""
    c = load_corpus(ctx.root / "data" / "prepared" / ctx.variant)
    c.ids = c.ids[:ctx.run.cap_train(len(c.ids))]
    return c


def save_vectors(ctx: Context, words: list[str], vectors: np.ndarray, skip_unk: bool = True) -> None:
    """data/embeddings/<task>-<corpus>/vectors.txt, most frequent word first (UNK, id 0, left out)."""
    start = 1 if skip_unk else 0
    save_word2vec(keyed_vectors(words[start:], vectors[start:]), ctx.model_dir / VECTORS)
    ctx.tracker.log_artifact(ctx.model_dir / VECTORS, "vectors")


def finish_history(ctx: Context, history: dict[str, list[float]]) -> None:
    """history.csv and history.png of the training curves, named as everywhere (``loss`` -> ``train_loss``)."""
    history = curve_names(history)
    write_history_csv(history, ctx.train_dir / "history.csv")
    history_png(history, ctx.train_dir / "history.png", f"{ctx.name}: training loss")
    ctx.tracker.log_artifact(ctx.train_dir / "history.png", "plots")


# ------------------------------------------------------------------------------------------------------------
# 6.3 Skip-gram with negative sampling in Keras (lines 2935-3120)
#
# A shared Embedding looks up the target and the context word; their dot product goes through
# Dense(1, sigmoid); binary cross-entropy against the skipgrams() label; adam. The book's loop runs 10,000
# train_on_batch steps of 1000 pairs; here model.fit runs the same steps, ``log_every`` per Keras epoch.
# ------------------------------------------------------------------------------------------------------------


def build_word2vec(vocab_size: int, vector_dim: int) -> keras.Model:
    input_target = keras.Input((1,), name="input_target")
    input_context = keras.Input((1,), name="input_context")
    embedding = layers.Embedding(vocab_size, vector_dim, name="embedding")
    target = layers.Reshape((vector_dim,))(embedding(input_target))
    context = layers.Reshape((vector_dim,))(embedding(input_context))
    dot_product = layers.Dot(axes=1, name="dot_product")([target, context])
    output = layers.Dense(1, activation="sigmoid", name="output")(dot_product)
    return keras.Model(inputs=[input_target, input_context], outputs=output, name="word2vec")


def train_word2vec_keras(ctx: Context) -> dict[str, Any]:
    p, where = ctx.params, ctx.task.id
    c = corpus(ctx)
    vocab_size = min(require(p, "vocabulary_size", int, where), len(c.words))
    vector_dim = require(p, "vector_dim", int, where)
    window_size = require(p, "window_size", int, where)
    negative_samples = require(p, "negative_samples", float, where)
    iterations = require(p, "iterations", int, where)
    batch_size = require(p, "batch_size", int, where)
    log_every = require(p, "log_every", int, where)
    first_pairs = require(p, "book_first_pairs", int, where)
    if iterations < 1 or log_every < 1 or iterations % log_every:
        raise ParamError(f"params.yaml: {where}.iterations must be a positive multiple of {where}.log_every")
    data = np.where(c.ids < vocab_size, c.ids, 0)
    table = make_sampling_table(vocab_size) if require(p, "use_sampling_table", bool, where) else None
    strategy = setup(ctx.run)
    if first_pairs:  # the book: all couples in memory, batches drawn from the first 50,000 only
        couples, labels = skipgrams(data, vocab_size, window_size, negative_samples, sampling_table=table,
                                    seed=ctx.run.seed)
        couples, labels = couples[:first_pairs], labels[:first_pairs]
        ds = shuffled_pair_batches(couples[:, 0], couples[:, 1], labels, batch_size, ctx.run.seed)
    else:
        ds = skipgram_dataset(data, vocab_size, window_size, negative_samples, table, batch_size, ctx.run.seed)
    with strategy.scope():
        model = build_word2vec(vocab_size, vector_dim)
        model.compile(loss="binary_crossentropy",
                      optimizer=optimizer(require(p, "optimizer", str, where), p.get("learning_rate")))
    epochs = ctx.run.epochs(iterations // log_every)
    start = time.perf_counter()
    hist = model.fit(ds, epochs=epochs, steps_per_epoch=log_every, verbose=0, shuffle=False,
                     callbacks=[StopOnNonFiniteLoss(ctx.name, epochs), epoch_logger(ctx.tracker, epochs=epochs)])
    seconds = time.perf_counter() - start
    with atomic_path(ctx.model_dir) as tmp:
        tmp.mkdir(parents=True)
        model.save(tmp / "model.keras")
        (tmp / "summary.txt").write_text(model_summary(model), encoding="utf-8")
    save_vectors(ctx, c.words[:vocab_size], keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings))
    finish_history(ctx, {k: [float(v) for v in vs] for k, vs in hist.history.items()})
    steps = epochs * log_every
    ctx.tracker.log_metrics({"train_seconds": seconds, "examples_per_second": steps * batch_size / seconds})
    return {"train_examples": int(len(data)), "epochs": epochs, "steps": steps, "train_seconds": round(seconds, 3),
            "examples_per_second": round(steps * batch_size / seconds), "vocabulary": vocab_size}


# ------------------------------------------------------------------------------------------------------------
# 6.2.1-6.2.2 word2vec with gensim: skip-gram and CBOW
#
# Defaults: the settings of gensim PR #176 (the reference numbers for text8: skip-gram 29.3%, CBOW 15.5%):
# 640 dimensions, window 10, hierarchical softmax, no negative sampling, no subsampling, one pass, min_count 5.
# One worker thread and a fixed hash make a run repeatable; raise ``workers`` for speed.
# ------------------------------------------------------------------------------------------------------------


def stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with hashfxn(word + seed); Python's hash() changes per process."""
    return zlib.crc32(text.encode("utf-8"))


def sentences(c: Corpus, length: int = 10_000) -> list[list[str]]:
    """The corpus in pieces of ``length`` words (as gensim's Text8Corpus), UNK left out."""
    words = np.asarray(c.words, dtype=object)
    ids = c.ids[c.ids != 0]
    return [words[ids[i:i + length]].tolist() for i in range(0, len(ids), length)]


def train_gensim(ctx: Context, sg: int) -> dict[str, Any]:
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    p, where = ctx.params, ctx.task.id
    seed_everything(ctx.run.seed)
    c = corpus(ctx)
    text = sentences(c)
    epochs = ctx.run.epochs(require(p, "epochs", int, where))
    losses: list[float] = []

    class EpochLoss(CallbackAny2Vec):
        def on_epoch_end(self, model):
            total = model.get_latest_training_loss()
            losses.append(total - sum(losses))  # gensim's loss accumulates over the run
            ctx.tracker.log_metrics({"train_loss": losses[-1]}, step=len(losses))
            print(f"epoch {len(losses)}/{epochs}  train_loss {losses[-1]:.4f}", flush=True)

    model = Word2Vec(vector_size=require(p, "vector_size", int, where), window=require(p, "window", int, where),
                     min_count=require(p, "min_count", int, where), sg=sg, hs=require(p, "hs", int, where),
                     negative=require(p, "negative", int, where), sample=require(p, "sample", float, where),
                     alpha=require(p, "alpha", float, where), workers=require(p, "workers", int, where),
                     seed=ctx.run.seed, hashfxn=stable_hash, compute_loss=True)
    model.build_vocab(text)
    start = time.perf_counter()
    model.train(text, total_examples=len(text), epochs=epochs, callbacks=[EpochLoss()])
    seconds = time.perf_counter() - start
    words = int(sum(len(s) for s in text))
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    save_word2vec(model.wv, ctx.model_dir / VECTORS)
    ctx.tracker.log_artifact(ctx.model_dir / VECTORS, "vectors")
    finish_history(ctx, {"loss": losses})
    rate = words * epochs / seconds
    ctx.tracker.log_metrics({"train_seconds": seconds, "words_per_second": rate})
    return {"train_examples": words, "epochs": epochs, "train_seconds": round(seconds, 3),
            "words_per_second": round(rate), "vocabulary": len(model.wv)}


def train_gensim_skipgram(ctx: Context) -> dict[str, Any]:
    return train_gensim(ctx, sg=1)


def train_gensim_cbow(ctx: Context) -> dict[str, Any]:
    return train_gensim(ctx, sg=0)


# ------------------------------------------------------------------------------------------------------------
# GloVe (Pennington, Socher, Manning 2014): X_ij = co-occurrences within ``window`` words, weighted 1/distance;
# minimise sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 with f(x) = min(1, (x / x_max)^alpha), by
# AdaGrad over shuffled batches of the nonzero X_ij (a GPU runs it when there is one). Vectors: W + W~.
# ------------------------------------------------------------------------------------------------------------


def cooccurrences(ids: np.ndarray, vocab_size: int, window: int, chunk: int = 2_000_000):
    """The symmetric, distance-weighted co-occurrence matrix (scipy CSR) of a corpus of word ids (0 skipped)."""
    from scipy import sparse

    total = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for start in range(0, len(ids), chunk):
        seg = ids[start:start + chunk + window]  # overlap so no pair is lost at a cut
        rows, cols, vals = [], [], []
        for d in range(1, window + 1):
            a, b = seg[:-d][:chunk], seg[d:][:chunk]
            ok = (a != 0) & (b != 0)
            rows += [a[ok], b[ok]]
            cols += [b[ok], a[ok]]
            vals += [np.full(int(ok.sum()), 1.0 / d)] * 2
        total = total + sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                          shape=(vocab_size, vocab_size)).tocsr()
    return total


def half_squared_error(y_true, y_pred):
    """GloVe's per-pair loss, 0.5 (w_i . w~_j + b_i + b~_j - log X_ij)^2, shape (batch,); f(X_ij) comes in as
    the sample weight and the batch's losses are summed (``reduction="sum"``), as Pennington et al. sum them."""
    return 0.5 * ops.sum(ops.square(y_pred - y_true), axis=-1)


def build_glove(vocab_size: int, dim: int, init: dict[str, np.ndarray] | None = None) -> keras.Model:
    """GloVe as a Keras model: word ids ``i`` and context ids ``j``, shape (batch, 1), to the score
    w_i . w~_j + b_i + b~_j, shape (batch, 1). The four tables are Embedding layers ``W``, ``W_tilde``, ``b``,
    ``b_tilde``; ``init`` sets their starting values (arrays of shape (vocab_size, dim) or (vocab_size, 1))."""
    i = keras.Input((1,), dtype="int32", name="i")
    j = keras.Input((1,), dtype="int32", name="j")
    w = layers.Embedding(vocab_size, dim, name="W")(i)
    w_tilde = layers.Embedding(vocab_size, dim, name="W_tilde")(j)
    b = layers.Embedding(vocab_size, 1, name="b")(i)
    b_tilde = layers.Embedding(vocab_size, 1, name="b_tilde")(j)
    score = ops.sum(w * w_tilde, axis=-1) + b[..., 0] + b_tilde[..., 0]
    model = keras.Model({"i": i, "j": j}, score, name="glove")
    for name, value in (init or {}).items():
        model.get_layer(name).embeddings.assign(value)
    return model


@keras.saving.register_keras_serializable(package="dltm")
class GloveLoss(keras.losses.Loss):
    """:func:`half_squared_error`, summed over the batch (``reduction="sum"``) after the weights f(X_ij)."""

    def __init__(self, name: str = "glove", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)

    def call(self, y_true, y_pred):
        return half_squared_error(y_true, y_pred)


class _PerPairLoss(keras.callbacks.Callback):
    """The epoch's loss as the mean over co-occurring pairs (Keras reports the mean of the batches' sums), and
    the epoch's seconds; printed as one line."""

    def __init__(self, pairs: int, batch_size: int, epochs: int):
        super().__init__()
        self.batches, self.pairs, self.epochs = math.ceil(pairs / batch_size), pairs, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["loss"] = float(logs["loss"]) * self.batches / self.pairs
        logs["epoch_seconds"] = time.perf_counter() - self.t0
        print(f"epoch {epoch + 1}/{self.epochs}  train_loss {logs['loss']:.4f}  ({logs['epoch_seconds']:.1f} s)",
              flush=True)


def train_glove(ctx: Context) -> dict[str, Any]:
    """GloVe trained by ``Model.fit`` on any Keras backend: the nonzero X_ij in shuffled batches, AdaGrad
    (initial accumulator 1, as Pennington et al.'s code), the sum of f(X_ij)-weighted squared errors per batch."""
    p, where = ctx.params, ctx.task.id
    c = corpus(ctx)
    vocab_size = min(require(p, "vocabulary_size", int, where), len(c.words))
    dim = require(p, "vector_size", int, where)
    x_max, alpha = require(p, "x_max", float, where), require(p, "alpha", float, where)
    batch_size = require(p, "batch_size", int, where)
    epochs = ctx.run.epochs(require(p, "epochs", int, where))
    data = np.where(c.ids < vocab_size, c.ids, 0)
    start = time.perf_counter()
    X = cooccurrences(data, vocab_size, require(p, "window", int, where)).tocoo()
    count_seconds = time.perf_counter() - start
    i_idx, j_idx, x = X.row.astype(np.int32), X.col.astype(np.int32), X.data.astype(np.float32)
    weight = np.minimum(1.0, (x / x_max) ** alpha).astype(np.float32)
    log_x = np.log(x)[:, None]
    strategy = setup(ctx.run)
    rng = np.random.default_rng(ctx.run.seed)
    init = {name: ((rng.random(shape, dtype=np.float32) - 0.5) / dim)
            for name, shape in (("W", (vocab_size, dim)), ("W_tilde", (vocab_size, dim)), ("b", (vocab_size, 1)),
                                ("b_tilde", (vocab_size, 1)))}
    with strategy.scope():
        model = build_glove(vocab_size, dim, init)
        model.compile(optimizer=keras.optimizers.Adagrad(learning_rate=require(p, "learning_rate", float, where),
                                                          initial_accumulator_value=1.0),
                      loss=GloveLoss())
    hist = model.fit({"i": i_idx[:, None], "j": j_idx[:, None]}, log_x, sample_weight=weight,
                     batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0,
                     callbacks=[_PerPairLoss(len(x), batch_size, epochs), StopOnNonFiniteLoss(ctx.name, epochs),
                                epoch_logger(ctx.tracker, epochs=epochs, echo=False)])
    seconds = time.perf_counter() - start
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    vectors = sum(ops.convert_to_numpy(model.get_layer(n).embeddings) for n in ("W", "W_tilde"))
    save_vectors(ctx, c.words[:vocab_size], vectors)
    finish_history(ctx, {"loss": [float(v) for v in hist.history["loss"]]})
    per_epoch = float(np.mean(hist.history["epoch_seconds"])) if epochs else 0.0
    return {"train_examples": int(len(data)), "epochs": epochs, "train_seconds": round(seconds, 3),
            "cooccurrence_entries": int(len(x)), "cooccurrence_seconds": round(count_seconds, 3),
            "seconds_per_epoch": round(per_epoch, 3), "vocabulary": vocab_size}


# ------------------------------------------------------------------------------------------------------------
# The evaluation every embedding gets
# ------------------------------------------------------------------------------------------------------------


def validation_words(kv, seed: int, valid_size: int = 16, valid_window: int = 100) -> list[str]:
    """The book's ``np.random.choice(valid_window, valid_size, replace=False)``: 16 of the 100 most frequent."""
    head = kv.index_to_key[:valid_window]
    pick = np.random.RandomState(seed).choice(len(head), min(valid_size, len(head)), replace=False)
    return [head[i] for i in pick]


def evaluate_embedding(ctx: Context) -> dict[str, Any]:
    p, where = ctx.params, ctx.task.id
    ranking = require(p, "neighbours", str, where)
    if ranking not in ("cosine", "dot"):
        raise ParamError(f"params.yaml: {where}.neighbours must be 'cosine' or 'dot' (the book's), got {ranking!r}")
    kv = load_word2vec(ctx.model_dir / VECTORS)
    questions = datasets.require("analogies", ctx.root / "data" / "raw") / "questions-words.txt"
    metrics: dict[str, Any] = analogy_accuracy(kv, questions, restrict_vocab=require(p, "restrict_vocab", int, where))
    metrics.update(word_pair_correlations(kv))
    metrics["vocabulary"] = len(kv)
    mr_tokens = ctx.prepared("mr") / "tokenizer.json"  # chapter 7's sentences: what its vectors must cover
    if not mr_tokens.is_file():
        raise MissingOutputError(f"{mr_tokens}: missing; run `dvc repro prepare@mr` first (MR's words, whose "
                                 "coverage is measured)")
    mr = Tokenizer.load(mr_tokens)
    coverage = word_coverage(kv, mr.word_counts)
    metrics.update({"mr_coverage": coverage["words"], "mr_token_coverage": coverage["tokens"]})
    note = null_metrics_note(metrics, len(kv))  # a tiny vocabulary (run.max_train_examples) covers no test item
    if note:
        metrics["note"] = note
    if ranking == "dot":  # the book's ranking: raw dot products
        words = validation_words(kv, ctx.run.seed)
        sims = kv.vectors @ kv.vectors[[kv.key_to_index[w] for w in words]].T
        near = {w: [(kv.index_to_key[k], round(float(sims[k, n]), 4)) for k in np.argsort(-sims[:, n])[1:9]]
                for n, w in enumerate(words)}
    else:
        near = nearest_neighbours(kv, validation_words(kv, ctx.run.seed), topn=8)
    write_json(ctx.eval_dir / "neighbours.json", near)
    png = projection_png(kv, ctx.eval_dir / "projection.png", f"{ctx.name}: the 150 most frequent words (PCA)")
    sections = {k.split(".", 1)[1]: v for k, v in metrics.items() if k.startswith("analogy_section.")}
    write_json(ctx.eval_dir / "analogy_sections.json", sections)
    # the analogy questions and word-pair sets are the test sets; the vocabulary and the note are no measurement
    summary = write_metrics(ctx, {k: v for k, v in metrics.items() if not k.startswith("analogy_section.")},
                            keep=["vocabulary", "note", "mr_coverage", "mr_token_coverage"])
    ctx.tracker.log_metrics({f"test_analogy_section.{k}": v for k, v in sections.items()})
    for f in (png, ctx.eval_dir / "neighbours.json", ctx.eval_dir / "analogy_sections.json"):
        ctx.tracker.log_artifact(f, "evaluation")
    return summary


ALSO = ("test_analogy_questions", "test_analogy_semantic", "test_analogy_syntactic", "test_wordsim353_spearman",
        "test_simlex999_spearman", "mr_coverage", "mr_token_coverage")
EMBEDDING = {"outputs": "data/embeddings", "variants": CORPORA, "also": ALSO}

_EVAL = ("neighbours", "restrict_vocab")
_GENSIM = P.keys("vector_size", "window", "epochs", *_EVAL, min_count=P.POSITIVE_INT, hs=P.Choice(0, 1),
                 negative=P.Int(0), sample=P.Float(0.0), alpha=P.Float(0.0, low_open=True), workers=P.POSITIVE_INT)
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch06_word2vec_keras": P.keys("vocabulary_size", "batch_size", "optimizer", "learning_rate", *_EVAL,
                                  vector_dim=P.POSITIVE_INT, window_size=P.POSITIVE_INT,
                                  negative_samples=P.Float(0.0), iterations=P.POSITIVE_INT, log_every=P.POSITIVE_INT,
                                  use_sampling_table=P.BOOL, book_first_pairs=P.Int(0)),
    "ch06_gensim_skipgram": _GENSIM,
    "ch06_gensim_cbow": _GENSIM,
    "ch06_glove": P.keys("vocabulary_size", "vector_size", "window", "learning_rate", "batch_size", "epochs", *_EVAL,
                         x_max=P.Float(0.0, low_open=True), alpha=P.Float(0.0, low_open=True)),
}

TASKS = (
    Task("ch06_word2vec_keras", "6.3 (lines 2935-3120)", "Skip-gram with negative sampling in Keras", None,
         "test_analogy_accuracy", train_word2vec_keras, evaluate_embedding,
         Reference(None, "the book prints only nearest neighbours"),
         notes="analogy accuracy over questions-words.txt questions within the 30,000 most frequent words",
         **EMBEDDING),
    Task("ch06_gensim_skipgram", "6.2.1", "word2vec skip-gram (gensim)", None, "test_analogy_accuracy",
         train_gensim_skipgram, evaluate_embedding,
         Reference(0.293, "gensim PR #176: skip-gram on text8, 640-d, window 10, restrict_vocab 30,000"),
         notes="the reference is for text8; PTB (1M tokens, 10k words) is 17 times smaller", **EMBEDDING),
    Task("ch06_gensim_cbow", "6.2.2", "word2vec CBOW (gensim)", None, "test_analogy_accuracy",
         train_gensim_cbow, evaluate_embedding,
         Reference(0.155, "gensim PR #176: CBOW (mean) on text8, 640-d, window 10, restrict_vocab 30,000"),
         notes="the reference is for text8", **EMBEDDING),
    Task("ch06_glove", "6.2 (GloVe)", "GloVe: co-occurrences and weighted least squares, trained by Keras", None,
         "test_analogy_accuracy", train_glove, evaluate_embedding,
         Reference(0.717, "Pennington et al. 2014, table 2: GloVe 300-d on 6B tokens, 71.7% (upper reference)"),
         notes="trained here on far smaller corpora than the reference", **EMBEDDING),
)
