"""Chapter 10: the encoder-decoder (第十章 Encoder-Decoder 模型, book lines 4919-5170).

The book's sections, in order, and the task ids that run them:

- 10.1 the RNN encoder-decoder of Cho et al. (2014) (lines 4921-5003; equations only in the book): a GRU
  encoder whose summary ``c`` feeds every decoder step and the output layer -> ``ch10_gru_cho``
- 10.2 a translation model (lines 5005-5170), after keras.io's "ten-minute introduction to sequence-to-sequence
  learning": a character-level LSTM encoder whose final states start an LSTM decoder trained with teacher
  forcing, English -> Chinese on the Anki pairs (``cmn.txt``) -> ``ch10_seq2seq_char``; the same on Keras'
  English -> French pairs, to compare with keras.io -> ``ch10_seq2seq_char_fra``; its inference encoder and
  decoder and greedy decoding to the end character (``decode_sequence``): :func:`inference_models` and
  :class:`dltm.translation.Translator`
- the variants the chapter discusses: word level on both sides (jieba for Chinese) with embeddings instead of
  one-hot vectors -> ``ch10_seq2seq_word``, and the same with an attention decoder (Luong et al. 2015, the score
  functions in :mod:`dltm.attention`) -> ``ch10_seq2seq_attention``

Names follow the book (``encoder_inputs``, ``encoder_states``, ``decoder_lstm``, ``decoder_dense``,
``latent_dim``, ``num_samples``, ``input_texts``/``target_texts``, ``target_token_index``). The book's code
one-hot encodes whole arrays, (10,000 x 32 x 2,600) floats for the targets alone, ~4.5 GB as float32 with the
Chinese character set: here the arrays hold token ids (0 = padding) and the model one-hot encodes inside
(:class:`OneHot`: the same function, the same zero vectors past the end of a text), with sparse targets whose
padding is left out of the loss.

Beyond the book, which shows outputs for training sentences only: every model reports on one held-out test set
(``prepare@cmn``: sentences drawn at random from the first 10,000 pairs, never seen in training under any
translation), scored with sacreBLEU's BLEU (``zh`` tokenizer) and chrF with their signatures and exact matches,
greedy and beam search decoding side by side, with a table of source / reference / outputs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from dltm import params as P
from dltm import runtime
from dltm.attention import SCORES, AlignmentAttention
from dltm.batches import LengthBuckets
from dltm.cli import UserError
from dltm.data import DataFileError, load_pairs, read_pairs  # noqa: F401 -- read_pairs: the book's reader
from dltm.evaluation import cjk_font, figure, save_png, translation_scores, write_metrics
from dltm.io import write_text
from dltm.params import ParamError, require  # noqa: F401 -- ParamError: raised by the split, tests name it
from dltm.tasks import Context, Reference, Task, dvc_stage
from dltm.tracking import curve_names, epoch_logger
from dltm.training import StopOnNonFiniteLoss
from dltm.translation import END, START, encode, load_translator, save_translator, token_index, tokens

BOOK_EXAMPLES = {"See you.": "再见！", "Shut up!": "一点！", "Skip it.": "不管它。", "I'm fine.": "我生病了。",
                 "I'm full.": "我生病了。"}
"""The book's five example translations (training sentences, decoded greedily), source -> the book's output."""
TARGET_LANG = {"cmn": "zh", "fra": "fr"}
BLEU_TOKENIZE = {"zh": "zh", "fr": "13a"}
"""sacreBLEU's tokenizer for each target language: each CJK character a token for Chinese; 13a (mteval's)."""


# ------------------------------------------------------------------------------------------------------------
# 10.2.1 the data: token ids, and the teacher-forcing targets
# ------------------------------------------------------------------------------------------------------------


def char_index(texts: list[str]) -> dict[str, int]:
    """Each character of ``texts``, sorted (the book's ``sorted(list(input_characters))``), to an id from 1
    (0 is padding)."""
    return {ch: i + 1 for i, ch in enumerate(sorted(set("".join(texts))))}


def teacher_forcing(targets: list[list[str]], index: dict[str, int], length: int) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's inputs (start token + target + end token) and its targets, the same shifted one step
    earlier (``decoder_target_data[:, t - 1] = decoder_input_data[:, t]`` in the book), both (n, length)."""
    decoder_input = encode([[START, *t, END] for t in targets], index, length)
    decoder_target = np.zeros_like(decoder_input)
    decoder_target[:, :-1] = decoder_input[:, 1:]
    return decoder_input, decoder_target


# ------------------------------------------------------------------------------------------------------------
# The models: 10.2's (characters, one-hot), the word-level one, with attention, and 10.1's (Cho et al.)
# ------------------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dltm")
class OneHot(layers.Layer):
    """Ids (batch, steps), 0 = padding, to one-hot vectors (batch, steps, num_tokens) with padding all zeros:
    the book's one-hot arrays, built inside the model (``keras.ops.one_hot``) instead of in memory."""

    def __init__(self, num_tokens: int, **kwargs):
        super().__init__(**kwargs)
        self.num_tokens = int(num_tokens)

    def call(self, ids):
        return ops.one_hot(ops.cast(ids, "int32"), self.num_tokens + 1)[..., 1:]

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens}


