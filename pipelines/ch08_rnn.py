"""Chapter 8: recurrent neural networks (第八章 循环神经网络, book lines 3926-4622).

The book's sections, in order, and what implements them:

- 8.2.2 the RNN layer's inputs, outputs and states (lines 4090-4167): the stacked GRU/SimpleRNN model
        (``build_stacked_rnn``, 361,866 parameters), an encoder passing its LSTM states to a decoder
        (``build_encoder_decoder``, 258,698), cross-batch statefulness (``stateful`` in ``ch08_ptb_lm``)
- 8.2.3 a character-level language model, min-char-rnn in Keras (lines 4169-4260) -> ``ch08_char_rnn``
- 8.5   a word-level LSTM language model on PTB after Zaremba et al. (lines 4469-4586) -> ``ch08_ptb_lm``;
        8.5.3 TimeDistributed(Dense(8)) on (10, 16) (``build_time_distributed``, 136 parameters)
- 8.5.5 bidirectional RNNs (lines 4588-4618): BiLSTM(64) -> BiLSTM(32) -> Dense(10) on (5, 10)
        (``build_bidirectional``, 80,266 parameters) and the merge modes

Names follow the book (``hidden_size``, ``seq_length``, ``char_to_ix``/``ix_to_char``, ``num_steps``,
layers ``input``/``hidden``/``rnn``/``output``). The book's corpus for 8.2.3 (t1.txt, a Yelp review) is
unpublished: the task reads tinyshakespeare (TASKS.md's dataset ``charlm``). Beyond the book: sampling text
with a temperature (``python -m stages.generate``), bits per character on a held-out tail, perplexity on PTB's
valid and test splits every epoch, Zaremba's settings.
"""

from __future__ import annotations

import collections
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from dltm import batches, runtime
from dltm import params as P
from dltm.cli import MissingOutputError, UserError
from dltm.evaluation import write_metrics
from dltm.io import read_json, write_text
from dltm.params import ParamError, require
from dltm.rnn import summed_over_steps_crossentropy
from dltm.saving import save_trained
from dltm.tasks import Context, Reference, Task
from dltm.tracking import Tracker, curve_names, epoch_logger
from dltm.training import (
    MODEL_FILE,
    StopOnNonFiniteLoss,
    load_keras_model,
    load_model,
    optimizer,
)

# ------------------------------------------------------------------------------------------------------------
# 8.2.2 and 8.5 model-building examples (checked by their parameter counts in tests/test_ch08.py)
# ------------------------------------------------------------------------------------------------------------


def build_stacked_rnn() -> keras.Model:
    """Lines 4100-4116: Embedding(1000, 64) -> GRU(256, return_sequences) -> SimpleRNN(128) -> Dense(10)."""
    model = keras.Sequential(name="stacked_rnn")
    model.add(keras.Input((None,), dtype="int32"))
    model.add(layers.Embedding(input_dim=1000, output_dim=64))
    model.add(layers.GRU(256, return_sequences=True))
    model.add(layers.SimpleRNN(128))
    model.add(layers.Dense(10))
    return model


def build_encoder_decoder(encoder_vocab: int = 1000, decoder_vocab: int = 2000) -> keras.Model:
    """Lines 4128-4163: the encoder LSTM's last states [state_h, state_c] are the decoder LSTM's initial state."""
    encoder_input = layers.Input(shape=(None,), name="encoder_input")
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)
    output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_embedded)
    encoder_state = [state_h, state_c]
    decoder_input = layers.Input(shape=(None,), name="decoder_input")
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)
    decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded, initial_state=encoder_state)
    output = layers.Dense(10)(decoder_output)
    return keras.Model([encoder_input, decoder_input], output, name="encoder_decoder")


def build_time_distributed() -> keras.Model:
    """8.5.3: TimeDistributed(Dense(8)) on (10, 16): (None, 10, 16) -> (None, 10, 8)."""
    model = keras.Sequential(name="time_distributed")
    model.add(keras.Input((10, 16)))
    model.add(layers.TimeDistributed(layers.Dense(8)))
    return model


def build_bidirectional(merge_mode: str = "concat") -> keras.Model:
    """8.5.5: Bidirectional(LSTM(64, return_sequences)) -> Bidirectional(LSTM(32)) -> Dense(10) on (5, 10)."""
    model = keras.Sequential(name="bidirectional")
    model.add(keras.Input((5, 10)))
    model.add(layers.Bidirectional(layers.LSTM(64, return_sequences=True), merge_mode=merge_mode))
    model.add(layers.Bidirectional(layers.LSTM(32), merge_mode=merge_mode))
    model.add(layers.Dense(10))
    return model


# ------------------------------------------------------------------------------------------------------------
# Shared by both language models: fit, then save the model folder atomically, the curves and the run's logs.
# ------------------------------------------------------------------------------------------------------------


