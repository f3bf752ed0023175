"""Chapter 9: LSTM sentiment classification (第九章 基于 LSTM 的文本情感分析, book lines 4624-4917).

The book's sections, in order, and the task ids that run them:

- 9.1-9.2 the deeplearning.net LSTM: Embedding -> LSTM (every step) -> Dropout -> mean over time ->
          Dense(100) -> Dense(1, sigmoid), on chapter 7's MR split (lines 4652-4717) -> ``ch09_lstm_sentiment``
- 9.3     a custom RNN cell, the book's MinimalRNNCell, inside keras.layers.RNN (lines 4719-4838)
          -> ``ch09_custom_cell`` (the cell in the 9.2 model on MR; the book's own 1,312-parameter demo is
          checked in the metrics and tests)
- 9.4     a peephole LSTM cell, bidirectional, in the 9.2 model (lines 4840-4917) -> ``ch09_peephole_sentiment``
- beyond: the book says the peephole model scores lower but prints no numbers. ``ch09_rnn_comparison`` trains
          LSTM, GRU, BiLSTM, the peephole BiLSTM and chapter 7's CNNs on the same split, several seeds each,
          and reports mean ± std and the training speed.

Names follow the book's code (lstm-sentiment-keras.py, peephole-sentiment.py): ``inputs``, ``embed``,
``lstm``, ``dropout``, ``meanpool``, ``hidden``, ``output``; ``hidden_size`` for both the embedding and the
RNN width. The book's Lambda(mean) is dltm.rnn.MeanOverTime (same numbers, and it serialises): without a
mask it averages every step, padding included, as the book; ``masking: true`` (a fix) puts
``mask_zero=True`` on the embedding, and the RNN and the mean then skip the padding (a text with no word in
the vocabulary then averages to zeros, never 0/0). The cells and the mean are in dltm/rnn.py.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import keras
import numpy as np
from keras import layers

from dltm import params as P
from dltm.evaluation import write_metrics
from dltm.io import read_json, write_text
from dltm.params import ParamError, require
from dltm.rnn import PEEPHOLES, MeanOverTime, MinimalRNNCell, PeepholeLSTMCell
from dltm.tasks import Context, Reference, Task
from dltm.tracking import Tracker
from dltm.training import FitSettings, evaluate_classifier, load_model, predict_labels, train_classifier
from pipelines.ch07_text_cnn import build_cnn1d, build_kim_cnn, mr_data

RNNS = ("lstm", "gru", "bilstm", "peephole", "minimal")


def build_rnn_sentiment(doc_length: int, vocab_size: int = 10000, hidden_size: int = 100, rnn: str = "lstm",
                        dropout: float = 0.5, masking: bool = False, peephole: str = "full",
                        unused_bias: bool = True) -> keras.Model:
    """Figure 9.2 with the RNN chosen by ``rnn``: lstm (9.2), gru, bilstm, peephole (9.4:
    Bidirectional(RNN(PeepholeLSTMCell))) or minimal (9.3: RNN(MinimalRNNCell))."""
    inputs = keras.Input(shape=(doc_length,), dtype="int32", name="inputs")
    embed = layers.Embedding(vocab_size, hidden_size, mask_zero=masking, name="embed")
    embed_input = embed(inputs)
    if rnn == "lstm":
        lstm = layers.LSTM(hidden_size, return_sequences=True, name="lstm")(embed_input)
    elif rnn == "gru":
        lstm = layers.GRU(hidden_size, return_sequences=True, name="gru")(embed_input)
    elif rnn == "bilstm":
        lstm = layers.Bidirectional(layers.LSTM(hidden_size, return_sequences=True), name="bilstm")(embed_input)
    elif rnn == "peephole":
        cell = PeepholeLSTMCell(hidden_size, peephole=peephole)
        lstm = layers.Bidirectional(layers.RNN(cell, return_sequences=True), name="peephole_bilstm")(embed_input)
    elif rnn == "minimal":
        cell = MinimalRNNCell(hidden_size, unused_bias=unused_bias)
        lstm = layers.RNN(cell, return_sequences=True, name="minimal_rnn")(embed_input)
    else:
        raise ValueError(f"rnn must be one of {', '.join(RNNS)}, got {rnn!r}")
    drop = layers.Dropout(dropout, name="dropout")(lstm)
    meanpool = MeanOverTime(name="meanpool")(drop)  # the book: Lambda(lambda x: mean(x, axis=1))
    hidden = layers.Dense(100, name="hidden")(meanpool)
    output = layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(hidden)
    return keras.Model(inputs=inputs, outputs=output, name=f"{rnn}_sentiment")


def book_demo_params() -> int:
    """Book 9.3's demo: RNN(MinimalRNNCell(32)) on Input((None, 5)); the book's summary shows 1,312."""
    x = keras.Input((None, 5))
    return keras.Model(x, layers.RNN(MinimalRNNCell(32, unused_bias=True))(x)).count_params()


def rnn_settings(p: dict[str, Any], where: str) -> dict[str, Any]:
    s = {"vocab_size": require(p, "vocab_size", int, where), "hidden_size": require(p, "hidden_size", int, where),
         "dropout": require(p, "dropout", float, where), "masking": require(p, "masking", bool, where)}
    for key in ("vocab_size", "hidden_size"):
        if s[key] < 1:
            raise ParamError(f"params.yaml: {where}.{key} must be >= 1, got {s[key]}")
    if not 0.0 <= s["dropout"] < 1.0:
        raise ParamError(f"params.yaml: {where}.dropout must be in [0, 1), got {s['dropout']}")
    if "peephole" in p:
        s["peephole"] = require(p, "peephole", str, where)
        if s["peephole"] not in PEEPHOLES:
            raise ParamError(f"params.yaml: {where}.peephole must be one of {', '.join(PEEPHOLES)}, "
                             f"got {s['peephole']!r}")
    if "unused_bias" in p:
        s["unused_bias"] = require(p, "unused_bias", bool, where)
    return s


def train_rnn_on_mr(ctx: Context, rnn: str) -> dict[str, Any]:
    s = rnn_settings(ctx.params, ctx.task.id)
    return train_classifier(ctx, mr_data(ctx, s["vocab_size"]),
                            lambda d: build_rnn_sentiment(d.info["doc_length"], rnn=rnn, **s),
                            FitSettings.from_params(ctx.params, ctx.task.id))


def evaluate_on_mr(ctx: Context) -> dict[str, Any]:
    return evaluate_classifier(ctx, mr_data(ctx, require(ctx.params, "vocab_size", int, ctx.task.id)))


# 9.2 (lines 4652-4717)


def train_lstm_sentiment(ctx: Context) -> dict[str, Any]:
    return train_rnn_on_mr(ctx, "lstm")


# 9.3 (lines 4719-4838): the MinimalRNNCell has no activation: h_t = x_t W + h_{t-1} U.


def train_custom_cell(ctx: Context) -> dict[str, Any]:
    return train_rnn_on_mr(ctx, "minimal")


def evaluate_custom_cell(ctx: Context) -> dict[str, Any]:
    return evaluate_classifier(ctx, mr_data(ctx, require(ctx.params, "vocab_size", int, ctx.task.id)),
                               extra=lambda model: {"book_demo_params": book_demo_params()})


# 9.4 (lines 4840-4917)


def train_peephole_sentiment(ctx: Context) -> dict[str, Any]:
    return train_rnn_on_mr(ctx, "peephole")


# ------------------------------------------------------------------------------------------------------------
# Beyond the book: every model of chapters 7 and 9 on the same MR split, several seeds each (MLflow child
# runs <task>/<model>_s<seed>). Speed: the fit's wall time per epoch (first-epoch tracing included) and
# training examples per second; the peephole cell runs as a Python cell in keras.layers.RNN, the LSTM on
# Keras' fused kernel (cuDNN on a GPU), so their ratio is the price of writing a cell yourself.
# ------------------------------------------------------------------------------------------------------------

COMPARED = ("lstm", "gru", "bilstm", "peephole", "kim_cnn", "cnn1d")


def comparison_plan(ctx: Context) -> tuple[list[str], list[int]]:
    where = ctx.task.id
    models = require(ctx.params, "models", list, where)
    seeds = require(ctx.params, "seeds", list, where)
    if not models or len(set(models)) != len(models) or not set(models) <= set(COMPARED):
        raise ParamError(f"params.yaml: {where}.models must be a non-empty list without repeats of "
                         f"{', '.join(COMPARED)}, got {models!r}")
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(x, int) and not isinstance(x, bool)
                                                              for x in seeds):
        raise ParamError(f"params.yaml: {where}.seeds must be a non-empty list of distinct integers, got {seeds!r}")
    return [str(m) for m in models], [int(x) for x in seeds]


def comparison_builder(model: str, s: dict[str, Any]):
    if model == "kim_cnn":  # chapter 7's Kim CNN at the book's code settings (10 filters of 3, 4, 5; 50-d)
        return lambda d: build_kim_cnn(d.info["doc_length"], vocab_size=s["vocab_size"], conv="1d")
    if model == "cnn1d":  # chapter 7.3.4's imdb_cnn model
        return lambda d: build_cnn1d(d.info["doc_length"], vocab_size=s["vocab_size"])
    return lambda d: build_rnn_sentiment(d.info["doc_length"], rnn=model, **s)


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def train_rnn_comparison(ctx: Context) -> dict[str, Any]:
    where = ctx.task.id
    models, seeds = comparison_plan(ctx)
    s = rnn_settings(ctx.params, where)
    fit = FitSettings.from_params(ctx.params, where)
    data = mr_data(ctx, s["vocab_size"])
    runs, children, rows = {}, {}, []
    for model in models:
        for seed in seeds:
            name = f"{model}_s{seed}"
            with Tracker(ctx.task.experiment, f"{where}/{name}", tags={"model": model, "seed": str(seed)},
                         parent=ctx.tracker) as child:
                sub = dataclasses.replace(ctx, tracker=child)
                info = train_classifier(sub, data, comparison_builder(model, s), fit, validate=False,
                                        model_dir=ctx.model_dir / name, curves_dir=ctx.train_dir / name, seed=seed)
                children[name] = child.run_id
            runs[name] = info
            rows.append({"model": model, "seed": seed, "params": info["params"], "epochs": info["epochs"],
                         "train_seconds": info["train_seconds"],
                         "seconds_per_epoch": round(info["train_seconds"] / info["epochs"], 4),
                         "examples_per_second": round(info["train_examples"] * info["epochs"]
                                                      / info["train_seconds"], 1)})
    write_text(ctx.train_dir / "timing.csv", csv_text(rows))
    ctx.tracker.log_artifact(ctx.train_dir / "timing.csv", "plots")
    first = next(iter(runs.values()))
    return {"train_examples": first["train_examples"], "epochs": first["epochs"], "batch_size": fit.batch_size,
            "train_seconds": round(sum(r["train_seconds"] for r in runs.values()), 3), "models": models,
            "seeds": seeds, "runs": rows, "child_runs": children}


def evaluate_rnn_comparison(ctx: Context) -> dict[str, Any]:
    where = ctx.task.id
    models, seeds = comparison_plan(ctx)
    data = mr_data(ctx, require(ctx.params, "vocab_size", int, where))
    n = ctx.run.cap_eval(len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    run_info = read_json(ctx.model_dir / "run.json")
    children = run_info.get("child_runs", {})
    timing = {(r["model"], r["seed"]): r for r in run_info.get("runs", [])}
    metrics: dict[str, Any] = {}
    rows = []
    for model in models:
        accs = []
        for seed in seeds:
            name = f"{model}_s{seed}"
            _, y_pred = predict_labels(load_model(ctx, name), x, binary=True)
            acc = float(np.mean(y_pred == y))
            accs.append(acc)
            t = timing.get((model, seed), {})
            rows.append({"model": model, "seed": seed, "accuracy": round(acc, 6),
                         "seconds_per_epoch": t.get("seconds_per_epoch"),
                         "examples_per_second": t.get("examples_per_second"), "params": t.get("params")})
            if children.get(name):
                with Tracker(ctx.task.experiment, f"{where}/{name}", run_id=children[name],
                             parent=ctx.tracker) as child:
                    child.log_metrics({"test_accuracy": acc})
        a = np.asarray(accs)
        metrics[f"{model}_accuracy_mean"] = float(a.mean())
        metrics[f"{model}_accuracy_std"] = float(a.std())
        metrics[f"{model}_accuracy_n"] = len(a)
        spe = [timing[(model, sd)]["seconds_per_epoch"] for sd in seeds if (model, sd) in timing]
        eps = [timing[(model, sd)]["examples_per_second"] for sd in seeds if (model, sd) in timing]
        if spe:
            metrics[f"{model}_seconds_per_epoch"] = float(np.mean(spe))
            metrics[f"{model}_examples_per_second"] = float(np.mean(eps))
    for plain in ("bilstm", "lstm"):  # the same bidirectional shape first, for a like-for-like speed ratio
        if f"{plain}_examples_per_second" in metrics and "peephole_examples_per_second" in metrics:
            metrics[f"peephole_speed_vs_{plain}"] = (metrics["peephole_examples_per_second"]
                                                     / metrics[f"{plain}_examples_per_second"])
    metrics["n_examples"] = int(n)
    write_text(ctx.eval_dir / "comparison.csv", csv_text(rows))
    ctx.tracker.log_artifact(ctx.eval_dir / "comparison.csv", "plots")
    # accuracies are on the test split (test_lstm_accuracy_mean ...); speeds and counts are kept as they are
    return write_metrics(ctx, metrics, keep=[k for k in metrics if "_accuracy_" not in k])


_LSTM = ("vocab_size", "hidden_size", "dropout", "masking", "optimizer", "learning_rate", "epochs", "batch_size")
_HOLDOUT = ("validation_split", "early_stopping_patience")
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch09_lstm_sentiment": P.keys(*_LSTM, *_HOLDOUT),
    "ch09_custom_cell": P.keys(*_LSTM, *_HOLDOUT, unused_bias=P.BOOL),
    "ch09_peephole_sentiment": P.keys(*_LSTM, *_HOLDOUT, "peephole"),
    "ch09_rnn_comparison": P.keys(*_LSTM, "peephole", models=P.List(P.Choice(*COMPARED)), seeds=P.List(P.Int())),
}

TASKS = (
    Task("ch09_lstm_sentiment", "9.2 (lines 4652-4717)", "Embedding -> LSTM -> mean over time -> Dense on MR",
         "mr", "test_accuracy", train_lstm_sentiment, evaluate_on_mr,
         Reference(None, "the book prints no number; for scale, chapter 7's CNN-rand on MR: 0.761 (Kim 2014)"),
         notes="the book's holdout (seed-10 permutation, last 1000 as dev)"),
    Task("ch09_custom_cell", "9.3 (lines 4719-4838)", "The book's MinimalRNNCell in keras.layers.RNN, 9.2's model "
         "on MR", "mr", "test_accuracy", train_custom_cell, evaluate_custom_cell,
         Reference(None, "the book only builds the cell (RNN(MinimalRNNCell(32)) on 5 features: 1,312 "
                   "parameters, checked as book_demo_params)"),
         notes="the book's holdout; the cell is linear (no activation), as the book's",
         also=("book_demo_params",)),
    Task("ch09_peephole_sentiment", "9.4 (lines 4840-4917)", "Bidirectional peephole LSTM (the book's cell) on MR",
         "mr", "test_accuracy", train_peephole_sentiment, evaluate_on_mr,
         Reference(None, "the book: lower than the plain LSTM of 9.2, no number given"),
         notes="the book's holdout; peephole: full (the book's matrix) or diagonal (Gers-Schmidhuber)"),
    Task("ch09_rnn_comparison", "9.2-9.4 (lines 4652-4917), 7.3", "LSTM, GRU, BiLSTM, peephole BiLSTM and the "
         "chapter-7 CNNs on the same MR split, several seeds", "mr", "test_lstm_accuracy",
         train_rnn_comparison, evaluate_rnn_comparison,
         Reference(None, "the book claims the peephole model scores lower (no numbers); Kim 2014 CNN-rand 0.761"),
         notes="dev accuracy mean ± std over the seeds; speeds in plots/<task>/eval/comparison.csv",
         also=("test_gru_accuracy", "test_bilstm_accuracy", "test_peephole_accuracy", "test_kim_cnn_accuracy",
               "test_cnn1d_accuracy",
               "peephole_speed_vs_bilstm")),
)