@keras.saving.register_keras_serializable(package="dltm")
class NotPadding(layers.Layer):
    """Ids (batch, steps) -> bool (batch, steps), True where the id is not 0 (padding): the source mask an
    attention layer reads."""

    def call(self, ids):
        return ops.not_equal(ids, 0)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="dltm")
class EveryStep(layers.Layer):
    """``[sequence (batch, T, d), vector (batch, k)]`` -> the vector at every step (batch, T, k): Cho et al.'s
    context ``c``, read by every decoder step. The output keeps the sequence's mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[0]

    def call(self, inputs):
        sequence, vector = inputs
        return ops.zeros_like(sequence[..., :1]) + ops.expand_dims(vector, 1)

    def compute_output_shape(self, input_shapes):
        return (*input_shapes[0][:-1], input_shapes[1][-1])


def _ids(name: str) -> keras.KerasTensor:
    return keras.Input(shape=(None,), dtype="int32", name=name)


def _decoder_dense(num_decoder_tokens: int) -> layers.Dense:
    return layers.Dense(num_decoder_tokens + 1, activation="softmax", name="decoder_dense")


def build_seq2seq_char(num_encoder_tokens: int, num_decoder_tokens: int, latent_dim: int = 256) -> keras.Model:
    """Figure 10.3 and the book's listing: the encoder LSTM's final ``[state_h, state_c]`` start the decoder
    LSTM, whose outputs go through ``decoder_dense`` (softmax over the target characters; index 0, padding,
    is never a target). Inputs: two (batch, steps) id arrays; output (batch, steps, num_decoder_tokens + 1)."""
    encoder_inputs = _ids("encoder_inputs")
    encoder = layers.LSTM(latent_dim, return_state=True, name="encoder")
    _, state_h, state_c = encoder(OneHot(num_encoder_tokens, name="encoder_embedding")(encoder_inputs))
    encoder_states = [state_h, state_c]
    decoder_inputs = _ids("decoder_inputs")
    decoder_lstm = layers.LSTM(latent_dim, return_sequences=True, return_state=True, name="decoder_lstm")
    decoder_outputs, _, _ = decoder_lstm(OneHot(num_decoder_tokens, name="decoder_embedding")(decoder_inputs),
                                         initial_state=encoder_states)
    return keras.Model([encoder_inputs, decoder_inputs], _decoder_dense(num_decoder_tokens)(decoder_outputs),
                       name="seq2seq_char")


def build_seq2seq_word(num_encoder_tokens: int, num_decoder_tokens: int, embed_dim: int = 256,
                       latent_dim: int = 256) -> keras.Model:
    """10.2's model on words: ``Embedding(mask_zero=True)`` instead of one-hot vectors on both sides, the rest
    as the book's. Inputs and output as :func:`build_seq2seq_char`'s."""
    encoder_inputs = _ids("encoder_inputs")
    x = layers.Embedding(num_encoder_tokens + 1, embed_dim, mask_zero=True, name="encoder_embedding")(encoder_inputs)
    _, state_h, state_c = layers.LSTM(latent_dim, return_state=True, name="encoder")(x)
    decoder_inputs = _ids("decoder_inputs")
    y = layers.Embedding(num_decoder_tokens + 1, embed_dim, mask_zero=True, name="decoder_embedding")(decoder_inputs)
    decoder_outputs, _, _ = layers.LSTM(latent_dim, return_sequences=True, return_state=True,
                                        name="decoder_lstm")(y, initial_state=[state_h, state_c])
    return keras.Model([encoder_inputs, decoder_inputs], _decoder_dense(num_decoder_tokens)(decoder_outputs),
                       name="seq2seq_word")


def build_seq2seq_attention(num_encoder_tokens: int, num_decoder_tokens: int, embed_dim: int = 256,
                            latent_dim: int = 256, score: str = "general", max_keys: int | None = None) -> keras.Model:
    """The word-level model with Luong et al. (2015)'s global attention: at each step t the decoder state
    ``h_t`` scores every encoder output ``h_s`` (``score``: one of :data:`dltm.attention.SCORES`), the softmax
    over the source words (padding excluded) weighs them into a context ``c_t``, and the attentional state
    ``tanh(W_c [c_t; h_t])`` goes to ``decoder_dense`` (Luong's eq. 5-6). The encoder's final states start the
    decoder as in 10.2. ``max_keys``: the longest source the location score reads. Inputs and output as
    :func:`build_seq2seq_char`'s."""
    encoder_inputs = _ids("encoder_inputs")
    x = layers.Embedding(num_encoder_tokens + 1, embed_dim, mask_zero=True, name="encoder_embedding")(encoder_inputs)
    encoder_outputs, state_h, state_c = layers.LSTM(latent_dim, return_sequences=True, return_state=True,
                                                    name="encoder")(x)
    decoder_inputs = _ids("decoder_inputs")
    y = layers.Embedding(num_decoder_tokens + 1, embed_dim, mask_zero=True, name="decoder_embedding")(decoder_inputs)
    decoder_outputs, _, _ = layers.LSTM(latent_dim, return_sequences=True, return_state=True,
                                        name="decoder_lstm")(y, initial_state=[state_h, state_c])
    context, _ = AlignmentAttention(score, max_keys=max_keys, name="attention")(decoder_outputs, encoder_outputs,
                                                             key_mask=NotPadding(name="source_mask")(encoder_inputs))
    attentional = layers.Dense(latent_dim, activation="tanh", name="attention_combine")(
        layers.Concatenate(name="context_and_state")([context, decoder_outputs]))
    return keras.Model([encoder_inputs, decoder_inputs], _decoder_dense(num_decoder_tokens)(attentional),
                       name="seq2seq_attention")


def build_gru_cho(num_encoder_tokens: int, num_decoder_tokens: int, embed_dim: int = 256,
                  latent_dim: int = 256) -> keras.Model:
    """Cho et al. (2014)'s RNN encoder-decoder (the book's 10.1, eq. 10.1-10.5): a GRU reads the source; its
    last state gives the summary ``c = tanh(V h_N)``; the decoder starts from ``h'_0 = tanh(V' c)`` and at every
    step reads ``[y_{t-1}; c]``; the output layer reads ``[h'_t; y_{t-1}; c]``. GRUs with the reset gate applied
    before the recurrent product (``reset_after=False``), as in the paper. The paper's maxout layer before the
    softmax is left out (a linear read-out of the same three inputs). Inputs and output as
    :func:`build_seq2seq_char`'s."""
    encoder_inputs = _ids("encoder_inputs")
    x = layers.Embedding(num_encoder_tokens + 1, embed_dim, mask_zero=True, name="encoder_embedding")(encoder_inputs)
    _, h_n = layers.GRU(latent_dim, return_state=True, reset_after=False, name="encoder")(x)
    c = layers.Dense(latent_dim, activation="tanh", name="summary")(h_n)
    h0 = layers.Dense(latent_dim, activation="tanh", name="decoder_init")(c)
    decoder_inputs = _ids("decoder_inputs")
    y = layers.Embedding(num_decoder_tokens + 1, embed_dim, mask_zero=True, name="decoder_embedding")(decoder_inputs)
    c_t = EveryStep(name="summary_every_step")([y, c])
    decoder_outputs, _ = layers.GRU(latent_dim, return_sequences=True, return_state=True, reset_after=False,
                                    name="decoder_gru")(layers.Concatenate(name="decoder_input")([y, c_t]),
                                                        initial_state=h0)
    readout = layers.Concatenate(name="readout")([decoder_outputs, y, c_t])
    return keras.Model([encoder_inputs, decoder_inputs], _decoder_dense(num_decoder_tokens)(readout), name="gru_cho")


def inference_models(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The book's ``encoder_model`` and ``decoder_model`` (10.2.3), built from the trained model's layers, for
    any model of this chapter, in :mod:`dltm.translation`'s contract:

    - ``seq2seq_char``/``seq2seq_word``: source -> ``[h, c]``; ``[token, h, c]`` -> ``[probabilities, h, c]``
    - ``seq2seq_attention``: source -> ``[h, c, encoder outputs, source mask]``; ``[token, h, c, outputs, mask]``
      -> ``[probabilities, h, c, attention weights (batch, 1, S)]``
    - ``gru_cho``: source -> ``[h'_0, c]``; ``[token, h', c]`` -> ``[probabilities, h']``

    Raises UserError for a model of another kind."""
    get = model.get_layer
    kind = model.name
    if kind not in ("seq2seq_char", "seq2seq_word", "seq2seq_attention", "gru_cho"):
        raise UserError(f"{kind}: not a chapter-10 encoder-decoder")
    latent_dim = get("encoder").units
    encoder_inputs = _ids("encoder_inputs")
    decoder_inputs = _ids("decoder_inputs")
    x = get("encoder_embedding")(encoder_inputs)
    y = get("decoder_embedding")(decoder_inputs)
    state = [keras.Input(shape=(latent_dim,), name=f"decoder_state_input_{n}") for n in ("h", "c")]
    if kind == "gru_cho":
        _, h_n = get("encoder")(x)
        c = get("summary")(h_n)
        encoder_model = keras.Model(encoder_inputs, [get("decoder_init")(c), c], name="encoder_model")
        c_in = keras.Input(shape=(latent_dim,), name="summary_input")
        c_t = get("summary_every_step")([y, c_in])
        out, h = get("decoder_gru")(get("decoder_input")([y, c_t]), initial_state=state[0])
        probs = get("decoder_dense")(get("readout")([out, y, c_t]))
        return encoder_model, keras.Model([decoder_inputs, state[0], c_in], [probs, h], name="decoder_model")
    if kind == "seq2seq_attention":
        encoder_outputs, h, c = get("encoder")(x)
        mask = get("source_mask")(encoder_inputs)
        encoder_model = keras.Model(encoder_inputs, [h, c, encoder_outputs, mask], name="encoder_model")
        outputs_in = keras.Input(shape=(None, latent_dim), name="encoder_outputs_input")
        mask_in = keras.Input(shape=(None,), dtype="bool", name="source_mask_input")
        out, h, c = get("decoder_lstm")(y, initial_state=state)
        context, weights = get("attention")(out, outputs_in, key_mask=mask_in)
        probs = get("decoder_dense")(get("attention_combine")(get("context_and_state")([context, out])))
        return encoder_model, keras.Model([decoder_inputs, *state, outputs_in, mask_in], [probs, h, c, weights],
                                          name="decoder_model")
    _, h, c = get("encoder")(x)
    encoder_model = keras.Model(encoder_inputs, [h, c], name="encoder_model")
    out, h, c = get("decoder_lstm")(y, initial_state=state)
    return encoder_model, keras.Model([decoder_inputs, *state], [get("decoder_dense")(out), h, c],
                                      name="decoder_model")


STATES = {"seq2seq_char": (2, 0), "seq2seq_word": (2, 0), "seq2seq_attention": (2, 2), "gru_cho": (1, 1)}
"""Each model's (recurrent states, memory) in the decoder's inputs (see :func:`inference_models`)."""


# ------------------------------------------------------------------------------------------------------------
# The tasks: train as the book does (teacher forcing), then translate the held-out sentences
# ------------------------------------------------------------------------------------------------------------

_COMMON = P.keys("batch_size", "epochs", "validation_split", "optimizer", num_samples=P.Int(1, null=True),
                 latent_dim=P.POSITIVE_INT, patience=P.Int(0), beam_width=P.POSITIVE_INT, beam_examples=P.Int(0),
                 length_alpha=P.Float(0.0))
_WORDS = {**_COMMON, "embed_dim": P.POSITIVE_INT, "source_vocab": P.Int(2, null=True),
          "target_vocab": P.Int(4, null=True)}
PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch10_seq2seq_char": _COMMON,
    "ch10_seq2seq_char_fra": _COMMON,
    "ch10_seq2seq_word": _WORDS,
    "ch10_seq2seq_attention": {**_WORDS, "score": P.Choice(*SCORES)},
    "ch10_gru_cho": _WORDS,
}
KIND = {"ch10_seq2seq_char": "seq2seq_char", "ch10_seq2seq_char_fra": "seq2seq_char",
        "ch10_seq2seq_word": "seq2seq_word", "ch10_seq2seq_attention": "seq2seq_attention",
        "ch10_gru_cho": "gru_cho"}


def training_pairs(ctx: Context, s: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The training pairs of ``prepare@<dataset>`` among the first ``num_samples`` lines of the file (all where
    null), capped by ``run.max_train_examples``; in the file's order for the book's character model, in a seeded
    random order for the others (Keras' ``validation_split`` takes the last pairs: the longest, in a file sorted
    by length)."""
    lines, sources, targets = load_pairs(ctx.prepared(ctx.task.dataset), "train")
    keep = np.flatnonzero(lines <= s["num_samples"]) if s["num_samples"] else np.arange(len(lines))
    if KIND.get(ctx.task.id) != "seq2seq_char":  # chapter 12's Transformer reads it too
        keep = np.random.default_rng(ctx.run.seed).permutation(keep)
    keep = keep[:ctx.run.cap_train(len(keep))]
    if len(keep) < 2:
        raise ParamError(f"params.yaml: {ctx.task.id}.num_samples leaves {len(keep)} training pair(s); need 2")
    return [sources[i] for i in keep], [targets[i] for i in keep]


def build(task_id: str, s: dict[str, Any], n_in: int, n_out: int, max_source: int) -> keras.Model:
    kind = KIND[task_id]
    if kind == "seq2seq_char":
        return build_seq2seq_char(n_in, n_out, s["latent_dim"])
    if kind == "seq2seq_attention":
        return build_seq2seq_attention(n_in, n_out, s["embed_dim"], s["latent_dim"], s["score"], max_source)
    return (build_seq2seq_word if kind == "seq2seq_word" else build_gru_cho)(n_in, n_out, s["embed_dim"],
                                                                              s["latent_dim"])


def train_seq2seq(ctx: Context) -> dict[str, Any]:
    """Teacher forcing (10.2.2), as :func:`train_translator` does it, for the model of the task's kind."""
    kind = KIND[ctx.task.id]
    return train_translator(ctx, kind, lambda n_in, n_out, max_source, max_target: build(
        ctx.task.id, ctx.params, n_in, n_out, max_source), STATES[kind], __name__)


def train_translator(ctx: Context, kind: str, build_model, states: tuple[int, int], module: str) -> dict[str, Any]:
    """Teacher forcing (10.2.2): the decoder reads the target shifted right and learns the next token, sparse
    categorical cross-entropy over real tokens (``ignore_class=0``: padding), Keras' ``validation_split``,
    early stopping on the validation loss with the best weights kept where ``patience`` > 0 (the book: none).

    ``build_model(n_source_tokens, n_target_tokens, max_source, max_target)`` makes the model; ``states`` is its
    decoder's (recurrent states, memory) and ``module`` the module whose ``inference_models`` decodes it
    (:class:`dltm.translation.Translator`). Chapter 12's Transformer trains here too (``kind="transformer"``)."""
    s = ctx.params
    lang = TARGET_LANG[ctx.task.dataset]
    unit = "char" if kind == "seq2seq_char" else "word"
    input_texts, target_texts = training_pairs(ctx, s)
    src = [tokens(t, unit, "en") for t in input_texts]
    tgt = [tokens(t, unit, lang) for t in target_texts]
    if unit == "char":
        input_token_index, target_token_index = char_index(input_texts), char_index([START + END, *target_texts])
    else:
        input_token_index = token_index(src, s["source_vocab"], unknown=True)
        target_token_index = token_index([[START, *t, END] for t in tgt], s["target_vocab"], unknown=True)
    max_encoder_seq_length = max(len(t) for t in src)
    max_decoder_seq_length = max(len(t) for t in tgt) + 2
    encoder_input_data = encode(src, input_token_index, max_encoder_seq_length)
    decoder_input_data, decoder_target_data = teacher_forcing(tgt, target_token_index, max_decoder_seq_length)
    print(f"{ctx.name}: {len(src)} training pairs, {len(input_token_index)} source and {len(target_token_index)} "
          f"target {unit}s, max lengths {max_encoder_seq_length} / {max_decoder_seq_length}", flush=True)
    strategy = runtime.setup(ctx.run)
    epochs = ctx.run.epochs(s["epochs"])
    with strategy.scope():
        model = build_model(len(input_token_index), len(target_token_index), max_encoder_seq_length,
                            max_decoder_seq_length)
        model.compile(optimizer=s["optimizer"], loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))
    callbacks = [StopOnNonFiniteLoss(ctx.name, epochs), epoch_logger(ctx.tracker, "val", epochs)]
    if s["patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(patience=s["patience"], restore_best_weights=True))
    start = time.perf_counter()
    if kind == "seq2seq_char":  # the book's: whole arrays, Keras' validation_split (the file's last, longest pairs)
        hist = model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=s["batch_size"],
                         epochs=epochs, validation_split=s["validation_split"], verbose=0, callbacks=callbacks)
    else:  # the pairs in a random order: the last validation_split of them validate; batches of similar lengths
        fit = len(src) - round(len(src) * s["validation_split"])
        arrays = [encoder_input_data, decoder_input_data, decoder_target_data]
        train_batches = LengthBuckets([a[:fit] for a in arrays[:2]], arrays[2][:fit], s["batch_size"], ctx.run.seed)
        val_batches = LengthBuckets([a[fit:] for a in arrays[:2]], arrays[2][fit:], s["batch_size"])
        hist = model.fit(train_batches.for_fit(), epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False,
                         validation_data=val_batches.for_fit() if len(src) > fit else None)
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items()}, "val")
    n_states, n_memory = states
    info = {"task": ctx.name, "module": module, "unit": unit, "source_lang": "en", "target_lang": lang,
            "input_token_index": input_token_index, "target_token_index": target_token_index,
            "max_encoder_seq_length": max_encoder_seq_length, "max_decoder_seq_length": max_decoder_seq_length,
            "n_states": n_states, "n_memory": n_memory, "example": input_texts[0]}
    save_translator(ctx, model, info, history, seconds)
    fitted = round(len(src) * (1 - s["validation_split"]))
    val = history.get("val_loss", [])
    return {"train_examples": fitted, "validation_examples": len(src) - fitted, "epochs": len(history["train_loss"]),
            "best_epoch": int(np.argmin(val)) + 1 if val else len(history["train_loss"]),
            "train_seconds": round(seconds, 3),
            "source_unk_share": round(float(np.mean(encoder_input_data[encoder_input_data > 0] == 1)), 4)
            if unit == "word" else 0.0,
            "target_unk_share": round(float(np.mean(decoder_target_data[decoder_target_data > 0] == 1)), 4)
            if unit == "word" else 0.0,
            "examples_per_second": round(fitted * len(history["train_loss"]) / seconds, 1),
            "params": int(model.count_params())}


