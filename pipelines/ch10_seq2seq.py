"""Chapter 10: the encoder-decoder (第十章 Encoder-Decoder 模型, book lines 4919-5170).

The book's sections, in order, and what implements them:

- 10.1 the RNN encoder-decoder of Cho et al. (2014) (lines 4921-5003): equations only in the book
- 10.2 a translation model (lines 5005-5170), after keras.io's "ten-minute introduction to sequence-to-sequence
  learning": a character-level LSTM encoder whose final states start an LSTM decoder trained with teacher
  forcing, English -> Chinese on the Anki pairs (``cmn.txt``) -> ``ch10_seq2seq_char``; its inference encoder
  and decoder, and greedy decoding to the end character (``decode_sequence``)

Names follow the book (``encoder_inputs``, ``encoder_states``, ``decoder_lstm``, ``decoder_dense``,
``latent_dim``, ``num_samples``, ``input_texts``/``target_texts``, ``target_token_index``). The book's code
one-hot encodes whole arrays, (10,000 x 32 x 2,600) floats for the targets alone, ~4.5 GB as float32 with the
Chinese character set: here the arrays hold character ids (0 = padding) and the model one-hot encodes inside
(:class:`OneHot`: the same function, the same zero vectors past the end of a text), with sparse targets whose
padding is left out of the loss. Beyond the book, which shows outputs for training sentences only: a held-out
test set drawn at random from the same pool (the Anki file is sorted by length), scored with sacreBLEU's BLEU
(``zh`` tokenizer) and chrF with their signatures, exact matches, beam search beside greedy decoding, and a
table of source / reference / output.
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
from dltm.cli import MissingOutputError, UserError
from dltm.data import DataFileError
from dltm.decoding import beam_search, greedy
from dltm.evaluation import history_png, translation_scores, write_metrics
from dltm.io import atomic_path, read_json, write_json, write_text
from dltm.params import ParamError, require
from dltm.tasks import Context, Reference, Task
from dltm.tracking import curve_names, epoch_logger
from dltm.training import MODEL_FILE, StopOnNonFiniteLoss, load_keras_model, model_summary, write_history_csv

START, END = "\t", "\n"
"""The book's start and end characters of every target text (``'\\t' + target_text + '\\n'``)."""
BOOK_EXAMPLES = {"See you.": "再见！", "Shut up!": "一点！", "Skip it.": "不管它。", "I'm fine.": "我生病了。",
                 "I'm full.": "我生病了。"}
"""The book's five example translations (training sentences, decoded greedily), source -> the book's output."""
VOCAB_FILE = "seq2seq_vocab.json"


# ------------------------------------------------------------------------------------------------------------
# 10.2.1 the data: the first num_samples pairs of cmn.txt, and a held-out test set drawn from them
# ------------------------------------------------------------------------------------------------------------