def fit_and_save(ctx: Context, model: keras.Model, train_ds, epochs: int, callbacks: list, files: dict[str, Any],
                 n_train: int, unit: str) -> dict[str, Any]:
    """``model.fit`` without Keras validation (the callbacks add their own), then models/<task>/ in one rename
    with ``files`` ({name: JSON-able object}) beside the model (:func:`dltm.saving.save_trained`). ``n_train``
    counts ``unit``s per epoch."""
    print(f"{ctx.name}: {model.count_params():,} parameters, {n_train} training {unit} per epoch, {epochs} epochs "
          f"(model summary: models/{ctx.name}/summary.txt)", flush=True)
    start = time.perf_counter()
    # the callbacks' val_* are measured on the language model's own validation split (PTB's valid)
    hist = model.fit(train_ds, epochs=epochs, verbose=0, shuffle=False,
                     callbacks=[StopOnNonFiniteLoss(ctx.name, epochs), *callbacks,
                                epoch_logger(ctx.tracker, "val", epochs)])
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items() if k != "learning_rate"},
                          "val")
    if "learning_rate" in hist.history:
        history["learning_rate"] = [float(v) for v in hist.history["learning_rate"]]
    epochs_run = len(history["train_loss"])
    rate = n_train * epochs_run / seconds
    # MLflow Models: the keras flavor, and a pyfunc that continues seed texts (no run: no MLflow)
    save_trained(ctx, model, files, history, seconds, f"{ctx.task.id}: training history",
                 metrics={f"train_{unit}_per_second": rate})
    return {"train_examples": int(n_train), "epochs": int(epochs_run), "train_seconds": round(seconds, 3),
            f"{unit}_per_second": round(rate, 1), "params": int(model.count_params())}


def positive(p: dict[str, Any], key: str, where: str, kind: type = int) -> Any:
    value = require(p, key, kind, where)
    if value <= 0:
        raise ParamError(f"params.yaml: {where}.{key} must be > 0, got {value}")
    return value


def fraction(p: dict[str, Any], key: str, where: str, low_open: bool = False) -> float:
    value = require(p, key, float, where)
    if not (0.0 < value < 1.0 if low_open else 0.0 <= value < 1.0):
        raise ParamError(f"params.yaml: {where}.{key} must be in {'(0' if low_open else '[0'}, 1), got {value}")
    return value


# ------------------------------------------------------------------------------------------------------------
# 8.2.3 The character-level language model (lines 4169-4260)
#
# The book: every window of seq_length = 25 one-hot characters (stride 1) -> Dense(500) -> SimpleRNN(500, relu,
# return_sequences) -> Dense(V, softmax), the targets the same window shifted by one; Adam(0.1), sparse CE,
# batch 100, 20 epochs. Fixes: the character set is sorted (the book's list(set(data)) order changes per run);
# Adam's 0.1 diverges with a 500-unit relu RNN (tests/test_ch08.py shows it), so learning_rate defaults to
# 0.001 and 0.1 is a param away. Beyond the book: the last test_fraction of the text is held out for bits per
# character; text is sampled with a temperature (stages/generate.py).
# ------------------------------------------------------------------------------------------------------------

CHAR_CORPORA = {"charlm": "input.txt", "nietzsche": "nietzsche.txt"}
"""Registry ids (dltm.datasets) -> the file under data/raw/<id>/: ``charlm`` is TASKS.md's id for tinyshakespeare."""
VOCAB_FILE = "vocab.json"