def samples_table(sources: list[str], references: list[str], outputs: dict[str, list[str]], n: int = 20) -> str:
    """Markdown: source / reference / each decoder's output, for the first ``n`` held-out pairs."""
    heads = " | ".join(outputs)
    lines = [f"| Source | Reference | {heads} |", "|---|---|" + "---|" * len(outputs)]
    for i in range(min(n, len(sources))):
        cells = " | ".join(outputs[k][i] if i < len(outputs[k]) else "" for k in outputs)
        lines.append(f"| {sources[i]} | {references[i]} | {cells} |")
    return "\n".join(lines) + "\n"


def attention_png(found: list[tuple[list[str], list[str], np.ndarray]], path: Path, title: str) -> Path:
    """Heat maps of attention weights (output tokens x source tokens), one panel per sentence. Chinese tokens
    need a CJK font: without one, output tokens are labelled by position (the tokens are in samples.md)."""
    font = cjk_font()
    fig, axes = figure(len(found), 1, figsize=(7, 3.2 * len(found)), squeeze=False)
    for ax, (src, out, w) in zip(axes[:, 0], found, strict=True):
        ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=45, ha="right")
        labels = out if font else [f"{i + 1}" for i in range(len(out))]
        ax.set_yticks(range(len(out)), labels, **({"fontfamily": font} if font else {}))
        ax.set_xlabel("source")
        ax.set_ylabel("output" if font else "output token (no CJK font here: see samples.md)")
    fig.suptitle(title)
    return save_png(fig, path)