def read_pairs(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """The first two tab-separated fields (source, target) of the first ``limit`` lines of an Anki file (the
    third, where present, is the attribution). Raises MissingOutputError for a missing file and DataFileError,
    naming the line, for one without a tab or with an empty field."""
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{path.parent.name}`")
    pairs: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if limit is not None and len(pairs) >= limit:
                break
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                raise DataFileError(f"{path}:{i}: expected 'English<TAB>translation[<TAB>attribution]'")
            pairs.append((fields[0], fields[1]))
    return pairs


def held_out_split(sources: list[str], test_pairs: int, seed: int, keep: set[str] = frozenset()
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: ``test_pairs`` pairs drawn at random (``numpy.random.default_rng(seed)``) from all
    but those whose source is in ``keep`` (the book's examples stay in training, where the book decodes them).
    Raises ParamError when fewer than one training pair would remain."""
    candidates = np.array([i for i, s in enumerate(sources) if s not in keep])
    if not 0 < test_pairs < len(candidates):
        raise ParamError(f"params.yaml: test_pairs must be between 1 and {len(candidates) - 1} for "
                         f"{len(sources)} pairs, got {test_pairs}")
    test = np.sort(np.random.default_rng(seed).choice(candidates, size=test_pairs, replace=False))
    train = np.setdiff1d(np.arange(len(sources)), test)
    return train, test


def char_index(texts: list[str]) -> dict[str, int]:
    """Each character of ``texts``, sorted, to an id from 1 (0 is padding)."""
    return {ch: i + 1 for i, ch in enumerate(sorted(set("".join(texts))))}


def encode_texts(texts: list[str], index: dict[str, int], length: int) -> np.ndarray:
    """(len(texts), length) int32 ids, 0-padded after each text; characters outside ``index`` are 0 (the
    book's all-zero vector) and texts longer than ``length`` are cut."""
    out = np.zeros((len(texts), length), dtype=np.int32)
    for i, text in enumerate(texts):
        ids = [index.get(ch, 0) for ch in text[:length]]
        out[i, :len(ids)] = ids
    return out


def teacher_forcing(targets: list[str], index: dict[str, int], length: int) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's inputs (``'\\t' + text + '\\n'``) and its targets, the same shifted one step earlier
    (``decoder_target_data[:, t - 1] = decoder_input_data[:, t]`` in the book), both (n, length)."""
    decoder_input = encode_texts([START + t + END for t in targets], index, length)
    decoder_target = np.zeros_like(decoder_input)
    decoder_target[:, :-1] = decoder_input[:, 1:]
    return decoder_input, decoder_target


# ------------------------------------------------------------------------------------------------------------
# 10.2.2 the model, and 10.2.3 its inference encoder and decoder
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


def build_seq2seq_char(num_encoder_tokens: int, num_decoder_tokens: int, latent_dim: int = 256) -> keras.Model:
    """Figure 10.3 and the book's listing: the encoder LSTM's final ``[state_h, state_c]`` start the decoder
    LSTM, whose outputs go through ``decoder_dense`` (softmax over the target characters; index 0, padding,
    is never a target)."""
    encoder_inputs = keras.Input(shape=(None,), dtype="int32", name="encoder_inputs")
    encoder = layers.LSTM(latent_dim, return_state=True, name="encoder")
    _, state_h, state_c = encoder(OneHot(num_encoder_tokens, name="encoder_one_hot")(encoder_inputs))
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None,), dtype="int32", name="decoder_inputs")
    decoder_lstm = layers.LSTM(latent_dim, return_sequences=True, return_state=True, name="decoder_lstm")
    decoder_outputs, _, _ = decoder_lstm(OneHot(num_decoder_tokens, name="decoder_one_hot")(decoder_inputs),
                                         initial_state=encoder_states)
    decoder_dense = layers.Dense(num_decoder_tokens + 1, activation="softmax", name="decoder_dense")
    return keras.Model([encoder_inputs, decoder_inputs], decoder_dense(decoder_outputs), name="seq2seq_char")


def inference_models(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The book's ``encoder_model`` (source ids -> ``[state_h, state_c]``) and ``decoder_model`` (one step:
    ``[target ids, h, c]`` -> ``[probabilities, h, c]``), built from the trained model's layers."""
    latent_dim = model.get_layer("encoder").units
    encoder_inputs = keras.Input(shape=(None,), dtype="int32", name="encoder_inputs")
    _, state_h, state_c = model.get_layer("encoder")(model.get_layer("encoder_one_hot")(encoder_inputs))
    encoder_model = keras.Model(encoder_inputs, [state_h, state_c], name="encoder_model")
    decoder_inputs = keras.Input(shape=(None,), dtype="int32", name="decoder_inputs")
    decoder_states_inputs = [keras.Input(shape=(latent_dim,), name="decoder_state_input_h"),
                             keras.Input(shape=(latent_dim,), name="decoder_state_input_c")]
    decoder_outputs, h, c = model.get_layer("decoder_lstm")(model.get_layer("decoder_one_hot")(decoder_inputs),
                                                            initial_state=decoder_states_inputs)
    decoder_model = keras.Model([decoder_inputs, *decoder_states_inputs],
                                [model.get_layer("decoder_dense")(decoder_outputs), h, c], name="decoder_model")
    return encoder_model, decoder_model


class Translator:
    """A trained ``ch10_seq2seq_char`` model with its character indices: ``translate(texts)`` decodes greedily
    (the book's ``decode_sequence``, for a batch at once) or with beam search of ``beam`` hypotheses."""

    def __init__(self, model: keras.Model, vocab: dict[str, Any]):
        self.encoder_model, self.decoder_model = inference_models(model)
        self.input_index: dict[str, int] = vocab["input_token_index"]
        self.target_index: dict[str, int] = vocab["target_token_index"]
        self.reverse_target = {i: ch for ch, i in self.target_index.items()}
        self.max_encoder_seq_length = int(vocab["max_encoder_seq_length"])
        self.max_decoder_seq_length = int(vocab["max_decoder_seq_length"])

    def _step(self, tokens: np.ndarray, states: list[np.ndarray]):
        probs, h, c = self.decoder_model.predict_on_batch([tokens[:, None].astype(np.int32), *states])
        probs = ops.convert_to_numpy(probs)[:, -1, :].astype(np.float64)
        with np.errstate(divide="ignore"):
            log_probs = np.log(probs)
        log_probs[:, 0] = -np.inf  # padding is no character
        return log_probs, [ops.convert_to_numpy(h), ops.convert_to_numpy(c)]

    def _text(self, ids: list[int] | tuple[int, ...]) -> str:
        return "".join(self.reverse_target.get(int(i), "") for i in ids)

    def translate(self, texts: list[str], beam: int = 1, alpha: float = 1.0, batch_size: int = 256) -> list[str]:
        """The translation of each text (without the end character). ``beam`` 1: greedy, ``batch_size`` texts
        at a time; above 1: beam search with length normalisation ``alpha``, one text at a time."""
        start, end = self.target_index[START], self.target_index[END]
        out: list[str] = []
        for s in range(0, len(texts), batch_size if beam == 1 else 1):
            chunk = texts[s:s + (batch_size if beam == 1 else 1)]
            x = encode_texts(chunk, self.input_index, self.max_encoder_seq_length)
            states = [ops.convert_to_numpy(v) for v in self.encoder_model.predict_on_batch(x)]
            if beam == 1:
                out += [self._text(ids) for ids in greedy(self._step, states, start, end,
                                                          self.max_decoder_seq_length)]
            else:
                best = beam_search(self._step, states, start, end, self.max_decoder_seq_length, beam, alpha)[0]
                out.append(self._text(best.tokens))
        return out


# ------------------------------------------------------------------------------------------------------------
# The task: train as the book does, then measure on the held-out pairs
# ------------------------------------------------------------------------------------------------------------


def settings(p: dict[str, Any], where: str) -> dict[str, Any]:
    return {"num_samples": require(p, "num_samples", int, where), "test_pairs": require(p, "test_pairs", int, where),
            "split_seed": require(p, "split_seed", int, where), "latent_dim": require(p, "latent_dim", int, where),
            "batch_size": require(p, "batch_size", int, where), "epochs": require(p, "epochs", int, where),
            "validation_split": require(p, "validation_split", float, where),
            "optimizer": require(p, "optimizer", str, where), "beam_width": require(p, "beam_width", int, where),
            "beam_examples": require(p, "beam_examples", int, where),
            "length_alpha": require(p, "length_alpha", float, where)}


def data(ctx: Context, s: dict[str, Any]) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """The pool (the first ``num_samples`` pairs), and its train and held-out test indices."""
    dataset = ctx.task.dataset
    pairs = read_pairs(ctx.root / "data" / "raw" / dataset / f"{dataset}.txt", s["num_samples"])
    train, test = held_out_split([src for src, _ in pairs], s["test_pairs"], s["split_seed"], set(BOOK_EXAMPLES))
    return pairs, train[:ctx.run.cap_train(len(train))], test[:ctx.run.cap_eval(len(test))]


def train_seq2seq_char(ctx: Context) -> dict[str, Any]:
    s = settings(ctx.params, ctx.task.id)
    pairs, train, _ = data(ctx, s)
    input_texts = [pairs[i][0] for i in train]
    target_texts = [pairs[i][1] for i in train]
    input_token_index = char_index(input_texts)
    target_token_index = char_index([START + END, *target_texts])
    max_encoder_seq_length = max(len(t) for t in input_texts)
    max_decoder_seq_length = max(len(t) for t in target_texts) + 2
    encoder_input_data = encode_texts(input_texts, input_token_index, max_encoder_seq_length)
    decoder_input_data, decoder_target_data = teacher_forcing(target_texts, target_token_index,
                                                              max_decoder_seq_length)
    print(f"{ctx.name}: {len(train)} training pairs, {len(input_token_index)} input and {len(target_token_index)} "
          f"target characters, max lengths {max_encoder_seq_length} / {max_decoder_seq_length}", flush=True)
    strategy = runtime.setup(ctx.run)
    epochs = ctx.run.epochs(s["epochs"])
    with strategy.scope():
        model = build_seq2seq_char(len(input_token_index), len(target_token_index), s["latent_dim"])
        # the padding after each target is no character to predict: ignore_class=0 leaves it out of the loss
        model.compile(optimizer=s["optimizer"], loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=0))
    start = time.perf_counter()
    hist = model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=s["batch_size"],
                     epochs=epochs, validation_split=s["validation_split"], verbose=0,
                     callbacks=[StopOnNonFiniteLoss(ctx.name, epochs), epoch_logger(ctx.tracker, "val", epochs)])
    seconds = time.perf_counter() - start
    history = curve_names({k: [float(v) for v in vs] for k, vs in hist.history.items()}, "val")
    vocab = {"input_token_index": input_token_index, "target_token_index": target_token_index,
             "max_encoder_seq_length": max_encoder_seq_length, "max_decoder_seq_length": max_decoder_seq_length}
    with atomic_path(ctx.model_dir) as tmp:
        tmp.mkdir(parents=True)
        model.save(tmp / MODEL_FILE)
        write_json(tmp / VOCAB_FILE, vocab)
        (tmp / "summary.txt").write_text(model_summary(model), encoding="utf-8")
    write_history_csv(history, ctx.train_dir / "history.csv")
    history_png(history, ctx.train_dir / "history.png", f"{ctx.task.id}: training history")
    tr = ctx.tracker
    tr.log_metrics({"train_seconds": seconds})
    tr.log_text(model_summary(model), "model_summary.txt")
    if tr.active:  # the MLflow Model (keras flavor); no run, no MLflow
        from dltm import mlflow_models

        mlflow_models.log_models(tr, ctx.model_dir)
    tr.log_artifact(ctx.train_dir / "history.csv", "plots")
    fitted = round(len(train) * (1 - s["validation_split"]))
    return {"train_examples": fitted, "validation_examples": len(train) - fitted, "epochs": len(history["train_loss"]),
            "train_seconds": round(seconds, 3), "examples_per_second": round(fitted * epochs / seconds, 1),
            "params": int(model.count_params())}


def load_translator(model_dir: Path) -> Translator:
    hint = "run `dvc repro train@ch10_seq2seq_char`"
    if not (model_dir / VOCAB_FILE).is_file():
        raise MissingOutputError(f"{model_dir / VOCAB_FILE}: missing; {hint}")
    vocab = read_json(model_dir / VOCAB_FILE)
    if "target_token_index" not in vocab:
        raise UserError(f"{model_dir}: not a chapter-10 translator (no target_token_index in {VOCAB_FILE})")
    return Translator(load_keras_model(model_dir / MODEL_FILE, hint), vocab)


def samples_table(sources: list[str], references: list[str], outputs: dict[str, list[str]], n: int = 20) -> str:
    """Markdown: source / reference / each decoder's output, for the first ``n`` held-out pairs."""
    heads = " | ".join(outputs)
    lines = [f"| Source | Reference | {heads} |", "|---|---|" + "---|" * len(outputs)]
    for i in range(min(n, len(sources))):
        cells = " | ".join(outputs[k][i] if i < len(outputs[k]) else "" for k in outputs)
        lines.append(f"| {sources[i]} | {references[i]} | {cells} |")
    return "\n".join(lines) + "\n"


def evaluate_seq2seq_char(ctx: Context) -> dict[str, Any]:
    s = settings(ctx.params, ctx.task.id)
    runtime.seed_everything(ctx.run.seed)
    pairs, _, test = data(ctx, s)
    translator = load_translator(ctx.model_dir)
    sources, references = [pairs[i][0] for i in test], [pairs[i][1] for i in test]
    greedy_out = translator.translate(sources)
    scores = translation_scores(greedy_out, references, tokenize="zh")
    metrics: dict[str, Any] = {**scores, "n_examples": len(test)}
    k = min(s["beam_examples"], len(test))
    outputs = {"greedy": greedy_out}
    if s["beam_width"] > 1 and k:
        beam_out = translator.translate(sources[:k], beam=s["beam_width"], alpha=s["length_alpha"])
        beam = translation_scores(beam_out, references[:k], tokenize="zh")
        same = translation_scores(greedy_out[:k], references[:k], tokenize="zh")
        metrics.update({f"{m}_beam": beam[m] for m in ("bleu", "chrf", "exact_match")},
                       **{f"{m}_greedy_on_beam_examples": same[m] for m in ("bleu", "chrf", "exact_match")},
                       beam_examples=k, beam_width=s["beam_width"])
        outputs[f"beam {s['beam_width']}"] = beam_out
    book = translator.translate(list(BOOK_EXAMPLES))
    metrics["book_examples_matching"] = float(np.mean([o == b for o, b in zip(book, BOOK_EXAMPLES.values(),
                                                                              strict=True)]))
    write_text(ctx.eval_dir / "samples.md",
               f"# {ctx.name}: held-out pairs\n\n" + samples_table(sources, references, outputs)
               + "\n# The book's examples (training sentences, greedy)\n\n| Source | Book | Ours |\n|---|---|---|\n"
               + "".join(f"| {src} | {b} | {o} |\n" for (src, b), o in zip(BOOK_EXAMPLES.items(), book,
                                                                              strict=True)))
    ctx.tracker.log_artifact(ctx.eval_dir / "samples.md", "samples")
    return write_metrics(ctx, metrics, keep=["n_examples", "beam_examples", "beam_width", "bleu_signature",
                                             "chrf_signature", "book_examples_matching"])


PARAMS = {  # what each task's params.yaml section accepts (dltm.params.validate)
    "ch10_seq2seq_char": P.keys("batch_size", "epochs", "validation_split", "optimizer",
                                num_samples=P.POSITIVE_INT, test_pairs=P.POSITIVE_INT, split_seed=P.Int(0),
                                latent_dim=P.POSITIVE_INT, beam_width=P.POSITIVE_INT, beam_examples=P.Int(0),
                                length_alpha=P.Float(0.0)),
}

TASKS = (
    Task("ch10_seq2seq_char", "10.2 (lines 5005-5170)", "character-level LSTM encoder-decoder, English -> Chinese",
         "cmn", "test_bleu", train_seq2seq_char, evaluate_seq2seq_char,
         Reference(None, "the book decodes training sentences only and prints no score; Tatoeba cmn context: "
                   "small RNN zh->en sacreBLEU 1.4, LSTM+attention 13.5 (a course's numbers)"),
         notes="sacreBLEU (tok zh) and chrF on held-out pairs drawn at random from the first num_samples; "
               "book_examples_matching: the share of the book's five example outputs reproduced",
         also=("test_chrf", "test_bleu_beam", "book_examples_matching")),
)
