"""Chapter 14: deep learning in information retrieval (第十四章 深度学习在信息检索中的应用, book lines 5820-5948).

- 14.2.1 paragraph vectors (Le & Mikolov 2014): PV-DM (mean and concatenated context), PV-DBOW and their
         concatenations as IMDB review features for a logistic regression; the nearest reviews of a review
         (lines 5838-5868)                                                           -> ``ch14_paragraph_vector``

The book gives the theory without code or data. The paragraph-vector task follows gensim's doc2vec-IMDB
tutorial (``run_doc2vec_imdb.py``): its three models and settings, its tokenization (gensim 3.x's
``normalize_text``: :func:`dltm.retrieval.review_words`), a logistic regression on the training reviews'
vectors, error on the 25,000 test reviews. Two protocols:

- ``tutorial``: one Doc2Vec model trained on the train and test reviews' text together (no labels), as the
  tutorial and Le & Mikolov do, so every test review has a trained vector;
- ``inductive``: trained on the training reviews only; each test review's vector inferred (``infer_vector``)
  afterwards, as for a document never seen: the protocol a deployed model faces.

The tutorial also trains on IMDB's 50,000 unlabelled reviews, which the mirror lacks (MANIFEST section 7): our
vectors see half its text. Mesnil et al. (2014, table 1) reran Le & Mikolov's code: 88.73% accuracy, not the
paper's 92.58% (7.42% error), which Mikolov later traced to the test reviews' order (the paragraph vectors of
the training set were learned in label-sorted order); NB-SVM with uni+bigrams reaches 91.87%.

Search (``python -m stages.search ch14_paragraph_vector "..."``): the query's words get an inferred PV-DBOW
vector, and the nearest test reviews by cosine are listed with their labels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dltm import params as P
from dltm.data import IMDB_CLASSES, read_imdb_split
from dltm.evaluation import figure, line_png, save_png, write_metrics
from dltm.io import read_json, write_json
from dltm.params import ParamError
from dltm.retrieval import (
    SEARCH_DIR,
    ParagraphVectorSearch,
    nearest,
    precision_at_k,
    repeatable_inference,
    review_words,
    snippet,
    stable_hash,
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
    return {**common, **own, "seed": seed, "hashfxn": stable_hash}


def imdb_reviews(ctx: Context) -> dict[str, Any]:
    """IMDB's train and test reviews (the raw tree: data/raw/imdb), each split in a seeded order (run.seed) and
    capped by run.max_train_examples / run.max_eval_examples: texts, labels (0 neg, 1 pos) and file names."""
    raw = ctx.root / "data" / "raw" / "imdb"
    out: dict[str, Any] = {}
    for i, split in enumerate(("train", "test")):
        texts, labels = read_imdb_split(raw, split)
        names = [f"{split}/{IMDB_CLASSES[y]}/{k}" for k, y in enumerate(labels)]  # k: position in its folder
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


def load_vectors(ctx: Context, protocol: str, features: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    parts = [np.load(ctx.model_dir / protocol / f"{m}.npz") for m in features]
    return np.hstack([z["train"] for z in parts]), np.hstack([z["test"] for z in parts])


def evaluate_paragraph_vector(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    reviews = read_json(ctx.model_dir / REVIEWS_FILE)
    y_train, y_test = np.asarray(reviews["train"]["labels"]), np.asarray(reviews["test"]["labels"])
    models = _models(ctx)
    k = p["neighbours"]
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

    reviews_text = imdb_reviews(ctx)
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
    k = next((key.split("_")[2] for key in m if key.startswith("precision_at_")), "10")
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
              "could not reproduce with the authors' code (88.73%); NB-SVM with uni- and bigrams 91.87% "
              "(Wang & Manning 2012, as Mesnil et al. report it). The gensim tutorial also trains on the 50k "
              "unlabelled reviews the mirror lacks.", ""]
    return lines


REPORT_SECTIONS = (retrieval_table,)

PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch14_paragraph_vector": P.keys(
        "vector_size", "window", models=P.List(P.Choice(*PV_MODELS)), protocols=P.List(P.Choice(*PROTOCOLS)),
        epochs=P.POSITIVE_INT, min_count=P.POSITIVE_INT, sample=P.Float(0.0), negative=P.Int(0), hs=P.Choice(0, 1),
        dmm_alpha=P.Float(0.0, low_open=True), concat_window=P.POSITIVE_INT, workers=P.POSITIVE_INT,
        infer_epochs=P.Int(1, null=True), neighbours=P.POSITIVE_INT, search_queries=P.POSITIVE_INT),
}

TASKS = (
    Task("ch14_paragraph_vector", "14.2.1 (lines 5838-5868)",
         "Paragraph vectors (gensim Doc2Vec: PV-DBOW, PV-DM mean and concat, and concatenations) as IMDB review "
         "features for a logistic regression; nearest reviews", "imdb", "test_accuracy",
         train_paragraph_vector, evaluate_paragraph_vector,
         Reference(0.894, "gensim's doc2vec-IMDB tutorial, PV-DBOW: ~10.6% error (with 50k more unlabelled "
                   "reviews); Mesnil et al. 2014: 88.73% for paragraph vectors, NB-SVM 91.87%"),
         notes="accuracy of PV-DBOW (tutorial protocol: test text seen unlabelled in training) on the 25,000 test "
               "reviews; the table gives every model, both protocols and precision@k",
         also=("test_error_dbow+dmm", "test_error_dbow_inductive")),
)