def evaluate_seq2seq(ctx: Context) -> dict[str, Any]:
    """Greedy decoding of every held-out sentence and beam search of the first ``beam_examples``, scored against
    the references (sacreBLEU BLEU and chrF, exact matches); the book's examples, decoded as the book does
    (training sentences, greedy); sample outputs, and attention heat maps where the model has attention."""
    s = ctx.params
    runtime.seed_everything(ctx.run.seed)
    _, sources, references = load_pairs(ctx.prepared(ctx.task.dataset), "test")
    n = ctx.run.cap_eval(len(sources))
    sources, references = sources[:n], references[:n]
    translator = load_translator(ctx.model_dir, f"run `dvc repro {dvc_stage(ctx.task.id)}`")
    tok = BLEU_TOKENIZE[translator.target_lang]
    greedy_out = translator.translate(sources)
    metrics: dict[str, Any] = {**translation_scores(greedy_out, references, tokenize=tok), "n_examples": n}
    k = min(s["beam_examples"], n)
    outputs = {"greedy": greedy_out}
    if s["beam_width"] > 1 and k:
        beam_out = translator.translate(sources[:k], beam=s["beam_width"], alpha=s["length_alpha"])
        beam = translation_scores(beam_out, references[:k], tokenize=tok)
        same = translation_scores(greedy_out[:k], references[:k], tokenize=tok)
        metrics.update({f"{m}_beam": beam[m] for m in ("bleu", "chrf", "exact_match")},
                       **{f"{m}_greedy_on_beam_examples": same[m] for m in ("bleu", "chrf", "exact_match")},
                       beam_examples=k, beam_width=s["beam_width"])
        outputs[f"beam {s['beam_width']}"] = beam_out
    text = f"# {ctx.name}: held-out pairs\n\n" + samples_table(sources, references, outputs)
    if ctx.task.dataset == "cmn":
        book = translator.translate(list(BOOK_EXAMPLES))
        metrics["book_examples_matching"] = float(np.mean([o == b for o, b in zip(book, BOOK_EXAMPLES.values(),
                                                                                  strict=True)]))
        text += ("\n# The book's examples (training sentences, greedy)\n\n| Source | Book | Ours |\n|---|---|---|\n"
                 + "".join(f"| {src} | {b} | {o} |\n" for (src, b), o in zip(BOOK_EXAMPLES.items(), book, strict=True)))
    if KIND.get(ctx.task.id) == "seq2seq_attention":
        found = [translator.attend(src) for src in sources[:3]]
        attention_png(found, ctx.eval_dir / "attention.png", f"{ctx.name}: attention on held-out sentences")
        text += "\n# Attention (attention.png): the output tokens of each panel\n\n" + "".join(
            f"{i}. {src}: {' '.join(f'{j + 1}:{t}' for j, t in enumerate(out))}\n"
            for i, (src, (_, out, _)) in enumerate(zip(sources[:len(found)], found, strict=True), 1))
        ctx.tracker.log_artifact(ctx.eval_dir / "attention.png", "plots")
    write_text(ctx.eval_dir / "samples.md", text)
    ctx.tracker.log_artifact(ctx.eval_dir / "samples.md", "samples")
    return write_metrics(ctx, metrics, keep=["n_examples", "beam_examples", "beam_width", "bleu_signature",
                                             "chrf_signature", "book_examples_matching"])