def read_char_corpus(root: Path, dataset: str, where: str = "ch08_char_rnn") -> str:
    if dataset not in CHAR_CORPORA:
        raise ParamError(f"params.yaml: {where}.dataset must be one of {', '.join(CHAR_CORPORA)}, got {dataset!r}")
    path = root / "data" / "raw" / dataset / CHAR_CORPORA[dataset]
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{dataset}`")
    return path.read_text(encoding="utf-8")


def char_vocab(text: str) -> list[str]:
    """The sorted character set: ix_to_char. The book's list(set(data)) differs between runs."""
    return sorted(set(text))


def encode_chars(text: str, vocab: list[str]) -> np.ndarray:
    char_to_ix = {ch: i for i, ch in enumerate(vocab)}
    missing = sorted(set(text) - set(char_to_ix))
    if missing:
        raise ValueError(f"characters not in the model's vocabulary: {''.join(missing)!r}")
    return np.fromiter((char_to_ix[ch] for ch in text), dtype=np.int32, count=len(text))


def char_windows(idx_data: np.ndarray, seq_length: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """x = idx_data[p:p+seq_length], y = idx_data[p+1:p+seq_length+1] for p = 0, stride, 2 stride, ...

    (The book's loop stops at p + seq_length < len - 2 - seq_length, dropping the last windows for no reason.)
    """
    n = (len(idx_data) - seq_length - 1) // stride + 1 if len(idx_data) > seq_length else 0
    if n <= 0:
        return np.zeros((0, seq_length), np.int32), np.zeros((0, seq_length), np.int32)
    starts = np.arange(n) * stride
    w = idx_data[starts[:, None] + np.arange(seq_length + 1)]
    return w[:, :-1], w[:, 1:]


def one_hot_dataset(x: np.ndarray, y: np.ndarray, vocab_size: int, batch_size: int,
                    shuffle_seed: int | None = None):
    """Integer windows, one-hot encoded per batch (to_categorical of the whole text would not fit in memory):
    float32 (batch, seq_length, vocab_size) inputs, integer targets (:func:`dltm.batches.dataset`)."""
    def tf_one_hot(a, b):
        import tensorflow as tf

        return tf.one_hot(a, vocab_size), b

    def np_one_hot(a, b):
        return np.eye(vocab_size, dtype=np.float32)[a], b

    return batches.dataset(x, y, batch_size, shuffle_seed, transform=(tf_one_hot, np_one_hot))


def build_char_rnn(vocab_size: int, hidden_size: int = 500, seq_length: int | None = None) -> keras.Model:
    """Figure 8.8. ``seq_length=None`` (the default) accepts any length, so the model can also generate."""
    model = keras.Sequential(name="min_char_rnn")
    model.add(keras.Input(shape=(seq_length, vocab_size), name="input"))
    model.add(layers.Dense(hidden_size, name="hidden"))
    model.add(layers.SimpleRNN(hidden_size, activation="relu", return_sequences=True, name="rnn"))
    model.add(layers.Dense(vocab_size, activation="softmax", dtype="float32", name="output"))
    return model


def sample(model: keras.Model, vocab: list[str], seed_text: str, n_chars: int, temperature: float = 1.0,
           seed: int = 0, window: int = 25) -> str:
    """``n_chars`` characters after ``seed_text``: each drawn from the model's next-character distribution over
    the last ``window`` characters, sharpened (temperature < 1) or flattened (> 1); temperature 0 is greedy.
    The same ``seed`` gives the same text.

    Raises ValueError for an empty ``seed_text``, one with characters outside ``vocab`` (named), a temperature
    that is negative, infinite or NaN, a negative ``n_chars`` or ``seed``, and a model whose output is not a
    probability distribution (NaN: a diverged model).
    """
    if not seed_text:
        raise ValueError("seed_text is empty: give at least one character")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if n_chars < 0 or seed < 0:
        raise ValueError(f"n_chars and seed must be >= 0, got {n_chars} and {seed}")
    rng = np.random.default_rng(seed)
    ids = list(encode_chars(seed_text, vocab))
    eye = np.eye(len(vocab), dtype=np.float32)
    out = []
    for _ in range(n_chars):
        x = eye[ids[-window:]][None]
        p = ops.convert_to_numpy(model(x, training=False)).astype(np.float64)[0, -1]
        if not np.isfinite(p).all():
            raise ValueError("the model's next-character probabilities are not numbers (a diverged model): retrain")
        if temperature == 0:
            k = int(np.argmax(p))
        else:
            # p ** (1 / T), renormalised, computed from the largest log-probability down: the top character gets
            # exp(0) = 1 whatever the temperature, so a tiny T cannot give 0 / 0
            logp = np.log(np.maximum(p, 1e-12))
            q = np.exp((logp - logp.max()) / temperature)
            k = int(rng.choice(len(vocab), p=q / q.sum()))
        ids.append(k)
        out.append(vocab[k])
    return "".join(out)


class SampleLogger(keras.callbacks.Callback):
    """Every ``every`` epochs, a generated sample into the MLflow run (samples/epoch_NNN.txt)."""

    def __init__(self, tracker: Tracker, vocab: list[str], seed_text: str, every: int, n_chars: int,
                 temperature: float, seed: int, window: int):
        super().__init__()
        self.tracker, self.vocab, self.seed_text, self.every = tracker, vocab, seed_text, every
        self.n_chars, self.temperature, self.seed, self.window = n_chars, temperature, seed, window
        self.samples: dict[int, str] = {}

    def on_epoch_end(self, epoch, logs=None):
        if self.every and (epoch + 1) % self.every == 0:
            text = sample(self.model, self.vocab, self.seed_text, self.n_chars, self.temperature, self.seed,
                          self.window)
            self.samples[epoch + 1] = text
            self.tracker.log_text(f"{self.seed_text}|{text}", f"samples/epoch_{epoch + 1:03d}.txt")


def char_settings(p: dict[str, Any], where: str = "ch08_char_rnn") -> dict[str, Any]:
    s = {
        "dataset": require(p, "dataset", str, where),
        "hidden_size": positive(p, "hidden_size", where),
        "seq_length": positive(p, "seq_length", where),
        "stride": positive(p, "stride", where),
        "test_fraction": fraction(p, "test_fraction", where, low_open=True),
        "optimizer": require(p, "optimizer", str, where),
        "learning_rate": positive(p, "learning_rate", where, float),
        "epochs": positive(p, "epochs", where),
        "batch_size": positive(p, "batch_size", where),
        "sample_every": require(p, "sample_every", int, where),
        "sample_chars": positive(p, "sample_chars", where),
        "temperature": require(p, "temperature", float, where),
        "seed_text": p.get("seed_text"),
    }
    if s["temperature"] < 0:
        raise ParamError(f"params.yaml: {where}.temperature must be >= 0, got {s['temperature']}")
    if s["seed_text"] is not None and not (isinstance(s["seed_text"], str) and s["seed_text"]):
        raise ParamError(f"params.yaml: {where}.seed_text should be null or a non-empty string")
    return s


def char_split(text: str, test_fraction: float) -> tuple[str, str]:
    """The first 1 - test_fraction of the text for training, the tail held out."""
    cut = len(text) - int(round(len(text) * test_fraction))
    return text[:cut], text[cut:]


def train_char_rnn(ctx: Context) -> dict[str, Any]:
    s = char_settings(ctx.params, ctx.task.id)
    data = read_char_corpus(ctx.root, s["dataset"], ctx.task.id)
    chars = char_vocab(data)
    vocab_size = len(chars)
    train_text, test_text = char_split(data, s["test_fraction"])
    print(f"data has {len(data)} characters, {vocab_size} unique; {len(train_text)} for training, "
          f"{len(test_text)} held out")
    x_train, y_train = char_windows(encode_chars(train_text, chars), s["seq_length"], s["stride"])
    n = ctx.run.cap_train(len(x_train))
    if n == 0:
        raise ParamError(f"params.yaml: {ctx.task.id}.seq_length={s['seq_length']} leaves no training window in "
                         f"{len(train_text)} characters")
    x_train, y_train = x_train[:n], y_train[:n]
    seed_text = s["seed_text"] or test_text[: s["seq_length"]] or train_text[: s["seq_length"]]
    encode_chars(seed_text, chars)  # fails early, naming the characters the corpus lacks
    strategy = runtime.setup(ctx.run)
    with strategy.scope():
        model = build_char_rnn(vocab_size, s["hidden_size"])
        model.compile(optimizer=optimizer(s["optimizer"], s["learning_rate"]),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train_ds = one_hot_dataset(x_train, y_train, vocab_size, s["batch_size"], shuffle_seed=ctx.run.seed)
    sampler = SampleLogger(ctx.tracker, chars, seed_text, s["sample_every"], s["sample_chars"], s["temperature"],
                           ctx.run.seed, s["seq_length"])
    info = fit_and_save(ctx, model, train_ds, ctx.run.epochs(s["epochs"]), [sampler],
                        {VOCAB_FILE: {"ix_to_char": chars, "seq_length": s["seq_length"], "seed_text": seed_text,
                                      "dataset": s["dataset"], "train_characters": len(train_text),
                                      "test_characters": len(test_text)}},
                        n, "windows")
    if sampler.samples:
        write_text(ctx.train_dir / "samples.txt", "".join(f"epoch {e} (temperature {s['temperature']}): "
                                                          f"{seed_text}|{t}\n\n" for e, t in sampler.samples.items()))
        ctx.tracker.log_artifact(ctx.train_dir / "samples.txt", "samples")
    return {**info, "vocab_size": vocab_size}


def load_char_model(model_dir: Path, hint: str | None = None) -> tuple[keras.Model, dict[str, Any]]:
    """The character-level LM in ``model_dir`` and its vocab.json (``ix_to_char``, ``seq_length``, ...).

    Raises MissingOutputError for a missing file and UserError for a folder that holds another kind of model,
    with ``hint`` (default: ``dvc repro train@<folder name>``) naming what writes it.
    """
    hint = hint or f"run `dvc repro train@{model_dir.name}` first"
    for name in (MODEL_FILE, VOCAB_FILE):
        if not (model_dir / name).is_file():
            raise MissingOutputError(f"{model_dir / name}: missing; {hint}")
    info = read_json(model_dir / VOCAB_FILE)
    if not (isinstance(info, dict) and "ix_to_char" in info and "seq_length" in info):
        raise UserError(f"{model_dir}: not a character-level language model (its {VOCAB_FILE} has no ix_to_char)")
    return load_keras_model(model_dir / MODEL_FILE, hint), info


def char_scores(model: keras.Model, x: np.ndarray, y: np.ndarray, vocab_size: int, batch_size: int = 256
                ) -> tuple[float, float]:
    """(mean cross-entropy in nats, accuracy) over every predicted character of the windows."""
    total, correct, count = 0.0, 0, 0
    for xb, yb in one_hot_dataset(x, y, vocab_size, batch_size):
        p = np.asarray(model.predict_on_batch(xb), dtype=np.float64)
        t = np.asarray(yb)
        picked = np.take_along_axis(p, t[..., None], axis=-1)[..., 0]
        total += float(-np.log(np.maximum(picked, 1e-12)).sum())
        correct += int((p.argmax(-1) == t).sum())
        count += t.size
    return total / count, correct / count


def evaluate_char_rnn(ctx: Context) -> dict[str, Any]:
    s = char_settings(ctx.params, ctx.task.id)
    runtime.seed_everything(ctx.run.seed)
    model, info = load_char_model(ctx.model_dir)
    chars, seq_length = info["ix_to_char"], info["seq_length"]
    data = read_char_corpus(ctx.root, s["dataset"], ctx.task.id)
    train_text, test_text = char_split(data, s["test_fraction"])
    # held-out windows side by side (stride seq_length), each read from a zero state as in training
    x, y = char_windows(encode_chars(test_text, chars), seq_length, seq_length)
    n = ctx.run.cap_eval(len(x))
    if n == 0:
        raise ParamError(f"params.yaml: {ctx.task.id}.test_fraction leaves {len(test_text)} held-out characters, "
                         f"fewer than seq_length + 1 = {seq_length + 1}")
    ce, acc = char_scores(model, x[:n], y[:n], len(chars))
    metrics = {"bits_per_character": ce / math.log(2), "cross_entropy": ce, "accuracy": acc,
               "uniform_bits_per_character": math.log2(len(chars)), "vocab_size": len(chars),
               "test_characters": int(n * seq_length)}
    # the book's check (lines 4236-4260): a training window in, the argmax characters out, shifted by one
    xt, _ = char_windows(encode_chars(train_text[: 3 + 2 * seq_length], chars), seq_length)
    lines = []
    if len(xt) > 2:
        res = ops.convert_to_numpy(model(np.eye(len(chars), dtype=np.float32)[xt[2]][None], training=False))[0]
        lines += ["The book's check: training window i=2 in, the most likely next characters out:",
                  "".join(chars[i] for i in xt[2]), "".join(chars[i] for i in res.argmax(-1)), ""]
    seed_text = info["seed_text"]
    for t in (0.0, s["temperature"], 1.0):
        for k in range(2 if t else 1):
            text = sample(model, chars, seed_text, s["sample_chars"], t, ctx.run.seed + k, seq_length)
            lines += [f"temperature {t}, seed {ctx.run.seed + k}:", f"{seed_text}|{text}", ""]
    write_text(ctx.eval_dir / "samples.txt", "\n".join(lines))
    ctx.tracker.log_artifact(ctx.eval_dir / "samples.txt", "samples")
    # measured on the held-out tail of the corpus
    return write_metrics(ctx, metrics, keep=["uniform_bits_per_character", "vocab_size"])


# ------------------------------------------------------------------------------------------------------------
# 8.5 The word-level LSTM language model on PTB (lines 4469-4586)
#
# The book (lstm-word-lm.py): Embedding(10000, 500) -> LSTM(500) -> LSTM(500) -> Dropout(0.5) ->
# TimeDistributed(Dense(10000)) -> softmax, adam, num_steps 30, batch 20, 50 epochs, one-hot targets fed by a
# Python generator (fit_generator). Here: Zaremba's reader (vocabulary from ptb.train.txt by frequency, <eos>
# at every line end), his batching (the token stream cut into batch_size rows, windows of num_steps, targets
# one token later) through tf.data (a PyDataset on JAX and PyTorch), integer targets and logits
# (SparseCategoricalCrossentropy(from_logits)), perplexity exp(mean cross-entropy) on valid and test after every
# epoch. ``stateful: true`` carries the LSTM states from one window to the next (truncated BPTT, Zaremba's
# training), reset at each epoch.
# ------------------------------------------------------------------------------------------------------------

PTB_SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"


def ptb_words(path: Path) -> list[str]:
    """Zaremba's reader: the words of each line, then <eos>."""
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words += line.split() + [EOS]
    return words


def build_vocab(words: list[str], vocab_size: int) -> list[str]:
    """Words by falling frequency, ties alphabetical (Zaremba's _build_vocab), at most ``vocab_size``, with <unk>
    kept: PTB's training text has exactly 10,000 types including <eos> and <unk>."""
    counts = collections.Counter(words)
    ordered = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:vocab_size]
    if UNK not in ordered:
        ordered = ordered[: vocab_size - 1] + [UNK]
    return ordered


def to_ids(words: list[str], vocab: list[str]) -> np.ndarray:
    word_to_id = {w: i for i, w in enumerate(vocab)}
    unk = word_to_id[UNK]
    return np.fromiter((word_to_id.get(w, unk) for w in words), dtype=np.int32, count=len(words))


def zaremba_batches(ids: np.ndarray, batch_size: int, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Zaremba's ptb_producer: the stream as ``batch_size`` rows; batch i is columns [i num_steps, (i+1)
    num_steps) of every row, its targets one column later. Row r of batch i+1 continues row r of batch i, which
    is what a stateful RNN needs. Returns x, y of shape (epoch_size, batch_size, num_steps)."""
    batch_len = len(ids) // batch_size
    data = ids[: batch_size * batch_len].reshape(batch_size, batch_len)
    epoch_size = (batch_len - 1) // num_steps
    if epoch_size <= 0:
        return (np.zeros((0, batch_size, num_steps), np.int32),) * 2
    x = np.stack([data[:, i * num_steps:(i + 1) * num_steps] for i in range(epoch_size)])
    y = np.stack([data[:, i * num_steps + 1:(i + 1) * num_steps + 1] for i in range(epoch_size)])
    return x, y


def batches_dataset(x: np.ndarray, y: np.ndarray):
    """One element per prepared batch, in order (never shuffled: batch i+1 continues batch i)."""
    return batches.dataset(x, y, batch_size=0, prebatched=True)


def build_ptb_lm(vocabulary: int = 10000, hidden_size: int = 500, num_layers: int = 2, dropout: float = 0.5,
                 num_steps: int | None = None, batch_size: int | None = None, stateful: bool = False,
                 embed_size: int | None = None, dropout_between_layers: bool = False,
                 init_scale: float | None = None) -> keras.Model:
    """Figure 8.25: Embedding -> LSTM x num_layers -> Dropout -> Dense(vocabulary) logits (the book's
    TimeDistributed(Dense) and softmax: a Dense applies per step in Keras 3; the softmax is in the loss).

    ``dropout_between_layers``: Zaremba's placement, dropout on every non-recurrent connection (after the
    embedding and after each LSTM) instead of the book's one Dropout before the output. ``init_scale``: every
    weight uniform in [-init_scale, init_scale] (Zaremba: 0.1 small, 0.05 medium, 0.04 large). The LSTMs keep
    Keras' defaults (tanh, sigmoid, no recurrent dropout, not unrolled, with bias), so they run on cuDNN.
    """
    def uniform():
        return keras.initializers.RandomUniform(-init_scale, init_scale)

    init = {} if init_scale is None else {"kernel_initializer": uniform(), "recurrent_initializer": uniform(),
                                          "bias_initializer": uniform()}
    embed_init = {} if init_scale is None else {"embeddings_initializer": uniform()}
    model = keras.Sequential(name="ptb_lm")
    if stateful:  # Keras 3: a stateful RNN needs the batch size in the input shape
        model.add(keras.Input(batch_shape=(batch_size, num_steps), dtype="int32", name="inputs"))
    else:
        model.add(keras.Input(shape=(num_steps,), dtype="int32", name="inputs"))
    model.add(layers.Embedding(vocabulary, embed_size or hidden_size, name="embedding", **embed_init))
    if dropout_between_layers and dropout:
        model.add(layers.Dropout(dropout, name="dropout_embedding"))
    for k in range(num_layers):
        model.add(layers.LSTM(hidden_size, return_sequences=True, stateful=stateful, name=f"lstm_{k + 1}", **init))
        if dropout_between_layers and dropout and k < num_layers - 1:
            model.add(layers.Dropout(dropout, name=f"dropout_{k + 1}"))
    if dropout:
        model.add(layers.Dropout(dropout, name="dropout"))
    dense_init = {} if init_scale is None else {"kernel_initializer": uniform(), "bias_initializer": uniform()}
    model.add(layers.Dense(vocabulary, dtype="float32", name="output", **dense_init))
    return model


def reset_states(model: keras.Model) -> None:
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()


def lm_cross_entropy(model: keras.Model, ds) -> float:
    """Mean cross-entropy (nats per word) over every target of ``ds`` (:func:`batches_dataset`), the batches in
    order. A stateful model starts from zero states and carries them through the split, as Zaremba evaluated.
    The logits come from ``predict_on_batch`` (compiled on every backend); the log-softmax is NumPy's, in
    float64."""
    reset_states(model)
    total, count = 0.0, 0
    for x, y in ds:
        logits = np.asarray(model.predict_on_batch(x), dtype=np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=-1))
        target = np.asarray(y)
        total += float((log_z - np.take_along_axis(shifted, target[..., None], axis=-1)[..., 0]).sum())
        count += target.size
    reset_states(model)
    return total / max(count, 1)


class Perplexity(keras.callbacks.Callback):
    """After each epoch: valid and test perplexity into the epoch's logs (history.csv, MLflow); with a
    stateful model, the states are reset at the start of each epoch."""

    def __init__(self, splits: dict[str, Any]):
        super().__init__()
        self.splits = splits

    def on_epoch_begin(self, epoch, logs=None):
        reset_states(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if "ce" in logs:
            logs["perplexity"] = math.exp(min(float(logs["ce"]), 700.0))
        for name, ds in self.splits.items():
            ce = lm_cross_entropy(self.model, ds)
            logs[f"{name}_ce"] = ce
            logs[f"{name}_perplexity"] = math.exp(min(ce, 700.0))


def ptb_settings(p: dict[str, Any], where: str = "ch08_ptb_lm") -> dict[str, Any]:
    s = {
        "vocab_size": positive(p, "vocab_size", where),
        "hidden_size": positive(p, "hidden_size", where),
        "embed_size": None if p.get("embed_size") is None else positive(p, "embed_size", where),
        "num_layers": positive(p, "num_layers", where),
        "dropout": fraction(p, "dropout", where),
        "dropout_between_layers": require(p, "dropout_between_layers", bool, where),
        "num_steps": positive(p, "num_steps", where),
        "batch_size": positive(p, "batch_size", where),
        "epochs": positive(p, "epochs", where),
        "optimizer": require(p, "optimizer", str, where),
        "learning_rate": None if p.get("learning_rate") is None else positive(p, "learning_rate", where, float),
        "clipnorm": None if p.get("clipnorm") is None else positive(p, "clipnorm", where, float),
        "lr_decay": require(p, "lr_decay", float, where),
        "lr_decay_after": require(p, "lr_decay_after", int, where),
        "loss": require(p, "loss", str, where),
        "init_scale": None if p.get("init_scale") is None else positive(p, "init_scale", where, float),
        "stateful": require(p, "stateful", bool, where),
    }
    if not 0.0 < s["lr_decay"] <= 1.0:
        raise ParamError(f"params.yaml: {where}.lr_decay must be in (0, 1] (1 = no decay), got {s['lr_decay']}")
    if s["lr_decay_after"] < 0:
        raise ParamError(f"params.yaml: {where}.lr_decay_after must be >= 0, got {s['lr_decay_after']}")
    if s["loss"] not in ("mean", "sum_over_steps"):
        raise ParamError(f"params.yaml: {where}.loss must be mean or sum_over_steps, got {s['loss']!r}")
    return s


def ptb_data(root: Path, vocab_size: int) -> tuple[list[str], dict[str, np.ndarray]]:
    folder = root / "data" / "raw" / "ptb"
    paths = {split: folder / f"ptb.{split}.txt" for split in PTB_SPLITS}
    for path in paths.values():
        if not path.is_file():
            raise MissingOutputError(f"{path}: missing; run `dvc repro download@ptb`")
    words = {split: ptb_words(path) for split, path in paths.items()}
    vocab = build_vocab(words["train"], vocab_size)
    return vocab, {split: to_ids(w, vocab) for split, w in words.items()}


def ptb_split(ids: np.ndarray, s: dict[str, Any], cap, where: str, split: str):
    """The split in Zaremba's layout, the first batches only when a run cap (in rows of windows) applies."""
    x, y = zaremba_batches(ids, s["batch_size"], s["num_steps"])
    if len(x) == 0:
        raise ParamError(f"params.yaml: {where}.batch_size x num_steps = {s['batch_size']} x {s['num_steps']} is "
                         f"longer than ptb.{split}.txt's rows ({len(ids)} words)")
    n = max(1, cap(len(x) * s["batch_size"]) // s["batch_size"])
    return batches_dataset(x[:n], y[:n])


def train_ptb_lm(ctx: Context) -> dict[str, Any]:
    s = ptb_settings(ctx.params, ctx.task.id)
    vocab, ids = ptb_data(ctx.root, s["vocab_size"])
    train_ds = ptb_split(ids["train"], s, ctx.run.cap_train, ctx.task.id, "train")
    evals = {name: ptb_split(ids[split], s, ctx.run.cap_eval, ctx.task.id, split)
             for name, split in (("val", "valid"), ("test", "test"))}
    n_batches = batches.num_batches(train_ds)
    strategy = runtime.setup(ctx.run)
    with strategy.scope():
        model = build_ptb_lm(len(vocab), s["hidden_size"], s["num_layers"], s["dropout"], s["num_steps"],
                             s["batch_size"], s["stateful"], s["embed_size"], s["dropout_between_layers"],
                             s["init_scale"])
        opt = optimizer(s["optimizer"], s["learning_rate"], None,
                        **({} if s["clipnorm"] is None else {"global_clipnorm": s["clipnorm"]}))
        loss = (summed_over_steps_crossentropy if s["loss"] == "sum_over_steps"
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.compile(optimizer=opt, loss=loss,
                      metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="ce")])
    callbacks: list = [Perplexity(evals)]
    if s["lr_decay"] < 1.0:
        lr0 = float(ops.convert_to_numpy(opt.learning_rate))
        decay, after = s["lr_decay"], s["lr_decay_after"]
        # Zaremba: lr = lr0 * decay ** max(i + 1 - max_epoch, 0) for epoch i = 0, 1, ...
        callbacks.append(keras.callbacks.LearningRateScheduler(lambda epoch: lr0 * decay ** max(epoch + 1 - after, 0)))
    info = fit_and_save(ctx, model, train_ds, ctx.run.epochs(s["epochs"]), callbacks,
                        {"vocab.json": {"words": vocab, "eos": EOS, "unk": UNK}},
                        n_batches * s["batch_size"] * s["num_steps"], "words")
    history = read_history(ctx.train_dir / "history.csv")
    if history.get("val_perplexity"):
        info["best_val_perplexity"] = round(min(history["val_perplexity"]), 3)
    return {**info, "vocab_size": len(vocab), "train_batches": n_batches}


def read_history(path: Path) -> dict[str, list[float]]:
    import csv

    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def evaluate_ptb_lm(ctx: Context) -> dict[str, Any]:
    s = ptb_settings(ctx.params, ctx.task.id)
    runtime.seed_everything(ctx.run.seed)
    vocab = read_json(ctx.model_dir / "vocab.json")["words"]
    _, ids = ptb_data(ctx.root, s["vocab_size"])
    model = load_model(ctx)
    metrics: dict[str, Any] = {}
    for name, split in (("val", "valid"), ("test", "test")):
        ds = ptb_split(ids[split], s, ctx.run.cap_eval, ctx.task.id, split)
        ce = lm_cross_entropy(model, ds)
        metrics[f"{name}_perplexity"] = math.exp(min(ce, 700.0))
        metrics[f"{name}_cross_entropy"] = ce
        metrics[f"{name}_words"] = batches.num_batches(ds) * s["batch_size"] * s["num_steps"]
    metrics["vocab_size"] = len(vocab)
    # the final figures and the per-epoch curves of training, side by side for `dvc plots`
    rows = ["split,perplexity,cross_entropy,words"] + [
        f"{name},{metrics[f'{name}_perplexity']:.4f},{metrics[f'{name}_cross_entropy']:.6f},{metrics[f'{name}_words']}"
        for name in ("val", "test")]
    write_text(ctx.eval_dir / "perplexity.csv", "\n".join(rows) + "\n")
    ctx.tracker.log_artifact(ctx.eval_dir / "perplexity.csv", "plots")
    return write_metrics(ctx, metrics, keep=["vocab_size"])  # val_* (PTB's valid split) and test_*


PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch08_char_rnn": P.keys("hidden_size", "optimizer", "learning_rate", "epochs", "batch_size",
                            dataset=P.Choice(*CHAR_CORPORA), seq_length=P.POSITIVE_INT, stride=P.POSITIVE_INT,
                            test_fraction=P.Float(0.0, 1.0, low_open=True, high_open=True), sample_every=P.Int(0),
                            sample_chars=P.POSITIVE_INT, temperature=P.Float(0.0), seed_text=P.Spec(str, null=True)),
    "ch08_ptb_lm": P.keys("hidden_size", "dropout", "batch_size", "epochs", "optimizer", "learning_rate",
                          "clipnorm", vocab_size=P.POSITIVE_INT, embed_size=P.Int(1, null=True),
                          num_layers=P.POSITIVE_INT, dropout_between_layers=P.BOOL, num_steps=P.POSITIVE_INT,
                          lr_decay=P.Float(0.0, 1.0, low_open=True), lr_decay_after=P.Int(0),
                          loss=P.Choice("mean", "sum_over_steps"), init_scale=P.Float(0.0, low_open=True, null=True),
                          stateful=P.BOOL),
}

TASKS = (
    Task("ch08_char_rnn", "8.2.3 (lines 4169-4260)", "min-char-rnn in Keras: Dense(500) -> SimpleRNN(500, relu) "
         "-> softmax over characters", "charlm", "test_bits_per_character", train_char_rnn, evaluate_char_rnn,
         Reference(None, "the book prints no number (its corpus is unpublished); for scale, char-rnn LSTMs reach "
                   "about 1.5-2 bits per character on held-out tinyshakespeare"),
         notes="held-out last test_fraction of tinyshakespeare; lower is better; samples in plots/<task>/eval",
         also=("test_accuracy", "uniform_bits_per_character")),
    Task("ch08_ptb_lm", "8.5 (lines 4469-4586)", "Two-layer LSTM word language model on PTB", "ptb",
         "test_perplexity", train_ptb_lm, evaluate_ptb_lm,
         Reference(114.5, "Zaremba et al. 2014, table 1: non-regularised LSTM 114.5 test perplexity; medium "
                   "(650 units, dropout 0.5) 82.7; large 78.4"),
         notes="perplexity = exp(mean cross-entropy) on PTB test; lower is better",
         also=("val_perplexity",)),
)
