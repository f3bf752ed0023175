"""Chapter 14: deep learning in information retrieval (第十四章 深度学习在信息检索中的应用, book lines 5820-5948).

- 14.2.1 paragraph vectors (Le & Mikolov 2014): PV-DM (mean and concatenated context), PV-DBOW and their
         concatenations as IMDB review features for a logistic regression; the nearest reviews of a review
         (lines 5838-5868)                                                           -> ``ch14_paragraph_vector``
- 14.2.2 skip-thought vectors (Kiros et al. 2015): the GRU encoder and the two decoders of figures 11.4-11.9,
         trained on contiguous sentences of IMDB's training reviews; the encoder's vectors as features for MR
         (lines 5870-5948)                                                               -> ``ch14_skip_thought``

The book gives the theory without code or data. The paragraph-vector task follows gensim's doc2vec-IMDB
tutorial (``run_doc2vec_imdb.py``): its three models and settings, its tokenization (gensim 3.x's
``normalize_text``: :func:`dltm.retrieval.review_words`), a logistic regression on the training reviews'
vectors, error on the 25,000 test reviews. Two protocols:

- ``tutorial``: one Doc2Vec model trained on the train and test reviews' text together (no labels), as the
  tutorial and Le & Mikolov do, so every test review has a trained vector;
- ``inductive``: trained on the training reviews only; each test review's vector inferred (``infer_vector``)
  afterwards, as for a document never seen: the protocol a deployed model faces.

The tutorial also trains on IMDB's 50,000 unlabelled reviews, which the mirror lacks (MANIFEST section 7): our
vectors see half its text. Mesnil et al. (2014) reran the authors' code and got 88.73% accuracy, not the
paper's 92.58% (7.42% error); they report that the paper's figure came from training data that were not
shuffled (the reviews in label order), which shuffled runs do not reproduce. Their NB-SVM with uni- to trigrams:
91.87%.

Search (``python -m stages.search ch14_paragraph_vector "..."``): the query's words get an inferred PV-DBOW
vector, and the nearest test reviews by cosine are listed with their labels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dltm import params as P
from dltm.cli import UserError
from dltm.data import IMDB_CLASSES, read_imdb_split
from dltm.evaluation import figure, line_png, save_png, write_metrics
from dltm.io import read_json, write_json
from dltm.params import ParamError
from dltm.retrieval import (
    EOS,
    PAD,
    SEARCH_DIR,
    ParagraphVectorSearch,
    SkipThoughtSearch,
    encode_sentences,
    nearest,
    precision_at_k,
    repeatable_inference,
    review_sentences,
    review_words,
    sentence_vectors,
    snippet,
    text_vectors,
    tfidf_matrix,
    write_collection,
)
from dltm.tasks import Context, Reference, Task
from dltm.training import write_history_csv

# ------------------------------------------------------------------------------------------------------------
# 14.2.1 paragraph vectors (lines 5838-5868) on IMDB, as gensim's tutorial
# ------------------------------------------------------------------------------------------------------------

PV_MODELS = ("dbow", "dmm", "dmc")
"""PV-DBOW; PV-DM with the context vectors averaged (dmm) or concatenated (dmc)."""
FEATURE_SETS = {"dbow": ("dbow",), "dmm": ("dmm",), "dmc": ("dmc",), "dbow+dmm": ("dbow", "dmm"),
                "dbow+dmc": ("dbow", "dmc")}
"""Each set of paragraph vectors the logistic regression reads: one model's, or two concatenated (the
tutorial's ``ConcatenatedDoc2Vec``; Le & Mikolov's recommendation)."""
PROTOCOLS = ("tutorial", "inductive")
REVIEWS_FILE = "reviews.json"


def doc2vec_arguments(model: str, p: dict[str, Any], seed: int) -> dict[str, Any]:
    """gensim.models.Doc2Vec's arguments for ``model`` (one of :data:`PV_MODELS`) from the task's params: the
    tutorial's common ones (vector_size, epochs, min_count, sample, negative, hs), then dm, dm_concat, window and
    alpha per model (PV-DM mean: window 10, alpha 0.05; concat: window 5 each side)."""
    common = {k: p[k] for k in ("vector_size", "epochs", "min_count", "sample", "negative", "hs", "workers")}
    own = {"dbow": {"dm": 0},
           "dmm": {"dm": 1, "window": p["window"], "alpha": p["dmm_alpha"]},
           "dmc": {"dm": 1, "dm_concat": 1, "window": p["concat_window"]}}[model]
    return {**common, **own, "seed": seed}  # gensim 4 draws the starting vectors from ``seed``


def imdb_reviews(ctx: Context) -> dict[str, Any]:
    """IMDB's train and test reviews (the raw tree: data/raw/imdb), each split in a seeded order (run.seed) and
    capped by run.max_train_examples / run.max_eval_examples: texts, labels (0 neg, 1 pos) and file names."""
    raw = ctx.root / "data" / "raw" / "imdb"
    out: dict[str, Any] = {}
    for i, split in enumerate(("train", "test")):
        texts, labels = read_imdb_split(raw, split)
        # the files in read_imdb_split's order: neg then pos, each folder in name order
        names = [f"{split}/{c}/{f.name}" for c in IMDB_CLASSES
                 for f in sorted((raw / "aclImdb" / split / c).glob("*.txt"))]
        order = np.random.RandomState(ctx.run.seed + i).permutation(len(texts))
        n = ctx.run.cap_train(len(texts)) if split == "train" else ctx.run.cap_eval(len(texts))
        order = order[:n]
        out[split] = {"texts": [texts[k] for k in order], "labels": labels[order], "names": [names[k] for k in order]}
    return out


def _models(ctx: Context) -> list[str]:
    models = ctx.params["models"]
    if "dbow" not in models:
        raise ParamError(f"params.yaml: {ctx.task.id}.models must include dbow (the headline, the search), got "
                         f"{models}")
    return [m for m in PV_MODELS if m in models]


def error_rate(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    """The test error of scikit-learn's logistic regression (L2, C = 1) fitted on ``train`` (n, d) vectors; the
    tutorial fits statsmodels' unregularised Logit, which differs little with 100-200 features and 25k rows."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000)
    clf.fit(train, y_train)
    return float(np.mean(clf.predict(test) != y_test))