def translation_table(root: Path) -> list[str]:
    """The report's chapter-10 section: every model on the same held-out sentences, greedy and beam search."""
    from dltm.io import read_json

    lines = ["## Translation (chapter 10)", "",
             "Every model on the same held-out sentences (`prepare@cmn`: drawn at random from the first 10,000 pairs, "
             "never trained on). sacreBLEU BLEU (tokenizer `zh`; `13a` for French) and chrF, 0-100; *beam* decodes "
             "the first `beam_examples` of them, beside greedy decoding of the same ones. The book decodes training "
             "sentences only and prints no score. Context, not like-for-like (zh->en on Tatoeba, a course's "
             "small models): RNN 1.4, LSTM+attention 13.5, Transformer 23.4; OPUS-MT big eng->cmn 34.3.", "",
             "| Task | Pair | BLEU greedy | chrF greedy | Exact | BLEU beam | BLEU greedy, same sentences | "
             "chrF beam | Epochs (best) | Train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for task in TASKS:
        mfile, rfile = root / "metrics" / f"{task.id}.json", root / "models" / task.id / "run.json"
        if not mfile.is_file():
            lines.append(f"| {task.id} | en->{TARGET_LANG[task.dataset]} | not run | | | | | | | |")
            continue
        m = read_json(mfile)
        run = read_json(rfile) if rfile.is_file() else {}

        def f(key: str, digits: int = 1, m: dict = m) -> str:
            return f"{m[key]:.{digits}f}" if isinstance(m.get(key), (int, float)) else "-"

        lines.append(f"| {task.id} | en->{TARGET_LANG[task.dataset]} | {f('test_bleu')} | {f('test_chrf')} | "
                     f"{f('test_exact_match', 3)} | {f('test_bleu_beam')} | {f('test_bleu_greedy_on_beam_examples')} | "
                     f"{f('test_chrf_beam')} | {run.get('epochs', '-')} ({run.get('best_epoch', '-')}) | "
                     f"{run.get('train_seconds', '-')} |")
    return lines


REPORT_SECTIONS = (translation_table,)

_CONTEXT = "Tatoeba cmn context (zh->en, a course's numbers): small RNN sacreBLEU 1.4, LSTM+attention 13.5"
_NOTES = ("sacreBLEU (tok zh) and chrF on the held-out sentences of prepare@cmn (drawn from the first 10,000 "
          "pairs); _beam: beam search on the first beam_examples of them")
_ALSO = ("test_chrf", "test_bleu_beam")
HEADLINE = "ch10_seq2seq_attention"  # the result reports/results.md's summary leads this chapter with

TASKS = (
    Task("ch10_seq2seq_char", "10.2 (lines 5005-5170)", "character-level LSTM encoder-decoder, English -> Chinese",
         "cmn", "test_bleu", train_seq2seq, evaluate_seq2seq,
         Reference(None, "the book decodes training sentences only and prints no score; " + _CONTEXT),
         notes=_NOTES + "; book_examples_matching: the share of the book's five example outputs reproduced",
         also=(*_ALSO, "book_examples_matching")),
    Task("ch10_seq2seq_char_fra", "10.2 (lines 5005-5170)", "the same on English -> French (Keras' lstm_seq2seq)",
         "fra", "test_bleu", train_seq2seq, evaluate_seq2seq,
         Reference(None, "keras.io's lstm_seq2seq: val loss 0.436 at epoch 25 on 10k pairs (its loss also counts "
                   "the padding, ours does not)"),
         notes="sacreBLEU (tok 13a) and chrF on the held-out sentences of prepare@fra", also=_ALSO),
    Task("ch10_seq2seq_word", "10.2, words", "word-level LSTM encoder-decoder (jieba), English -> Chinese",
         "cmn", "test_bleu", train_seq2seq, evaluate_seq2seq, Reference(None, _CONTEXT), notes=_NOTES, also=_ALSO),
    Task("ch10_seq2seq_attention", "10.2, words, with attention (Luong et al. 2015)",
         "word-level LSTM encoder-decoder with global attention, English -> Chinese", "cmn", "test_bleu",
         train_seq2seq, evaluate_seq2seq, Reference(None, _CONTEXT), notes=_NOTES, also=_ALSO),
    Task("ch10_gru_cho", "10.1 (lines 4921-5003)", "Cho et al. (2014)'s GRU encoder-decoder, English -> Chinese",
         "cmn", "test_bleu", train_seq2seq, evaluate_seq2seq, Reference(None, _CONTEXT), notes=_NOTES, also=_ALSO),
)
