"""Chapter 12: the Transformer and BERT (第十二章 预训练、Transformer 与 BERT, book line ~5814).

The book gives this chapter a title and no content. dltm fills it as a reader of the book needs: the
Transformer from its parts and a small BERT pre-trained here, each set beside the book's CNNs and RNNs on the
same data. The layers come from KerasHub (``keras_hub.layers.TransformerEncoder``, ``TokenAndPositionEmbedding``,
``keras_hub.models.BertBackbone``), always built from a configuration, never from a preset (a preset downloads
weights and a vocabulary).

The sections and the task ids that run them:

- 12.1 a Transformer encoder block for text classification, keras-io's "Text classification with Transformer"
  (Nandan 2020: token + position embeddings -> one encoder block, 2 heads, feed-forward 32 -> mean over the
  tokens -> Dense(20) -> output) on IMDB, the data it was written for, and on MR's holdout, beside chapter 7's
  CNNs and chapter 9's LSTM on the same split -> ``ch12_transformer_classifier`` (``--variant imdb|mr``)

Differences from keras-io, each a param: the padding is masked (``masking: true``; keras-io's block attends to
the padding and averages it in: ``masking: false``), the block is KerasHub's (per-head width embed_dim / heads,
keras-io's 32 per head; layer norm epsilon 1e-5, keras-io's 1e-6), and two classes end in chapter 7's
Dense(1, sigmoid) (keras-io: Dense(2, softmax), the same model), so ``stages.predict`` and the MLflow model take
raw text as every chapter-7 classifier does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from dltm import params as P
from dltm.cli import UserError
from dltm.io import read_json
from dltm.layers import BertInputs
from dltm.params import require
from dltm.tasks import Context, Reference, Task
from dltm.training import ClassifierData, FitSettings, evaluate_classifier, load_model, train_classifier
from pipelines.ch07_text_cnn import imdb_data, mr_data, output_layer

# ------------------------------------------------------------------------------------------------------------
# 12.1 A Transformer encoder block as a text classifier (keras-io, Nandan 2020)
# ------------------------------------------------------------------------------------------------------------


def build_transformer_classifier(maxlen: int, vocab_size: int = 20000, embed_dim: int = 32, num_heads: int = 2,
                                 ff_dim: int = 32, hidden_dims: int = 20, dropout: float = 0.1,
                                 masking: bool = True, n_classes: int = 2) -> keras.Model:
    """keras-io's Transformer classifier: ids (batch, <= maxlen) -> token + position embedding (batch, steps,
    embed_dim) -> one encoder block (self-attention with ``num_heads`` heads, feed-forward ``ff_dim``, dropout,
    residuals, layer norm) -> mean over the tokens -> Dropout -> Dense(hidden_dims, relu) -> Dropout -> output
    (batch, 1) sigmoid for two classes, (batch, n_classes) softmax otherwise.

    ``masking``: id 0 is padding; the attention gives it weight 0 and the mean leaves it out, so a text's
    prediction does not depend on how much padding follows it. The input takes any length up to ``maxlen``
    (the position table's size)."""
    inputs = keras.Input((None,), dtype="int32", name="inputs")
    embed = keras_hub_layers().TokenAndPositionEmbedding(vocab_size, maxlen, embed_dim, mask_zero=masking,
                                                          name="embed")
    x = embed(inputs)
    x = keras_hub_layers().TransformerEncoder(ff_dim, num_heads, dropout=dropout, name="transformer_block")(x)
    x = layers.GlobalAveragePooling1D(name="meanpool")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Dense(hidden_dims, activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    return keras.Model(inputs, output_layer(n_classes)(x), name="transformer_classifier")


def keras_hub_layers():
    """``keras_hub.layers``, imported on first use (it imports TensorFlow Text's ops where TensorFlow is)."""
    import keras_hub

    return keras_hub.layers


def attention_weights(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The encoder block's self-attention weights for ids ``x`` (batch, steps): (batch, heads, steps, steps),
    each row summing to 1 over the keys. When the model masks, padded keys get 0 (the rows of padded queries are
    left out of the model's mean, so whatever they hold is never used)."""
    embed = model.get_layer("embed")
    ids = keras.ops.convert_to_tensor(np.asarray(x, dtype="int32"))
    mask = keras.ops.not_equal(ids, 0) if embed.token_embedding.mask_zero else None
    tokens = embed.token_embedding(ids)
    h = tokens + embed.position_embedding(tokens)  # embed(ids), without a Keras mask on it: the mask goes explicitly
    _, scores = model.get_layer("transformer_block")(h, padding_mask=mask, return_attention_scores=True)
    return np.asarray(keras.ops.convert_to_numpy(scores), dtype=np.float32)


def classifier_data(ctx: Context, train: bool = True) -> ClassifierData:
    """IMDB (Keras' imdb input: words under vocab_size, cut or zero-padded in front to maxlen) or MR (the book's
    split, post padding), by ``--variant``."""
    s = ctx.params
    vocab = require(s, "vocab_size", int, ctx.task.id)
    if ctx.variant == "imdb":
        return imdb_data(ctx, vocab, require(s, "maxlen", int, ctx.task.id), train=train)
    return mr_data(ctx, vocab)


def classifier_settings(s: dict[str, Any], where: str) -> dict[str, Any]:
    kinds = {"vocab_size": int, "embed_dim": int, "num_heads": int, "ff_dim": int, "hidden_dims": int,
             "dropout": float, "masking": bool}
    return {k: require(s, k, kind, where) for k, kind in kinds.items()}


def train_transformer_classifier(ctx: Context) -> dict[str, Any]:
    settings = classifier_settings(ctx.params, ctx.task.id)
    return train_classifier(ctx, classifier_data(ctx), lambda d: build_transformer_classifier(
        d.info["doc_length"], n_classes=d.info.get("n_classes", 2), **settings),
        FitSettings.from_params(ctx.params, ctx.task.id))


def evaluate_transformer_classifier(ctx: Context) -> dict[str, Any]:
    """Accuracy and F1 on IMDB's 25,000 test reviews or MR's 1,000 dev sentences, and a heat map of each head's
    attention over the first short test texts."""
    data = classifier_data(ctx, train=False)
    metrics = evaluate_classifier(ctx, data)
    attention_heatmaps(ctx, data, n=int(ctx.params.get("heatmap_examples", 2)))
    return metrics


def attention_heatmaps(ctx: Context, data: ClassifierData, n: int, max_words: int = 24) -> Path | None:
    """plots/<task>/eval/attention.png: every head's weights (query word x key word) over the first ``n`` test
    texts of at most ``max_words`` words."""
    from pipelines.ch10_seq2seq import attention_png

    if n <= 0:
        return None
    model = load_model(ctx)
    index_word = {i: w for w, i in data.tokenizer.word_index.items()}
    found = []
    for row in data.x_test:
        ids = row[row > 0]
        if 3 <= len(ids) <= max_words and len(found) < n:
            weights = attention_weights(model, ids[None, :])[0]
            words = [index_word.get(int(i), "?") for i in ids]
            found += [(words, words, weights[h]) for h in range(weights.shape[0])]
    if not found:
        return None
    png = attention_png(found, ctx.eval_dir / "attention.png",
                        f"{ctx.name}: each head's self-attention (query rows, key columns)")
    ctx.tracker.log_artifact(png, "plots")
    return png


# ------------------------------------------------------------------------------------------------------------
# 12.2 BERT pre-trained here by masked language modelling (Devlin et al. 2019), on the tasks' own text
# ------------------------------------------------------------------------------------------------------------


def build_backbone(vocabulary_size: int, s: dict[str, Any]) -> keras.Model:
    """KerasHub's ``BertBackbone`` from the task's configuration (``num_layers``, ``num_heads``, ``hidden_dim``,
    ``intermediate_dim``, ``dropout``, ``seq_length``): token, position and segment embeddings -> encoder blocks
    -> sequence_output (batch, steps, hidden_dim) and pooled_output (batch, hidden_dim), the [CLS] vector
    through a tanh layer. Built from a config, never a preset (which downloads weights)."""
    import keras_hub

    return keras_hub.models.BertBackbone(vocabulary_size=vocabulary_size, num_layers=s["num_layers"],
                                         num_heads=s["num_heads"], hidden_dim=s["hidden_dim"],
                                         intermediate_dim=s["intermediate_dim"], dropout=s["dropout"],
                                         max_sequence_length=s["seq_length"], name="backbone")


def build_masked_lm(backbone: keras.Model) -> keras.Model:
    """KerasHub's ``BertMaskedLM`` on ``backbone``, without a preprocessor: inputs token_ids, segment_ids,
    padding_mask (batch, steps) and mask_positions (batch, max_predictions) -> logits (batch, max_predictions,
    vocabulary) at the masked positions only (its output layer shares the token embedding's weights).

    Fit it with ``keras.Model.fit(model, ...)``: ``BertMaskedLM.fit`` (KerasHub's pipeline model) would turn
    a ``PyDataset`` into tf.data, which the JAX and PyTorch backends must do without."""
    import keras_hub

    return keras_hub.models.BertMaskedLM(backbone, preprocessor=None, name="bert_masked_lm")


class MaskedBatches(keras.utils.PyDataset):
    """Batches of :func:`dltm.wordpiece.mask_tokens` over ``x`` (n, steps): (inputs {token_ids, segment_ids,
    padding_mask: (batch, steps); mask_positions: (batch, max_predictions)}, mask_ids (batch, max_predictions),
    mask_weights (batch, max_predictions)).

    Each batch's masks come from ``default_rng([seed, epoch, batch])``: new masks every epoch (dynamic masking),
    the same numbers for the same seed. ``fixed`` keeps epoch 0's masks (a validation set scored alike each
    epoch)."""

    def __init__(self, x: np.ndarray, batch_size: int, vocabulary_size: int, seed: int, rate: float,
                 max_predictions: int, fixed: bool = False, shuffle: bool = True):
        super().__init__()
        self.x, self.batch_size, self.vocabulary_size, self.seed = x, batch_size, vocabulary_size, seed
        self.rate, self.max_predictions, self.fixed, self.shuffle = rate, max_predictions, fixed, shuffle and not fixed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        n = len(self.x)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int):
        from dltm.wordpiece import mask_tokens

        rows = self.x[self.order[i * self.batch_size:(i + 1) * self.batch_size]]
        m = mask_tokens(rows, np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, i]),
                        self.vocabulary_size, self.rate, self.max_predictions)
        inputs = {k: m[k] for k in ("token_ids", "segment_ids", "padding_mask", "mask_positions")}
        return inputs, m["mask_ids"], m["mask_weights"]

    def on_epoch_end(self) -> None:
        if not self.fixed:
            self.epoch += 1
            self.order = self._order()


def pretraining_windows(ctx: Context, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(training windows, held-out windows), each (n, seq_length) int32, from the ``sources`` texts: the texts in
    a seeded order, the last ``validation_texts`` of them (at most a tenth) held out whole, then cut into windows
    (:func:`dltm.wordpiece.windows`); the training windows shuffled."""
    from dltm.wordpiece import load_split, windows

    prepared = ctx.prepared("wordpiece")
    texts = [t for split in s["sources"] for t in load_split(prepared, split).texts]
    order = np.random.default_rng(ctx.run.seed).permutation(len(texts))
    n_val_texts = max(1, min(len(texts) // 10, s["validation_texts"]))
    val = windows([texts[k] for k in order[-n_val_texts:]], s["seq_length"], s["max_windows"])
    train = windows([texts[k] for k in order[:-n_val_texts]], s["seq_length"], s["max_windows"])
    return train[np.random.default_rng(ctx.run.seed + 1).permutation(len(train))], val


def mlm_loss():
    """Cross-entropy of the logits at the masked positions, averaged over the chosen ones (the unused slots
    weigh 0)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")


def train_bert_pretrain(ctx: Context) -> dict[str, Any]:
    """Masked language modelling on the WordPiece ids of data/prepared/wordpiece (IMDB's 50,000 reviews and MR's
    sentences; no labels read), AdamW, dynamic masking; MLM loss and accuracy (of the masked pieces) per epoch
    on the training windows and on held-out texts."""
    from dltm import runtime
    from dltm.tracking import curve_names, epoch_logger
    from dltm.training import StopOnNonFiniteLoss, optimizer
    from dltm.wordpiece import read_vocabulary

    s = ctx.params
    vocab = read_vocabulary(ctx.prepared("wordpiece"))
    train, val = pretraining_windows(ctx, s)
    train = train[:ctx.run.cap_train(len(train))]
    val = val[:ctx.run.cap_eval(len(val))]
    strategy = runtime.setup(ctx.run)
    epochs = ctx.run.epochs(s["epochs"])
    with strategy.scope():
        model = build_masked_lm(build_backbone(len(vocab), s))
        model.compile(optimizer=optimizer(s["optimizer"], s["learning_rate"]), loss=mlm_loss(),
                      weighted_metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")])
    batches = MaskedBatches(train, s["batch_size"], len(vocab), ctx.run.seed, s["mask_rate"], s["max_predictions"])
    held_out = MaskedBatches(val, s["batch_size"], len(vocab), ctx.run.seed + 1, s["mask_rate"],
                             s["max_predictions"], fixed=True)
    print(f"{ctx.name}: {model.count_params():,} parameters, {len(train)} windows of {s['seq_length']} pieces "
          f"({len(val)} held out), vocabulary {len(vocab)}, {epochs} epochs", flush=True)
    callbacks = [StopOnNonFiniteLoss(ctx.name, epochs), epoch_logger(ctx.tracker, "val", epochs)]
    start = time.perf_counter()
    hist = keras.Model.fit(model, batches, validation_data=held_out, epochs=epochs, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items()}, "val")
    save_bert(ctx, model, vocab, history, seconds, {"seq_length": s["seq_length"]})
    return {"train_windows": int(len(train)), "validation_windows": int(len(val)), "epochs": len(history["train_loss"]),
            "train_seconds": round(seconds, 3),
            "windows_per_second": round(len(train) * len(history["train_loss"]) / seconds, 1),
            "params": int(model.count_params()), "vocabulary_size": len(vocab)}


def save_bert(ctx: Context, model: keras.Model, vocab: list[str], history: dict[str, list[float]], seconds: float,
              info: dict[str, Any]) -> None:
    """models/ch12_bert_pretrain/ (model.keras: the masked LM, its backbone inside; vocab.txt; bert.json = info;
    summary.txt) in one rename; the curves; the model to MLflow (the keras flavor): dltm.saving.save_trained."""
    from dltm.saving import save_trained

    save_trained(ctx, model, {"bert.json": info}, history, seconds, f"{ctx.task.id}: masked-LM loss and accuracy",
                 texts={"vocab.txt": "\n".join(vocab) + "\n"})


def load_pretrained(folder: Path) -> keras.Model:
    """The masked LM that ``ch12_bert_pretrain`` saved in ``folder``."""
    from dltm.training import MODEL_FILE, load_keras_model

    return load_keras_model(Path(folder) / MODEL_FILE, "run `dvc repro train_bert_pretrain` first", compile=False)


def mlm_scores(model: keras.Model, x: np.ndarray, vocabulary_size: int, seed: int, s: dict[str, Any]
               ) -> dict[str, float]:
    """Masked-LM cross-entropy (nats per masked piece), perplexity (its exp) and accuracy (the top prediction is
    the original piece) on windows ``x`` (n, seq_length), with fixed masks drawn from ``seed`` in batches of
    ``batch_size``: the masks of the validation curve's last epoch (same seed, same batches)."""
    total, correct, count = 0.0, 0, 0
    for inputs, ids, weights in MaskedBatches(x, s["batch_size"], vocabulary_size, seed, s["mask_rate"],
                                              s["max_predictions"], fixed=True):
        logits = np.asarray(keras.ops.convert_to_numpy(model(inputs, training=False)), dtype=np.float64)
        logits -= logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        chosen = weights > 0
        total -= float(np.take_along_axis(logp, ids[..., None], -1)[..., 0][chosen].sum())
        correct += int((logits.argmax(-1) == ids)[chosen].sum())
        count += int(chosen.sum())
    ce = total / max(count, 1)
    return {"mlm_loss": ce, "perplexity": float(np.exp(ce)), "mlm_accuracy": correct / max(count, 1),
            "masked_pieces": count}


def fill_mask_samples(model: keras.Model, vocab: list[str], texts: list[np.ndarray], seq_length: int, k: int = 5
                      ) -> str:
    """A Markdown table: each text with its middle piece replaced by [MASK], and the model's ``k`` likeliest
    pieces for it."""
    from dltm.wordpiece import MASK_ID, bert_inputs

    rows = ["| text (masked piece in brackets) | original | top predictions |", "|---|---|---|"]
    for ids in texts:
        x = bert_inputs([ids], seq_length)
        pos = 1 + min(len(ids), seq_length - 2) // 2
        original = int(x[0, pos])
        x[0, pos] = MASK_ID
        inputs = {"token_ids": x, "segment_ids": np.zeros_like(x), "padding_mask": x != 0,
                  "mask_positions": np.array([[pos]], dtype=np.int32)}
        logits = np.asarray(keras.ops.convert_to_numpy(model(inputs, training=False)))[0, 0]
        top = [vocab[i] for i in np.argsort(-logits)[:k]]
        words = [vocab[int(i)] for i in ids[:seq_length - 2]]
        shown = " ".join(f"[{w}]" if j == pos - 1 else w for j, w in enumerate(words)).replace(" ##", "")
        rows.append(f"| {shown} | {vocab[original]} | {', '.join(top)} |")
    return "\n".join(rows) + "\n"


def evaluate_bert_pretrain(ctx: Context) -> dict[str, Any]:
    """Masked-LM loss, perplexity and accuracy on the held-out texts (masks fixed by the seed), and the model's
    guesses for a masked word of MR sentences (eval/fill_mask.md)."""
    from dltm import runtime
    from dltm.evaluation import write_metrics
    from dltm.wordpiece import load_split, read_vocabulary

    s = ctx.params
    runtime.seed_everything(ctx.run.seed)
    model = load_pretrained(ctx.model_dir)
    vocab = read_vocabulary(ctx.model_dir, "run `dvc repro train_bert_pretrain` first")
    _, val = pretraining_windows(ctx, s)
    val = val[:ctx.run.cap_eval(len(val))]
    metrics = mlm_scores(model, val, len(vocab), ctx.run.seed + 1, s)
    mr = load_split(ctx.prepared("wordpiece"), "mr").texts
    samples = fill_mask_samples(model, vocab, [t for t in mr if 6 <= len(t) <= 20][:12], s["seq_length"])
    path = ctx.eval_dir / "fill_mask.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {ctx.name}: a masked piece of MR sentences, and the model's guesses\n\n{samples}",
                    encoding="utf-8")
    ctx.tracker.log_artifact(path, "samples")
    return write_metrics(ctx, metrics, keep=["masked_pieces"])


# ------------------------------------------------------------------------------------------------------------
# 12.3 BERT fine-tuned on IMDB and MR, against the same encoder from random weights and a bag of word pieces
# ------------------------------------------------------------------------------------------------------------

FINETUNE_DATA = ("imdb", "mr")
INITS = ("pretrained", "random")


def build_bert_classifier(backbone: keras.Model, n_classes: int = 2, dropout: float = 0.1) -> keras.Model:
    """ids (batch, steps) -> :class:`BertInputs` -> ``backbone`` -> pooled [CLS] vector (batch, hidden_dim) ->
    Dropout -> chapter 7's output layer: (batch, 1) sigmoid for two classes (Devlin et al. 2019, figure 4b)."""
    ids = keras.Input((None,), dtype="int32", name="inputs")
    pooled = backbone(BertInputs(name="bert_inputs")(ids))["pooled_output"]
    x = layers.Dropout(dropout, name="dropout")(pooled)
    return keras.Model(ids, output_layer(n_classes)(x), name="bert_classifier")


def finetune_plan(ctx: Context) -> list[tuple[str, str, int | None]]:
    """(dataset, init, fold) of every model the task trains: IMDB once (its test split), MR on each of the first
    ``max_folds`` of prepare@mr's folds (None: all of them, Kim's protocol), each from both inits."""
    s = ctx.params
    n_folds = int(np.load(ctx.prepared("mr") / "folds.npy").max()) + 1 if "mr" in s["datasets"] else 0
    folds = {"imdb": [None], "mr": list(range(min(n_folds, s["max_folds"] or n_folds)))}
    return [(d, init, k) for d in s["datasets"] for init in s["inits"] for k in folds[d]]


def model_name(dataset: str, init: str, fold: int | None) -> str:
    """The sub-model's folder under models/ch12_bert_finetune/: ``imdb-pretrained``, ``mr-random/fold_3``..."""
    return f"{dataset}-{init}" + (f"/fold_{fold}" if fold is not None else "")


def finetune_split(ctx: Context, dataset: str, fold: int | None) -> ClassifierData:
    """IMDB's 25,000 training and 25,000 test reviews, or MR's fold ``fold`` held out (the folds of prepare@mr,
    in chapter 7's fixed order), as ``[CLS] pieces [SEP]`` ids cut to ``seq_length`` pieces (MR: to its longest
    sentence where that is shorter): x (n, length) int32, y (n,) 0/1, the tokenizer a
    :class:`dltm.wordpiece.WordPieceEncoder` that encodes raw text alike."""
    from dltm.data import IMDB_CLASSES, MR_CLASSES
    from dltm.wordpiece import WordPieceEncoder, bert_inputs, info, load_split, read_vocabulary

    s, wp = ctx.params, ctx.prepared("wordpiece")
    vocab = read_vocabulary(wp)
    mr = load_split(wp, "mr") if dataset == "mr" else None
    length = min(s["seq_length"], max(map(len, mr.texts)) + 2) if mr else s["seq_length"]  # MR: its longest
    if mr is None:
        train, test = load_split(wp, "imdb_train"), load_split(wp, "imdb_test")
        x_train, y_train = bert_inputs(train.texts, length), train.labels
        x_test, y_test = bert_inputs(test.texts, length), test.labels
    else:
        folds = np.load(ctx.prepared("mr") / "folds.npy")
        order = np.random.default_rng(0).permutation(len(mr.labels))  # chapter 7's cv_folds order
        x, y, folds = bert_inputs(mr.texts, length)[order], mr.labels[order], folds[order]
        x_train, y_train, x_test, y_test = x[folds != fold], y[folds != fold], x[folds == fold], y[folds == fold]
    encoder = WordPieceEncoder(vocab, info(wp)["lowercase"], length)
    return ClassifierData(x_train, y_train, x_test, y_test, IMDB_CLASSES if dataset == "imdb" else MR_CLASSES,
                          tokenizer=encoder, info={"vocab_size": len(vocab), "doc_length": length, "n_classes": 2,
                                                   "clean": "html_breaks" if dataset == "imdb" else "kim",
                                                   "padding": "post", "dataset": dataset})


def backbone_for(ctx: Context, init: str) -> keras.Model:
    """The pre-trained encoder of ``pretrained`` (models/ch12_bert_pretrain), or the same architecture with fresh
    random weights (``init: random``)."""
    import keras_hub

    folder = ctx.root / ctx.params["pretrained"]
    pretrained = load_pretrained(folder)
    if not hasattr(pretrained, "backbone"):
        raise UserError(f"{folder}: not a masked LM of ch12_bert_pretrain (params.yaml: {ctx.task.id}.pretrained)")
    backbone = pretrained.backbone
    if ctx.params["seq_length"] > backbone.max_sequence_length:
        raise P.ParamError(f"params.yaml: {ctx.task.id}.seq_length {ctx.params['seq_length']} is longer than the "
                           f"pre-trained encoder's positions ({backbone.max_sequence_length})")
    return backbone if init == "pretrained" else keras_hub.models.BertBackbone.from_config(backbone.get_config())


def train_bert_finetune(ctx: Context) -> dict[str, Any]:
    """Every model of :func:`finetune_plan`, each with chapter 7's training loop (its own MLflow child run, its
    model taking raw text), seeded alike so that the two inits differ only in their starting weights."""
    import dataclasses

    from dltm.tracking import Tracker

    fit = FitSettings.from_params(ctx.params, ctx.task.id)
    infos, children = {}, {}
    for dataset, init, fold in finetune_plan(ctx):
        name = model_name(dataset, init, fold)
        data = finetune_split(ctx, dataset, fold)
        tags = {"dataset": dataset, "init": init, **({"fold": str(fold)} if fold is not None else {})}
        with Tracker(ctx.task.experiment, f"{ctx.name}/{name}", tags=tags, parent=ctx.tracker) as child:
            sub = dataclasses.replace(ctx, tracker=child)
            infos[name] = train_classifier(
                sub, data, lambda d, init=init: build_bert_classifier(backbone_for(ctx, init), 2,
                                                                      ctx.params["dropout"]),
                fit, model_dir=ctx.model_dir / name, curves_dir=ctx.train_dir / name.replace("/", "-"),
                save_optimizer=False)
            children[name] = child.run_id
    return {"models": infos, "child_runs": children,
            "train_seconds": round(sum(i["train_seconds"] for i in infos.values()), 3)}


def evaluate_bert_finetune(ctx: Context) -> dict[str, Any]:
    """Test accuracy of every fine-tuned model (IMDB: the 25,000 test reviews; MR: each fold's held-out part),
    mean ± std over MR's folds, and a TF-IDF logistic regression on the same word pieces and splits; accuracy.csv
    (one row a model) and comparison.png."""
    from dltm import runtime
    from dltm.baselines import tfidf_logistic_regression
    from dltm.evaluation import write_metrics
    from dltm.tracking import Tracker
    from dltm.training import predict_labels

    runtime.seed_everything(ctx.run.seed)
    children = read_json(ctx.model_dir / "run.json").get("child_runs", {})
    rows, scores = [], {}
    for dataset, init, fold in finetune_plan(ctx):
        data = finetune_split(ctx, dataset, fold)
        n = ctx.run.cap_eval(len(data.x_test))
        name = model_name(dataset, init, fold)
        _, y_pred = predict_labels(load_model(ctx, name), data.x_test[:n], True, batch_size=64)
        acc = float(np.mean(y_pred == data.y_test[:n]))
        scores.setdefault((dataset, init), []).append(acc)
        rows.append({"dataset": dataset, "model": f"bert_{init}", "fold": fold, "n": n, "accuracy": round(acc, 4)})
        if children.get(name):
            with Tracker(ctx.task.experiment, f"{ctx.name}/{name}", run_id=children[name], parent=ctx.tracker) as c:
                c.log_metrics({"test_accuracy": acc})
        if init == ctx.params["inits"][0]:  # the bag of word pieces, once per split
            docs = [[" ".join(map(str, r[r > 4])) for r in part] for part in (data.x_train, data.x_test[:n])]
            acc = float(np.mean(tfidf_logistic_regression(docs[0], data.y_train, docs[1]) == data.y_test[:n]))
            scores.setdefault((dataset, "tfidf_lr"), []).append(acc)
            rows.append({"dataset": dataset, "model": "tfidf_lr", "fold": fold, "n": n, "accuracy": round(acc, 4)})
    metrics: dict[str, Any] = {}
    for (dataset, model), accs in scores.items():
        key = f"{dataset}_{model if model == 'tfidf_lr' else 'bert_' + model}_accuracy"
        metrics.update({f"{key}_mean": float(np.mean(accs)), f"{key}_std": float(np.std(accs)), f"{key}_n": len(accs)})
    write_comparison(ctx, rows, scores)
    return write_metrics(ctx, metrics, keep=[k for k in metrics if k.endswith("_n")])


def write_comparison(ctx: Context, rows: list[dict[str, Any]], scores: dict[tuple[str, str], list[float]]) -> None:
    """eval/accuracy.csv and eval/comparison.png: each model's test accuracy per dataset, mean ± std over folds."""
    import csv
    import io

    from dltm.evaluation import figure, save_png

    out = io.StringIO()
    w = csv.DictWriter(out, ["dataset", "model", "fold", "n", "accuracy"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    ctx.eval_dir.mkdir(parents=True, exist_ok=True)
    (ctx.eval_dir / "accuracy.csv").write_text(out.getvalue(), encoding="utf-8")
    datasets = sorted({d for d, _ in scores})
    models = [m for m in ("pretrained", "random", "tfidf_lr") if any((d, m) in scores for d in datasets)]
    fig, ax = figure(figsize=(6.5, 3.6))
    width = 0.8 / len(models)
    for j, m in enumerate(models):
        means = [100 * np.mean(scores.get((d, m), [np.nan])) for d in datasets]
        stds = [100 * np.std(scores.get((d, m), [np.nan])) for d in datasets]
        label = {"pretrained": "BERT, pre-trained here", "random": "BERT, random init", "tfidf_lr": "TF-IDF LR"}[m]
        ax.bar(np.arange(len(datasets)) + j * width, means, width, yerr=stds, label=label, capsize=3)
    ax.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2, [d.upper() for d in datasets])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(40, 100)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{ctx.name}: what pre-training on the task's own text buys")
    png = save_png(fig, ctx.eval_dir / "comparison.png")
    ctx.tracker.log_artifact(png, "plots")
    ctx.tracker.log_artifact(ctx.eval_dir / "accuracy.csv", "plots")


# ------------------------------------------------------------------------------------------------------------
# 12.4 The Transformer encoder-decoder (Vaswani et al. 2017) on chapter 10's English -> Chinese pairs
# ------------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dltm")
class NoTokens(layers.Layer):
    """Ids (batch, steps) -> (batch, 0) int32: the empty prefix a Transformer decoder starts from."""

    def call(self, ids):
        return keras.ops.cast(ids[:, :0], "int32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 0)


def build_transformer_translation(num_encoder_tokens: int, num_decoder_tokens: int, max_source: int,
                                  max_target: int, embed_dim: int = 256, intermediate_dim: int = 2048,
                                  num_heads: int = 8, num_layers: int = 1, dropout: float = 0.5) -> keras.Model:
    """keras-io's English-Spanish Transformer (Nandan 2021; Vaswani et al. 2017) with ``num_layers`` blocks a
    side: [source ids (batch, S), target ids shifted right (batch, T)] -> token + position embeddings ->
    encoder blocks (self-attention over the source, padding masked) | decoder blocks (causal self-attention,
    then cross-attention to the encoder's output) -> Dropout -> Dense softmax (batch, T, num_decoder_tokens + 1).
    Ids run from 1 to num_*_tokens (0 is padding), as chapter 10's :func:`dltm.translation.token_index` gives.
    Layer names are what :func:`inference_models` reads."""
    hub = keras_hub_layers()
    encoder_inputs = keras.Input((None,), dtype="int32", name="encoder_inputs")
    decoder_inputs = keras.Input((None,), dtype="int32", name="decoder_inputs")
    h = hub.TokenAndPositionEmbedding(num_encoder_tokens + 1, max_source, embed_dim, mask_zero=True,
                                      name="source_embedding")(encoder_inputs)
    for i in range(num_layers):
        h = hub.TransformerEncoder(intermediate_dim, num_heads, name=f"encoder_{i}")(h)
    x = hub.TokenAndPositionEmbedding(num_decoder_tokens + 1, max_target, embed_dim, mask_zero=True,
                                      name="target_embedding")(decoder_inputs)
    for i in range(num_layers):
        x = hub.TransformerDecoder(intermediate_dim, num_heads, name=f"decoder_{i}")(x, encoder_sequence=h)
    x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(num_decoder_tokens + 1, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model([encoder_inputs, decoder_inputs], out, name="transformer_translation")


def inference_models(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The trained model as :class:`dltm.translation.Translator` steps it (one recurrent state, two memories).

    encoder: source ids -> [empty prefix (batch, 0), encoder output (batch, S, d), source ids];
    decoder: [last token (batch, 1), prefix (batch, t), encoder output, source ids] -> [next-token probabilities
    (batch, t + 1, V), the prefix with the last token (batch, t + 1)]. Each step re-reads the whole prefix (no
    key/value cache: titles and sentences here are short)."""
    from pipelines.ch10_seq2seq import NotPadding

    n_layers = sum(1 for layer in model.layers if layer.name.startswith("encoder_") and layer.name[8:].isdigit())
    source = keras.Input((None,), dtype="int32", name="source")
    h = model.get_layer("source_embedding")(source)
    for i in range(n_layers):
        h = model.get_layer(f"encoder_{i}")(h)
    encoder = keras.Model(source, [NoTokens(name="no_tokens")(source), h, source])
    last = keras.Input((1,), dtype="int32", name="last")
    prefix = keras.Input((None,), dtype="int32", name="prefix")
    memory = keras.Input((None, h.shape[-1]), name="encoder_output")
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    tokens = layers.Concatenate(axis=1, name="prefix_and_last")([prefix, last])
    x = model.get_layer("target_embedding")(tokens)
    source_mask = NotPadding(name="source_mask")(source_ids)
    for i in range(n_layers):
        x = model.get_layer(f"decoder_{i}")(x, encoder_sequence=memory, encoder_padding_mask=source_mask)
    probs = model.get_layer("output")(x)
    return encoder, keras.Model([last, prefix, memory, source_ids], [probs, tokens])


def train_transformer_translation(ctx: Context) -> dict[str, Any]:
    """Chapter 10's teacher forcing, data and held-out sentences (``pipelines.ch10_seq2seq.train_translator``),
    with the Transformer."""
    from pipelines.ch10_seq2seq import train_translator

    s = ctx.params
    return train_translator(ctx, "transformer", lambda n_in, n_out, max_source, max_target:
                            build_transformer_translation(n_in, n_out, max_source, max_target, s["embed_dim"],
                                                          s["intermediate_dim"], s["num_heads"], s["num_layers"],
                                                          s["dropout"]), (1, 2), __name__)


def evaluate_transformer_translation(ctx: Context) -> dict[str, Any]:
    """Chapter 10's evaluation: sacreBLEU and chrF of greedy and beam-search translations of the held-out
    sentences, the book's examples, samples.md."""
    from pipelines.ch10_seq2seq import evaluate_seq2seq

    return evaluate_seq2seq(ctx)


# ------------------------------------------------------------------------------------------------------------
# The report's chapter-12 table
# ------------------------------------------------------------------------------------------------------------


def _accuracy(root: Path, name: str, key: str = "test_accuracy") -> str:
    path = root / "metrics" / f"{name}.json"
    m = read_json(path) if path.is_file() else {}
    value = m.get(key, m.get(key.removeprefix("test_")))  # results recorded before metrics were named test_*
    return f"{100 * value:.1f}" if isinstance(value, (int, float)) else "—"


def transformer_table(root: Path) -> list[str]:
    """The Transformer classifier beside chapter 7's CNNs and chapter 9's LSTM on the same test split."""
    rows = [("IMDB (25,000 test reviews)", "ch12_transformer_classifier-imdb", "ch07_cnn1d_imdb", "—",
             "keras-io text_classification_with_transformer: 87.45"),
            ("MR (the book's 1,000-sentence holdout)", "ch12_transformer_classifier-mr", "ch07_kim_cnn",
             "ch09_lstm_sentiment", "Kim 2014 CNN-rand (10-fold CV): 76.1")]
    lines = ["### Chapter 12: a Transformer encoder block as a classifier (test accuracy, %)", "",
             "| data | Transformer (12.1) | CNN (chapter 7) | LSTM (chapter 9) | published |",
             "|---|---|---|---|---|"]
    for label, ours, cnn, lstm, published in rows:
        lines.append(f"| {label} | {_accuracy(root, ours)} | {_accuracy(root, cnn)} | "
                     f"{_accuracy(root, lstm) if lstm != '—' else '—'} | {published} |")
    lines += ["", "CNN: ch07_cnn1d_imdb (Keras' imdb_cnn) on IMDB, ch07_kim_cnn (the book's Kim CNN) on MR; "
              "LSTM: ch09_lstm_sentiment. Each row is one seed on the same test texts.", ""]
    return lines


def _mean_std(m: dict[str, Any], key: str) -> str:
    if f"test_{key}_mean" not in m:
        return "—"
    n = m.get(f"{key}_n", 1)
    std = f" ± {100 * m[f'test_{key}_std']:.1f}" if n > 1 else ""
    return f"{100 * m[f'test_{key}_mean']:.1f}{std}"


def verdict(m: dict[str, Any]) -> list[str]:
    """One sentence per dataset: what pre-training bought over random init, in points of accuracy."""
    out = []
    for dataset in FINETUNE_DATA:
        pre, rand = (m.get(f"test_{dataset}_bert_{init}_accuracy_mean") for init in INITS)
        if isinstance(pre, (int, float)) and isinstance(rand, (int, float)):
            gain = 100 * (pre - rand)
            out.append(f"{dataset.upper()} {'+' if gain > 0 else '−'}{abs(gain):.1f}")
    if not out:
        return []
    return [f"What pre-training bought over random init, in points of accuracy: {', '.join(out)}, at params.yaml's "
            "CPU sizes (`dvc exp run -S ch12_bert_pretrain.max_windows=null -S ch12_bert_pretrain.epochs=10` "
            "pre-trains on all of each review, longer).", ""]


def bert_table(root: Path) -> list[str]:
    """The pre-trained BERT beside the same encoder from random weights, TF-IDF LR and the earlier chapters."""
    path = root / "metrics" / "ch12_bert_finetune.json"
    pre = root / "metrics" / "ch12_bert_pretrain.json"
    if not path.is_file() and not pre.is_file():
        return []
    m = read_json(path) if path.is_file() else {}
    lines = ["### Chapter 12: BERT pre-trained here, fine-tuned (test accuracy, %)", ""]
    if pre.is_file():
        p = read_json(pre)
        lines += [f"Pre-training (masked LM, held-out texts): accuracy of the masked pieces "
                  f"{100 * p.get('test_mlm_accuracy', float('nan')):.1f}%, perplexity "
                  f"{p.get('test_perplexity', float('nan')):.1f}.", ""]
    folds = m.get("mr_bert_pretrained_accuracy_n", m.get("mr_tfidf_lr_accuracy_n"))
    lines += ["| data | BERT, pre-trained here | BERT, random init | TF-IDF LR | earlier chapters | published |",
              "|---|---|---|---|---|---|",
              f"| IMDB (25,000 test reviews) | {_mean_std(m, 'imdb_bert_pretrained_accuracy')} | "
              f"{_mean_std(m, 'imdb_bert_random_accuracy')} | {_mean_std(m, 'imdb_tfidf_lr_accuracy')} | "
              f"Transformer {_accuracy(root, 'ch12_transformer_classifier-imdb')}, 1-D CNN "
              f"{_accuracy(root, 'ch07_cnn1d_imdb')} | keras-io end-to-end MLM: 84.46 |",
              f"| MR ({folds or '—'} of prepare@mr's folds) | {_mean_std(m, 'mr_bert_pretrained_accuracy')} | "
              f"{_mean_std(m, 'mr_bert_random_accuracy')} | {_mean_std(m, 'mr_tfidf_lr_accuracy')} | Kim CNN-rand "
              f"(10 folds) {_accuracy(root, 'ch07_kim2014-rand', 'test_accuracy_mean')} | Kim 2014 CNN-rand: 76.1 |",
              "", *verdict(m),
              "KerasHub's pre-training guide: SST-2 85.5 fine-tuned against a bag of words 80.4. TF-IDF LR reads "
              "the same word pieces of every training text (the first seq_length; `run.max_train_examples` caps "
              "BERT only). The vocabulary and the pre-training read the tasks' own text without labels, test "
              "texts included (transductive, as keras-io's example; Krishna et al. 2022): "
              "`prepare.wordpiece.sources` and `ch12_bert_pretrain.sources` set which.", ""]
    return lines


def translation_table(root: Path) -> list[str]:
    """The Transformer encoder-decoder (12.4) beside chapter 10's RNN encoder-decoders on the same held-out
    sentences (greedy and beam search, sacreBLEU tok zh and chrF)."""
    rows = [("Transformer (12.4)", "ch12_transformer_translation"), ("LSTM + attention (10)", "ch10_seq2seq_attention"),
            ("LSTM, words (10)", "ch10_seq2seq_word"), ("GRU, Cho et al. (10)", "ch10_gru_cho"),
            ("LSTM, characters (10, the book's)", "ch10_seq2seq_char")]
    lines = ["### Chapter 12: the Transformer encoder-decoder on chapter 10's English -> Chinese sentences", "",
             "| model | task | BLEU greedy | chrF greedy | BLEU beam | epochs (best) |", "|---|---|---|---|---|---|"]
    for label, task in rows:
        path, run = root / "metrics" / f"{task}.json", root / "models" / task / "run.json"
        m = read_json(path) if path.is_file() else {}
        r = read_json(run) if run.is_file() else {}

        def f(key: str, m: dict = m) -> str:
            return f"{m[key]:.1f}" if isinstance(m.get(key), (int, float)) else "—"

        lines.append(f"| {label} | {task} | {f('test_bleu')} | {f('test_chrf')} | {f('test_bleu_beam')} | "
                     f"{r.get('epochs', '—')} ({r.get('best_epoch', '—')}) |")
    lines += ["", "The same held-out sentences of prepare@cmn for every row. Context, not like-for-like (zh->en on "
              "Tatoeba, a course's models): Transformer 23.4 BLEU; keras-io's eng-spa example trains the same "
              "Transformer.", ""]
    return lines


REPORT_SECTIONS = (transformer_table, bert_table, translation_table)

_FIT = ("optimizer", "learning_rate", "epochs", "batch_size", "validation_split", "early_stopping_patience")
_BERT = {"num_layers": P.POSITIVE_INT, "num_heads": P.POSITIVE_INT, "hidden_dim": P.POSITIVE_INT,
         "intermediate_dim": P.POSITIVE_INT, "dropout": P.FRACTION, "seq_length": P.Int(3)}
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch12_transformer_classifier": P.keys("vocab_size", "dropout", *_FIT, maxlen=P.POSITIVE_INT,
                                          embed_dim=P.POSITIVE_INT, num_heads=P.POSITIVE_INT, ff_dim=P.POSITIVE_INT,
                                          hidden_dims=P.POSITIVE_INT, masking=P.BOOL, heatmap_examples=P.Int(0)),
    "ch12_bert_pretrain": P.keys("epochs", "batch_size", "optimizer", "learning_rate", **_BERT,
                                 sources=P.List(P.Choice("imdb_train", "imdb_test", "mr")),
                                 max_windows=P.Int(1, null=True), validation_texts=P.POSITIVE_INT,
                                 mask_rate=P.Float(0.0, 1.0, low_open=True, high_open=True),
                                 max_predictions=P.POSITIVE_INT),
    "ch12_bert_finetune": P.keys("dropout", *_FIT, pretrained=P.STR, seq_length=P.Int(3),
                                 datasets=P.List(P.Choice(*FINETUNE_DATA)), inits=P.List(P.Choice(*INITS)),
                                 max_folds=P.Int(1, null=True)),
    "ch12_transformer_translation": P.keys(
        "batch_size", "epochs", "validation_split", "optimizer", "dropout", num_samples=P.Int(1, null=True),
        patience=P.Int(0), beam_width=P.POSITIVE_INT, beam_examples=P.Int(0), length_alpha=P.Float(0.0),
        source_vocab=P.Int(2, null=True), target_vocab=P.Int(4, null=True), embed_dim=P.POSITIVE_INT,
        intermediate_dim=P.POSITIVE_INT, num_heads=P.POSITIVE_INT, num_layers=P.POSITIVE_INT),
}

TASKS = (
    Task("ch12_transformer_classifier", "12.1 (the book: a title only, line ~5814)",
         "keras-io's Transformer block classifier (embed 32, 2 heads, FF 32) on IMDB and on MR's holdout",
         None, "test_accuracy", train_transformer_classifier, evaluate_transformer_classifier,
         Reference(None, "keras-io text_classification_with_transformer (Nandan 2020): 0.8745 on IMDB",
                   by_variant={"imdb": 0.8745}),
         notes="--variant imdb: 20,000 words, 200 tokens, the 25,000 test reviews; --variant mr: the book's MR "
               "holdout, beside chapter 7's Kim CNN and chapter 9's LSTM", variants=("imdb", "mr")),
    Task("ch12_bert_pretrain", "12.2 (the book: a title only)",
         "a small BERT pre-trained here by masked language modelling on IMDB's and MR's text (WordPiece learned "
         "here, dynamic masking)", "imdb", "test_mlm_accuracy", train_bert_pretrain, evaluate_bert_pretrain,
         Reference(None, "not comparable (other data, model size): BERT-base's MLM accuracy about 0.7 on "
                   "Wikipedia; keras-io's end-to-end MLM example pre-trains on IMDB the same way"),
         notes="masked pieces of held-out texts (masks fixed by the seed); perplexity = exp(MLM loss)",
         also=("test_mlm_loss", "test_perplexity")),
    Task("ch12_bert_finetune", "12.3 (the book: a title only)",
         "the pre-trained BERT fine-tuned on IMDB and MR (10-fold CV), beside the same encoder from random "
         "weights and a TF-IDF logistic regression", "imdb", "test_imdb_bert_pretrained_accuracy_mean",
         train_bert_finetune, evaluate_bert_finetune,
         Reference(0.8446, "keras-io end-to-end MLM example: 0.8446 on IMDB after fine-tuning; KerasHub's "
                   "pre-training guide: SST-2 0.855 against a bag of words 0.804"),
         notes="IMDB: the 25,000 test reviews; MR: prepare@mr's folds (mean ± std); pre-trained on the tasks' own "
               "text (Krishna et al. 2022)",
         also=("test_imdb_bert_random_accuracy_mean", "test_imdb_tfidf_lr_accuracy_mean",
               "test_mr_bert_pretrained_accuracy_mean", "test_mr_bert_random_accuracy_mean",
               "test_mr_tfidf_lr_accuracy_mean")),
    Task("ch12_transformer_translation", "12.4 (the book: a title only)",
         "keras-io's Transformer encoder-decoder on chapter 10's English -> Chinese pairs and held-out sentences",
         "cmn", "test_bleu", train_transformer_translation, evaluate_transformer_translation,
         Reference(None, "context (other direction and split): a course's Tatoeba zh->en Transformer 23.4 BLEU; "
                   "beside chapter 10's RNN encoder-decoders on the same held-out sentences"),
         notes="sacreBLEU (tok zh) and chrF on prepare@cmn's held-out sentences, as chapter 10",
         also=("test_chrf", "test_bleu_beam")),
)