def epoch_error(ctx: Context, name: str, epochs: int, n_train: int, y: dict[str, np.ndarray]):
    """A gensim callback for the tutorial protocol's learning curve: the logistic regression's test error after
    each epoch (every test review has a trained vector then), logged as ``test_error_<name>``; and the list it
    fills."""
    from gensim.models.callbacks import CallbackAny2Vec

    curve: list[float] = []

    class EpochError(CallbackAny2Vec):
        def on_epoch_end(self, m):
            err = error_rate(m.dv.vectors[:n_train], y["train"], m.dv.vectors[n_train:], y["test"])
            curve.append(err)
            ctx.tracker.log_metrics({f"test_error_{name}": err}, step=len(curve))
            print(f"{ctx.name} tutorial {name}: epoch {len(curve)}/{epochs}  test_error {err:.4f}", flush=True)

    return EpochError(), curve


def train_paragraph_vector(ctx: Context) -> dict[str, Any]:
    from gensim.models.doc2vec import Doc2Vec, TaggedDocument

    p = ctx.params
    models = _models(ctx)
    reviews = imdb_reviews(ctx)
    words = {s: [review_words(t) for t in reviews[s]["texts"]] for s in ("train", "test")}
    y = {s: reviews[s]["labels"] for s in ("train", "test")}
    n_train = len(words["train"])
    ctx.model_dir.mkdir(parents=True, exist_ok=True)
    write_json(ctx.model_dir / REVIEWS_FILE, {s: {"names": reviews[s]["names"], "labels": y[s].tolist()}
                                              for s in ("train", "test")})
    history: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    search_model = None
    for protocol in p["protocols"]:
        docs = words["train"] + (words["test"] if protocol == "tutorial" else [])
        tagged = [TaggedDocument(w, [i]) for i, w in enumerate(docs)]
        for name in models:
            args = doc2vec_arguments(name, p, ctx.run.seed)
            args["epochs"] = epochs = ctx.run.epochs(args["epochs"])
            model = Doc2Vec(**args)
            model.build_vocab(tagged)
            start = time.perf_counter()
            callback, curve = epoch_error(ctx, name, epochs, n_train, y)
            model.train(tagged, total_examples=len(tagged), epochs=epochs,
                        callbacks=[callback] if protocol == "tutorial" else [])
            if protocol == "tutorial":
                history[f"test_error_{name}"] = curve
                test = model.dv.vectors[n_train:]
            else:
                with repeatable_inference():
                    test = np.stack([model.infer_vector(w, epochs=p["infer_epochs"] or epochs)
                                     for w in words["test"]])
            seconds[f"{protocol}_{name}"] = round(time.perf_counter() - start, 1)
            print(f"{ctx.name} {protocol} {name}: {seconds[f'{protocol}_{name}']} s", flush=True)
            (ctx.model_dir / protocol).mkdir(exist_ok=True)
            np.savez(ctx.model_dir / protocol / f"{name}.npz", train=model.dv.vectors[:n_train].astype("float32"),
                     test=test.astype("float32"))
            if name == "dbow" and (search_model is None or protocol == "inductive"):
                search_model = (model, test)
            del model
    model, test = search_model  # the test reviews, searchable by an inferred PV-DBOW vector (stages.search)
    folder = ctx.model_dir / SEARCH_DIR  # under stages.train's staging folder: moved into place whole
    write_collection(folder, test, reviews["test"]["names"], y["test"], IMDB_CLASSES, reviews["test"]["texts"])
    model.save(str(folder / ParagraphVectorSearch.MODEL_FILE))
    if ctx.tracker.active:  # the search as an MLflow Model (text_model: query texts in, nearest reviews out)
        from dltm import mlflow_models

        mlflow_models.log_searcher(ctx.tracker, folder, example=" ".join(words["train"][0][:12]))
    ctx.train_dir.mkdir(parents=True, exist_ok=True)  # a DVC output, also without the tutorial protocol
    (ctx.train_dir / "seconds.csv").write_text("model,seconds\n" + "".join(f"{k},{v}\n" for k, v in seconds.items()),
                                               encoding="utf-8")
    if history:
        write_history_csv(history, ctx.train_dir / "history.csv")
        line_png({f"PV-{k.rsplit('_', 1)[1].upper()}": (np.arange(1, len(v) + 1), v) for k, v in history.items()},
                 ctx.train_dir / "history.png", f"{ctx.name}: logistic regression's test error by epoch",
                 xlabel="epoch (tutorial protocol)", ylabel="test error")
        ctx.tracker.log_artifact(ctx.train_dir / "history.png", "plots")
    ctx.tracker.log_metrics({f"train_seconds_{k}": v for k, v in seconds.items()})
    return {"train_examples": n_train, "test_examples": len(words["test"]), "epochs": ctx.run.epochs(p["epochs"]),
            "train_seconds": round(sum(seconds.values()), 1), "seconds": seconds,
            "train_words": int(sum(map(len, words["train"])))}


def neighbours(ctx: Context, n_reviews: int) -> int:
    """The task's ``neighbours`` (k of precision@k). Raises ParamError when the run's ``n_reviews`` test reviews
    are not more than k."""
    k = ctx.params["neighbours"]
    if n_reviews <= k:
        raise ParamError(f"params.yaml: {ctx.task.id}.neighbours ({k}) needs more test reviews than that; "
                         f"the run has {n_reviews} (run.max_eval_examples)")
    return k


def precision_k(m: dict[str, Any]) -> str | None:
    """The k of the ``precision_at_<k>...`` entries of a metrics file ``m``; None without one."""
    return next((key.split("_")[2] for key in m if key.startswith("precision_at_")), None)


def load_vectors(ctx: Context, protocol: str, features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [np.load(ctx.model_dir / protocol / f"{m}.npz") for m in features]
    return np.hstack([z["train"] for z in parts]), np.hstack([z["test"] for z in parts])


def evaluate_paragraph_vector(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    reviews = read_json(ctx.model_dir / REVIEWS_FILE)
    y_train, y_test = np.asarray(reviews["train"]["labels"]), np.asarray(reviews["test"]["labels"])
    models = _models(ctx)
    k = neighbours(ctx, len(y_test))
    reviews_text = imdb_reviews(ctx)
    if reviews_text["test"]["names"] != reviews["test"]["names"]:
        raise UserError(f"{ctx.model_dir / REVIEWS_FILE}: trained on other test reviews than these (run.seed or "
                        f"run.max_eval_examples changed); run `dvc repro {'train_paragraph_vector'}`")
    queries = np.arange(min(p["search_queries"], len(y_test)))
    metrics: dict[str, Any] = {}
    for protocol in p["protocols"]:
        suffix = "" if protocol == "tutorial" else "_inductive"
        for fs, parts in FEATURE_SETS.items():
            if not set(parts) <= set(models):
                continue
            train, test = load_vectors(ctx, protocol, parts)
            metrics[f"test_error_{fs}{suffix}"] = error_rate(train, y_train, test, y_test)
            idx, _ = nearest(test[queries], test, k, exclude=queries)
            metrics[f"precision_at_{k}_{fs}{suffix}"] = precision_at_k(y_test[idx], y_test[queries])
    headline = "tutorial" if "tutorial" in p["protocols"] else "inductive"
    metrics["test_accuracy"] = 1 - metrics["test_error_dbow" + ("" if headline == "tutorial" else "_inductive")]

    tfidf = tfidf_matrix(reviews_text["test"]["texts"], fit_on=reviews_text["train"]["texts"])
    idx_tfidf, _ = nearest(tfidf[queries], tfidf, k, exclude=queries)
    metrics[f"precision_at_{k}_tfidf"] = precision_at_k(y_test[idx_tfidf], y_test[queries])
    metrics.update({"n_examples": len(y_test), "search_queries": len(queries)})

    protocol = "inductive" if "inductive" in p["protocols"] else "tutorial"
    _, dbow = load_vectors(ctx, protocol, ("dbow",))
    write_neighbours(ctx, reviews_text["test"], dbow, tfidf, protocol)
    png = vector_map_png(ctx, dbow, y_test, protocol)
    ctx.tracker.log_artifact(png, "plots")
    return write_metrics(ctx, metrics, keep=[k_ for k_ in metrics if not k_.startswith("test_")])


def write_neighbours(ctx: Context, test: dict[str, Any], vectors: np.ndarray, tfidf, protocol: str,
                     queries: int = 3, k: int = 3) -> None:
    """samples.md: a few test reviews, each with its nearest test reviews by PV-DBOW and by TF-IDF."""
    queries, k = min(queries, len(vectors)), min(k, len(vectors) - 1)
    idx, sims = nearest(vectors[:queries], vectors, k, exclude=np.arange(queries))
    idx_t, sims_t = nearest(tfidf[:queries], tfidf, k, exclude=np.arange(queries))
    lines = [f"# {ctx.name}: the nearest test reviews of a test review", "",
             f"PV-DBOW vectors ({protocol} protocol) and TF-IDF, cosine similarity; the label of each review in "
             f"brackets.", ""]
    for q in range(queries):
        lines += [f"## Query {q + 1} [{IMDB_CLASSES[test['labels'][q]]}] {test['names'][q]}", "",
                  f"> {snippet(test['texts'][q], 400)}", ""]
        for title, (ii, ss) in (("PV-DBOW", (idx[q], sims[q])), ("TF-IDF", (idx_t[q], sims_t[q]))):
            lines.append(f"{title}:")
            lines += [f"{r + 1}. {s:.3f} [{IMDB_CLASSES[test['labels'][i]]}] {snippet(test['texts'][i])}"
                      for r, (i, s) in enumerate(zip(ii, ss, strict=True))]
            lines.append("")
    ctx.eval_dir.mkdir(parents=True, exist_ok=True)
    (ctx.eval_dir / "samples.md").write_text("\n".join(lines), encoding="utf-8")
    ctx.tracker.log_artifact(ctx.eval_dir / "samples.md", "samples")


def vector_map_png(ctx: Context, vectors: np.ndarray, labels: np.ndarray, protocol: str, n: int = 2000):
    """The first two principal components of ``n`` test reviews' PV-DBOW vectors, coloured by label."""
    from sklearn.decomposition import PCA

    n = min(n, len(vectors))
    xy = PCA(2, random_state=ctx.run.seed).fit_transform(vectors[:n])
    fig, ax = figure(figsize=(5.5, 5))
    for label, colour in ((0, "tab:red"), (1, "tab:blue")):
        sel = labels[:n] == label
        ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.5, c=colour, label=IMDB_CLASSES[label])
    ax.set(title=f"PV-DBOW vectors of {n} test reviews ({protocol}), PCA", xlabel="PC 1", ylabel="PC 2")
    ax.legend(markerscale=4)
    return save_png(fig, ctx.eval_dir / "paragraph_vectors_pca.png")


# ------------------------------------------------------------------------------------------------------------
# 14.2.2 skip-thought vectors (lines 5870-5948): Kiros et al. 2015, small enough for a CPU
# ------------------------------------------------------------------------------------------------------------

VOCAB_FILE_ST = SkipThoughtSearch.VOCAB_FILE


def skip_thought_vocabulary(sentences: list[list[str]], size: int) -> dict[str, int]:
    """The ``size - 3`` most frequent words (ties by first appearance) after the reserved ids PAD, UNK, EOS."""
    from collections import Counter

    counts = Counter(w for s in sentences for w in s)
    return {w: i + 3 for i, (w, _) in enumerate(counts.most_common(size - 3))}


def skip_thought_triples(reviews: list[str], max_words: int) -> tuple[list, list, list]:
    """(previous, current, next) sentence lists from runs of contiguous sentences within each review."""
    prev, cur, nxt = [], [], []
    for text in reviews:
        s = review_sentences(text, max_words)
        for i in range(1, len(s) - 1):
            prev.append(s[i - 1])
            cur.append(s[i])
            nxt.append(s[i + 1])
    return prev, cur, nxt


def decoder_arrays(sentences: list[list[str]], vocab: dict[str, int], length: int) -> tuple[np.ndarray, ...]:
    """Teacher forcing: inputs EOS w1 .. w_{n} and targets w1 .. w_n EOS, both (n, length + 1), PAD after."""
    body = encode_sentences(sentences, vocab, length)
    n_words = (body != PAD).sum(axis=1)
    inputs = np.concatenate([np.full((len(body), 1), EOS, np.int32), body], axis=1)
    targets = np.concatenate([body, np.zeros((len(body), 1), np.int32)], axis=1)
    targets[np.arange(len(body)), n_words] = EOS
    return inputs, targets


def unigram_log_probabilities(targets: list[np.ndarray], vocab_size: int) -> np.ndarray:
    """(vocab_size,) float32 log p(w) of the words in the decoders' ``targets`` (arrays of ids, PAD = 0 not
    counted), add-one smoothed: the output layer's starting bias, so that the decoders predict the words'
    frequencies from the first step (Karpathy 2019, "A recipe for training neural networks": initialise the
    final layer's bias well)."""
    words = np.concatenate([t[t != PAD].ravel() for t in targets])
    counts = np.bincount(words, minlength=vocab_size).astype(np.float64) + 1.0
    counts[PAD] = 1.0
    return np.log(counts / counts.sum()).astype(np.float32)


def build_skip_thought(vocab_size: int, length: int, embed_dim: int, hidden: int,
                       output_bias: np.ndarray | None = None):
    """Kiros et al. (2015)'s model, book 14.2.2: (training model, encoder).

    Encoder: Embedding (PAD masked) -> GRU without biases, ``reset_after=False`` (the book's and the paper's
    formula: r and z from W x + U h; the candidate from W x + U (r * h)); its last state h_i (batch, hidden) is
    the sentence's skip-thought vector. Each decoder (previous, next sentence; own weights): a GRU of the same
    kind whose input at step t is [x^{t-1}; h_i] (W [x; h] = W x + C h: the book's C_r, C_z, C terms), from a
    zero state, with biases, as Kiros et al.'s code has them: without them the decoders took h_i for their
    biases, and the encoder learned to give every sentence the same vector (MR at chance, 0.514, in a first run
    here); one output layer V (Dense(vocab_size), softmax) shared by both decoders, as the book says. The
    word embeddings are shared by the encoder and the decoders. ``output_bias`` (vocab_size,): V's starting
    bias, e.g. :func:`unigram_log_probabilities`; from V's zero bias the decoders' first steps learn the words'
    frequencies through h_i, and the encoder saturates (93% of h_i's units at |h| > 0.99 in the first real run)
    into one vector for every sentence. Inputs: current, previous-in, next-in ids (batch, length + 1 for the
    decoders); outputs: (batch, length + 1, vocab_size) probabilities for each."""
    import keras
    from keras import layers

    embed = layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")
    current = keras.Input((length,), dtype="int32", name="current")
    h = layers.GRU(hidden, use_bias=False, reset_after=False, name="encoder")(embed(current))
    vocabulary = layers.Dense(vocab_size, activation="softmax", name="V")
    outputs = []
    for side in ("previous", "next"):
        words = keras.Input((length + 1,), dtype="int32", name=f"{side}_in")
        x = embed(words)
        context = layers.RepeatVector(length + 1, name=f"h_i_{side}")(h)
        x = layers.Concatenate(name=f"x_and_h_i_{side}")([x, context])  # its mask: any of the two, all true
        y = layers.GRU(hidden, reset_after=False, return_sequences=True, name=f"decoder_{side}")(
            x, mask=embed.compute_mask(words))  # the words' mask, carried on to V and the loss
        outputs.append((words, layers.Activation("linear", name=side)(vocabulary(y))))
    model = keras.Model([current, outputs[0][0], outputs[1][0]], [o for _, o in outputs], name="skip_thought")
    encoder = keras.Model(current, h, name="skip_thought_encoder")
    if output_bias is not None:
        vocabulary.bias.assign(output_bias)
    return model, encoder


def train_skip_thought(ctx: Context) -> dict[str, Any]:
    """Train on runs of contiguous sentences of IMDB's training reviews (in a seeded review order, capped by
    ``max_triples``); loss: the summed cross-entropy of the previous and the next sentence's words (padding
    masked), the book's objective. Saves the encoder (model.keras) and the vocabulary."""
    import keras

    from dltm import runtime
    from dltm.saving import save_trained
    from dltm.tracking import curve_names, epoch_logger
    from dltm.training import StopOnNonFiniteLoss, optimizer

    p = ctx.params
    texts, _ = read_imdb_split(ctx.root / "data" / "raw" / "imdb", "train")
    order = np.random.RandomState(ctx.run.seed).permutation(len(texts))
    prev, cur, nxt = skip_thought_triples([texts[i] for i in order], p["max_words"])
    if not cur:
        raise UserError(f"{ctx.root / 'data' / 'raw' / 'imdb'}: no review of the training split has three "
                        f"sentences in a row; skip-thought trains on (previous, current, next) sentences")
    n = ctx.run.cap_train(min(len(cur), p["max_triples"]))
    prev, cur, nxt = prev[:n], cur[:n], nxt[:n]
    vocab = skip_thought_vocabulary(cur, p["vocab_size"])
    length = p["max_words"]
    x_cur = encode_sentences(cur, vocab, length)
    prev_in, prev_out = decoder_arrays(prev, vocab, length)
    next_in, next_out = decoder_arrays(nxt, vocab, length)
    n_val = int(n * p["validation_split"])
    strategy = runtime.setup(ctx.run)
    epochs = ctx.run.epochs(p["epochs"])
    with strategy.scope():
        bias = (unigram_log_probabilities([prev_out[:n - n_val], next_out[:n - n_val]], len(vocab) + 3)
                if p["unigram_output_bias"] else None)  # the training rows' words only, not the held-out ones
        model, encoder = build_skip_thought(len(vocab) + 3, length, p["embed_dim"], p["hidden"], bias)
        model.compile(optimizer=optimizer(p["optimizer"], p["learning_rate"], p.get("clipnorm")),
                      loss=["sparse_categorical_crossentropy"] * 2)
    print(f"{ctx.name}: {model.count_params():,} parameters, {n - n_val:,} sentence triples ({n_val:,} held out), "
          f"{len(vocab) + 3:,} words, {epochs} epochs", flush=True)
    xs = (x_cur, prev_in, next_in)
    ys = (prev_out, next_out)
    fit_x = [a[:n - n_val] for a in xs]
    fit_y = [a[:n - n_val] for a in ys]
    val = ([a[n - n_val:] for a in xs], [a[n - n_val:] for a in ys]) if n_val else None
    callbacks = [StopOnNonFiniteLoss(ctx.name, epochs), epoch_logger(ctx.tracker, "val", epochs)]
    start = time.perf_counter()
    hist = model.fit(fit_x, fit_y, validation_data=val, epochs=epochs, batch_size=p["batch_size"], verbose=0,
                     callbacks=callbacks)
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items()
                           if k in ("loss", "val_loss")}, "val")
    keras.utils.set_random_seed(ctx.run.seed)
    info = {"vocabulary": vocab, "max_words": length}
    save_trained(ctx, encoder, {VOCAB_FILE_ST: info}, history, seconds,
                 f"{ctx.task.id}: cross-entropy of the previous + next sentence's words", rows=x_cur[:1])
    write_skip_thought_search(ctx, encoder, info)
    return {"train_examples": int(n - n_val), "validation_examples": n_val, "epochs": len(history["train_loss"]),
            "train_seconds": round(seconds, 3), "params": int(model.count_params()),
            "vocabulary": len(vocab) + 3, "examples_per_second": round((n - n_val) * len(history["train_loss"])
                                                                       / seconds, 1)}


def write_skip_thought_search(ctx: Context, encoder, info: dict[str, Any]) -> None:
    """models/<task>/search/: IMDB's test reviews (seeded order, capped by run.max_eval_examples), each as the
    mean skip-thought vector of its sentences, with the encoder and its vocabulary: what
    :class:`dltm.retrieval.SkipThoughtSearch` reads (``python -m stages.search ch14_skip_thought "..."``), logged
    to MLflow as the run's ``text_model``."""
    test = imdb_reviews(ctx)["test"]
    start = time.perf_counter()
    vectors = text_vectors(encoder, test["texts"], info["vocabulary"], info["max_words"])
    folder = ctx.model_dir / SEARCH_DIR
    write_collection(folder, vectors, test["names"], test["labels"], IMDB_CLASSES, test["texts"])
    encoder.save(folder / SkipThoughtSearch.ENCODER_FILE)
    write_json(folder / SkipThoughtSearch.VOCAB_FILE, info)
    print(f"{ctx.name}: {len(vectors):,} test reviews encoded for the search in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    if ctx.tracker.active:
        from dltm import mlflow_models

        mlflow_models.log_searcher(ctx.tracker, folder, example="a tense thriller with a twist")


def load_encoder(ctx: Context, trained: bool = True) -> tuple[Any, dict[str, Any]]:
    """The trained encoder and its vocabulary ({"vocabulary", "max_words"}); with ``trained=False``, the same
    encoder with freshly initialised weights (``keras.models.clone_model``, seeded by run.seed): the random
    encoder any trained one must beat (Wieting & Kiela 2019, "No training required")."""
    from dltm.training import load_model

    info = read_json(ctx.model_dir / VOCAB_FILE_ST)
    encoder = load_model(ctx)
    return (encoder if trained else random_encoder(encoder, ctx.run.seed)), info


def random_encoder(encoder, seed: int):
    """A copy of ``encoder``'s architecture with fresh weights, drawn after ``keras.utils.set_random_seed(seed)``."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(encoder)


def skip_thought_vectors(ctx: Context, sentences: list[list[str]], trained: bool = True) -> np.ndarray:
    """The encoder's vectors (n, hidden) of ``sentences`` (tokens): the trained one's, or with ``trained=False``
    the random encoder's of :func:`load_encoder`."""
    encoder, info = load_encoder(ctx, trained)
    return sentence_vectors(encoder, sentences, info["vocabulary"], info["max_words"])


SATURATED = 0.99
"""|h| above which a unit of the GRU's state (within (-1, 1)) counts as saturated."""


def saturated_share(vectors: np.ndarray) -> float:
    """The share of the entries of GRU states ``vectors`` (n, hidden) with |h| > :data:`SATURATED`: near 1, the
    units sit at +-1 whatever the sentence, and their tanh passes no gradient back."""
    return float(np.mean(np.abs(vectors) > SATURATED))


def mr_sentences(ctx: Context) -> list[str]:
    """MR's sentences as rt-polarity.pos and .neg hold them (positives first, prepare@mr's order and labels),
    already lower-cased and tokenized by its authors: read as IMDB's sentences are (review_words), not through
    Kim's clean_str (which splits "n't" and drops the final period) as data/prepared/mr/texts.txt is."""
    from dltm.data import read_lines

    encoding = P.load()["prepare"]["mr"]["encoding"]  # prepare.mr.encoding: a param of evaluate_skip_thought
    raw = ctx.root / "data" / "raw" / "mr"
    return [line for name in ("rt-polarity.pos", "rt-polarity.neg") for line in read_lines(raw / name, encoding)]


def cv_accuracy(features, y: np.ndarray, folds: np.ndarray, C: float = 1.0, bow: bool = False  # noqa: N803
                ) -> list[float]:
    """Accuracy of a logistic regression (scikit-learn, L2, ``C``) in each fold of ``folds`` (fold id per row),
    trained on the other folds: Kiros et al.'s protocol for MR (their C was chosen per fold by inner CV).
    ``features``: vectors (n, d), standardised on the training folds; or, with ``bow``, the texts, whose TF-IDF
    uni+bigrams are fitted on the training folds only."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    out = []
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        x_tr, x_te = features[tr], features[te]
        if bow:
            tfidf = TfidfVectorizer(tokenizer=review_words, lowercase=False, token_pattern=None,
                                    ngram_range=(1, 2), sublinear_tf=True).fit(list(x_tr))
            x_tr, x_te = tfidf.transform(list(x_tr)), tfidf.transform(list(x_te))
        else:
            scaler = StandardScaler().fit(x_tr)
            x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
        clf = LogisticRegression(C=C, max_iter=3000).fit(x_tr, y[tr])
        out.append(float(np.mean(clf.predict(x_te) == y[te])))
    return out


def evaluate_skip_thought(ctx: Context) -> dict[str, Any]:
    """MR's sentences as frozen skip-thought vectors, a logistic regression in each of prepare.mr's folds (Kim's
    10); beside it a bag-of-words (TF-IDF unigrams + bigrams) logistic regression on the same folds. Samples:
    the nearest MR sentences of a few MR sentences."""
    mr = ctx.prepared("mr")
    texts = mr_sentences(ctx)
    y, folds = np.load(mr / "labels.npy"), np.load(mr / "folds.npy")
    if len(texts) != len(y):
        raise UserError(f"{mr}: {len(y)} labels for {len(texts)} sentences of data/raw/mr; run `dvc repro "
                        f"prepare@mr`")
    n = ctx.run.cap_eval(len(texts))
    order = np.random.RandomState(ctx.run.seed).permutation(len(texts))[:n]  # both classes in a capped run
    texts, y, folds = [texts[i] for i in order], y[order], folds[order]
    sentences = [review_words(t) for t in texts]
    encoder, info = load_encoder(ctx)
    untrained = random_encoder(encoder, ctx.run.seed)
    vocab, length = info["vocabulary"], info["max_words"]
    vectors = sentence_vectors(encoder, sentences, vocab, length)
    acc = cv_accuracy(vectors, y, folds, ctx.params["lr_c"])
    acc_random = cv_accuracy(sentence_vectors(untrained, sentences, vocab, length), y, folds, ctx.params["lr_c"])
    acc_bow = cv_accuracy(np.asarray(texts, dtype=object), y, folds, C=10.0, bow=True)
    known = float(np.mean([w in vocab for s in sentences for w in s]))
    metrics = {"test_accuracy": float(np.mean(acc)), "test_accuracy_std": float(np.std(acc)),
               "test_accuracy_bow": float(np.mean(acc_bow)), "test_accuracy_random_encoder": float(np.mean(acc_random)),
               "folds": len(acc), "n_examples": n, "mr_words_in_vocabulary": known,
               "encoder_saturation": saturated_share(vectors)}
    metrics.update(review_precision(ctx, untrained, info))
    ctx.eval_dir.mkdir(parents=True, exist_ok=True)
    write_json(ctx.eval_dir / "folds.json",
               {"skip_thought": acc, "bow_tfidf_lr": acc_bow, "random_encoder": acc_random})
    m = min(5, n - 1)
    idx, sims = nearest(vectors[:m], vectors, min(3, n - 1), exclude=np.arange(m))
    lines = [f"# {ctx.name}: the nearest MR sentences by skip-thought vector (cosine)", ""]
    for q in range(m):
        lines += [f"## [{IMDB_CLASSES[y[q]]}] {texts[q]}", ""]
        lines += [f"{r + 1}. {s:.3f} [{IMDB_CLASSES[y[i]]}] {texts[i]}"
                  for r, (i, s) in enumerate(zip(idx[q], sims[q], strict=True))]
        lines.append("")
    (ctx.eval_dir / "samples.md").write_text("\n".join(lines), encoding="utf-8")
    ctx.tracker.log_artifact(ctx.eval_dir / "samples.md", "samples")
    return write_metrics(ctx, metrics, keep=[k for k in metrics if not k.startswith("test_")])


def review_precision(ctx: Context, untrained, info: dict[str, Any]) -> dict[str, Any]:
    """Precision@k of same-label neighbours (k: the task's ``neighbours``) among the search collection's test
    reviews, for its first ``search_queries`` reviews as queries (as ch14_paragraph_vector measures PV-DBOW):
    the trained encoder's review vectors (those the search uses) and the ``untrained`` encoder's."""
    from dltm.retrieval import Collection

    collection = Collection(ctx.model_dir / SEARCH_DIR, "run `dvc repro train_skip_thought`")
    k = neighbours(ctx, len(collection.names))
    queries = np.arange(min(ctx.params["search_queries"], len(collection.names)))
    labels = collection.labels
    random_vectors = text_vectors(untrained, collection.texts(), info["vocabulary"], info["max_words"])
    out = {"search_queries": len(queries), "search_collection": len(labels)}
    for name, vectors in (("", collection.vectors), ("_random_encoder", random_vectors)):
        idx, _ = nearest(vectors[queries], vectors, k, exclude=queries)
        out[f"precision_at_{k}{name}"] = precision_at_k(labels[idx], labels[queries])
    return out


# ------------------------------------------------------------------------------------------------------------
# The report's chapter 14 section
# ------------------------------------------------------------------------------------------------------------

TUTORIAL_ERRORS = {"dbow": 0.106, "dbow+dmm": 0.104}
"""gensim's run_doc2vec_imdb tutorial (gensim 4, 100k reviews incl. the unlabelled 50k, 20 epochs): about
10.6% (PV-DBOW) and 10.4% (DBOW+DMM) error."""


def retrieval_table(root) -> list[str]:
    f = root / "metrics" / "ch14_paragraph_vector.json"
    if not f.is_file():
        return []
    m = read_json(f)
    k = precision_k(m) or "10"
    lines = ["### Chapter 14: paragraph vectors on IMDB (error of a logistic regression; precision@"
             f"{k} of same-label neighbours)", "",
             "| features | error, tutorial protocol | error, inductive | gensim tutorial | "
             f"P@{k}, tutorial | P@{k}, inductive |", "|---|---:|---:|---:|---:|---:|"]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for fs in FEATURE_SETS:
        row = [m.get(f"test_error_{fs}"), m.get(f"test_error_{fs}_inductive")]
        if row == [None, None]:
            continue
        ref = TUTORIAL_ERRORS.get(fs)
        lines.append(f"| {fs} | {fmt(row[0])} | {fmt(row[1])} | {fmt(ref)} | "
                     f"{fmt(m.get(f'precision_at_{k}_{fs}'))} | {fmt(m.get(f'precision_at_{k}_{fs}_inductive'))} |")
    lines += [f"| TF-IDF (cosine) | | | | {fmt(m.get(f'precision_at_{k}_tfidf'))} | |", "",
              "References (accuracy): Le & Mikolov 2014 reported 92.58% (7.42% error), which Mesnil et al. 2014 "
              "could not reproduce with the authors' code once the training data were shuffled (88.73%); "
              "NB-SVM (Wang & Manning 2012) with uni- to trigrams 91.87% (Mesnil et al.'s). The gensim "
              "tutorial also trains on the 50k unlabelled reviews the mirror lacks.", ""]
    return lines


KIROS_MR = {"combine-skip (Kiros et al. 2015, BookCorpus, 2 weeks on a GPU)": 0.765,
            "uni-skip (Kiros et al. 2015)": 0.755, "NB-SVM (Wang & Manning 2012, in Kiros et al.'s table 5)": 0.794,
            "CNN-rand (Kim 2014, table 2)": 0.761}


def skip_thought_table(root) -> list[str]:
    f = root / "metrics" / "ch14_skip_thought.json"
    if not f.is_file():
        return []
    m = read_json(f)
    lines = ["### Chapter 14: skip-thought vectors as MR features (10-fold CV accuracy, logistic regression)", "",
             "| features | MR accuracy |", "|---|---:|",
             f"| skip-thought, ours (IMDB training sentences, CPU-sized) | {m['test_accuracy']:.3f} "
             f"+- {m.get('test_accuracy_std', 0):.3f} |",
             f"| bag of words (TF-IDF uni+bigrams), same folds | {m['test_accuracy_bow']:.3f} |"]
    if "test_accuracy_random_encoder" in m:
        lines.append(f"| the same encoder untrained (random weights, run.seed), same folds | "
                     f"{m['test_accuracy_random_encoder']:.3f} |")
    kim = root / "metrics" / "ch07_kim2014-rand.json"
    if kim.is_file():
        k = read_json(kim)
        value = k.get("test_accuracy_mean", k.get("accuracy_mean"))
        if value is not None:
            lines.append(f"| chapter 7's Kim CNN-rand (`ch07_kim2014-rand`), same folds | {value:.3f} |")
    lines += [f"| {name} | {value:.3f} |" for name, value in KIROS_MR.items()]
    lines += ["", f"{100 * m.get('mr_words_in_vocabulary', 0):.0f}% of MR's tokens are in the skip-thought "
              "vocabulary. Kiros et al.'s encoder has 2,400 units, 620-d words and a 20k vocabulary expanded to "
              "930k words by a linear map from word2vec; see params.yaml for ours."]
    if "encoder_saturation" in m:
        lines += ["", f"{100 * m['encoder_saturation']:.1f}% of the trained encoder's state units are saturated "
                      f"(|h| > {SATURATED}) on MR's sentences; near 100%, every sentence gets one vector."]
    k = precision_k(m)
    if k is not None:
        pv = root / "metrics" / "ch14_paragraph_vector.json"
        pv = read_json(pv) if pv.is_file() else {}
        others = "; ".join(f"{name} {pv[key]:.3f}" for name, key in (
            ("PV-DBOW", f"precision_at_{k}_dbow_inductive"), ("TF-IDF", f"precision_at_{k}_tfidf")) if key in pv)
        compare = f" ({others}, from ch14_paragraph_vector)" if others else ""
        lines += ["", f"The search (`python -m stages.search ch14_skip_thought \"...\"`, a review as the mean "
                      f"vector of its sentences): precision@{k} of same-label neighbours among "
                      f"{m['search_collection']:,} IMDB test reviews, {m['search_queries']:,} of them as queries: "
                      f"{m[f'precision_at_{k}']:.3f}, the untrained encoder "
                      f"{m[f'precision_at_{k}_random_encoder']:.3f}{compare}."]
    lines.append("")
    return lines


REPORT_SECTIONS = (retrieval_table, skip_thought_table)

PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch14_paragraph_vector": P.keys(
        "vector_size", "window", models=P.List(P.Choice(*PV_MODELS)), protocols=P.List(P.Choice(*PROTOCOLS)),
        epochs=P.POSITIVE_INT, min_count=P.POSITIVE_INT, sample=P.Float(0.0), negative=P.Int(0), hs=P.Choice(0, 1),
        dmm_alpha=P.Float(0.0, low_open=True), concat_window=P.POSITIVE_INT, workers=P.POSITIVE_INT,
        infer_epochs=P.Int(1, null=True), neighbours=P.POSITIVE_INT, search_queries=P.POSITIVE_INT),
    "ch14_skip_thought": P.keys(
        "epochs", "batch_size", "optimizer", "learning_rate", "clipnorm", "validation_split",
        max_words=P.POSITIVE_INT, max_triples=P.POSITIVE_INT, embed_dim=P.POSITIVE_INT, hidden=P.POSITIVE_INT,
        lr_c=P.Float(0.0, low_open=True), vocab_size=P.Int(4), unigram_output_bias=P.BOOL,
        neighbours=P.POSITIVE_INT, search_queries=P.POSITIVE_INT),
}

TASKS = (
    Task("ch14_paragraph_vector", "14.2.1 (lines 5838-5868)",
         "Paragraph vectors (gensim Doc2Vec: PV-DBOW, PV-DM mean and concat, and concatenations) as IMDB review "
         "features for a logistic regression; nearest reviews", "imdb", "test_accuracy",
         train_paragraph_vector, evaluate_paragraph_vector,
         Reference(0.894, "gensim's doc2vec-IMDB tutorial, PV-DBOW: ~10.6% error (with 50k more unlabelled "
                   "reviews); Mesnil et al. 2014: 88.73% for paragraph vectors, NB-SVM trigram 91.87%"),
         notes="accuracy of PV-DBOW (tutorial protocol: test text seen unlabelled in training) on the 25,000 test "
               "reviews; the table gives every model, both protocols and precision@k",
         also=("test_error_dbow+dmm", "test_error_dbow_inductive")),
    Task("ch14_skip_thought", "14.2.2 (lines 5870-5948)",
         "Skip-thought vectors (Kiros et al. 2015): a bias-free GRU encoder and two GRU decoders (previous, next "
         "sentence) sharing the output vocabulary, trained on IMDB's sentences; frozen features for MR",
         "imdb", "test_accuracy", train_skip_thought, evaluate_skip_thought,
         Reference(0.765, "Kiros et al. 2015, table 5: combine-skip 76.5 on MR (10-fold CV; BookCorpus, 2 weeks on "
                   "a GPU)"),
         notes="10-fold CV accuracy (prepare.mr's folds) of a logistic regression on the encoder's vectors of MR's "
               "sentences; test_accuracy_bow: TF-IDF uni+bigrams on the same folds; the table gives precision@k "
               "of the search (IMDB test reviews by mean sentence vector)",
         also=("test_accuracy_bow", "test_accuracy_random_encoder")),
)
