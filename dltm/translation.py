"""Translation with a trained encoder-decoder: raw text in, raw text out (chapter 10 on; issue 15).

A translator's folder (``models/<task>/``, or the artifacts of its ``text_model`` MLflow Model) holds
``model.keras`` (the model trained with teacher forcing) and ``translator.json``: the unit (``char`` or
``word``), the languages, the token indices of both sides, the maximum lengths, and ``module``, the chapter
module whose ``inference_models(model)`` splits the trained model into the book's ``encoder_model`` and
``decoder_model`` (10.2, "推断"). :class:`Translator` tokenizes, encodes, decodes (greedy or beam search, from
:mod:`dltm.decoding`) and joins the output tokens back into text; ``stages.translate``, the chapter's evaluate
stage and the MLflow pyfunc (:mod:`dltm.mlflow_models`) all use it.

The inference models' contract (the same for every chapter's encoder-decoder)::

    encoder_model(source ids (B, S)) -> [*recurrent states, *memory]            (each (B, ...))
    decoder_model([token ids (B, 1), *recurrent states, *memory])
        -> [probabilities (B, 1, V), *new recurrent states, *extras]

``memory`` is what every decoder step reads unchanged (the context vector of Cho et al.; the encoder's outputs
and the source mask for attention); ``extras`` are read-outs such as the attention weights ``(B, 1, S)``.
``translator.json``'s ``n_states`` and ``n_memory`` say how many of each.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from dltm.cli import MissingOutputError, UserError
from dltm.decoding import beam_search, greedy
from dltm.io import read_json

TRANSLATOR_FILE = "translator.json"
START, END, UNK = "\t", "\n", "<unk>"
"""The start and end tokens of every target (the book's ``'\\t'`` and ``'\\n'``), and the unknown word."""
_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]", re.UNICODE)


def split_words(text: str, lang: str) -> list[str]:
    """The words of ``text``: Chinese (``zh``) segmented by jieba (Sun 2012; precise mode, the HMM for unknown
    words), other languages lower-cased and split into words (with their apostrophes: ``don't``, ``l'homme``) and
    single punctuation marks, which carry meaning in a translation ("?" -> 吗).

    The English/French split is a regular expression rather than a library tokenizer: the Anki sentences are
    short, clean and unaccented in their punctuation, and the model only needs a stable split, not a
    linguist's one (sacreBLEU tokenizes the outputs again for scoring)."""
    if lang == "zh":
        from dltm.text import jieba

        return [w for w in jieba().lcut(text) if w.strip()]
    return _WORD.findall(text.lower())


def tokens(text: str, unit: str, lang: str) -> list[str]:
    """``text`` as the tokens of a ``char`` or ``word`` model (see :func:`split_words`)."""
    return list(text) if unit == "char" else split_words(text, lang)


def detokenize(toks: list[str], unit: str, lang: str) -> str:
    """Tokens back into text: characters and Chinese words joined as they are, other words by spaces with no
    space before punctuation."""
    if unit == "char" or lang == "zh":
        return "".join(toks)
    return re.sub(r" ([^\w\s'])", r"\1", " ".join(toks))


def token_index(sequences: list[list[str]], max_size: int | None = None, unknown: bool = False) -> dict[str, int]:
    """Token -> id from 1 (0 is padding): by falling frequency, ties in order of first appearance (the Keras
    ``Tokenizer``'s ranking, :class:`dltm.text.Tokenizer`), at most ``max_size`` tokens including ``<unk>`` (id 1)
    where ``unknown``. Raises ValueError for a ``max_size`` below 1, or below 2 with ``unknown``."""
    from dltm.text import Tokenizer

    if max_size is not None and max_size < (2 if unknown else 1):
        raise ValueError(f"a vocabulary of {max_size} leaves no room for a word")
    t = Tokenizer(num_words=None if max_size is None else max_size + 1, lower=False,
                  oov_token=UNK if unknown else None)
    t.fit_on_texts(sequences)
    return {w: i for w, i in t.word_index.items() if max_size is None or i <= max_size}


def encode(sequences: list[list[str]], index: dict[str, int], length: int) -> np.ndarray:
    """(n, length) int32 ids, 0-padded after each sequence and cut at ``length``; a token outside ``index`` is
    ``<unk>`` where the index has one, else 0 (the book's all-zero one-hot vector)."""
    unk = index.get(UNK, 0)
    out = np.zeros((len(sequences), length), dtype=np.int32)
    for i, seq in enumerate(sequences):
        ids = [index.get(t, unk) for t in seq[:length]]
        out[i, :len(ids)] = ids
    return out


class Translator:
    """A trained encoder-decoder with its vocabularies (``translator.json``, see the module docstring).

    ``translate(texts, beam)`` decodes greedily (``beam`` 1, a batch at once) or by beam search with length
    normalisation ``alpha``, never emitting padding or ``<unk>`` (the best known word instead: "<unk>" in a
    translation is no word of the language); ``attend(text)`` decodes one text greedily and returns the attention
    weights of a model that reads them out. Raises UserError for an empty text."""

    def __init__(self, model, info: dict[str, Any], inference_models):
        self.info = info
        self.encoder_model, self.decoder_model = inference_models(model)
        self.unit, self.source_lang, self.target_lang = info["unit"], info["source_lang"], info["target_lang"]
        self.input_index: dict[str, int] = info["input_token_index"]
        self.target_index: dict[str, int] = info["target_token_index"]
        self.reverse_target = {i: t for t, i in self.target_index.items()}
        self.max_encoder_seq_length = int(info["max_encoder_seq_length"])
        self.max_decoder_seq_length = int(info["max_decoder_seq_length"])
        self.n_states, self.n_memory = int(info["n_states"]), int(info["n_memory"])
        self.unk = self.target_index.get(UNK)
        self.extras: list[np.ndarray] = []

    def encode_sources(self, texts: list[str]) -> np.ndarray:
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise UserError("a text to translate is empty: give at least one word")
        return encode([tokens(t, self.unit, self.source_lang) for t in texts], self.input_index,
                      self.max_encoder_seq_length)

    def _step(self, last: np.ndarray, states: list[np.ndarray]):
        from keras import ops

        recurrent, memory = states[:self.n_states], states[self.n_states:]
        out = [ops.convert_to_numpy(o) for o in self.decoder_model.predict_on_batch(
            [last[:, None].astype(np.int32), *recurrent, *memory])]
        self.extras = out[1 + self.n_states:]
        with np.errstate(divide="ignore"):
            log_probs = np.log(out[0][:, -1, :].astype(np.float64))
        log_probs[:, 0] = -np.inf  # padding is no token
        if self.unk is not None:  # nor is the unknown word: a translation says something (the next best word)
            log_probs[:, self.unk] = -np.inf
        return log_probs, [*out[1:1 + self.n_states], *memory]

    def _initial(self, x: np.ndarray) -> list[np.ndarray]:
        from keras import ops

        out = self.encoder_model.predict_on_batch(x)
        return [ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    def _text(self, ids) -> str:
        toks = [self.reverse_target.get(int(i), "") for i in ids]
        return detokenize([t for t in toks if t not in ("", START, END)], self.unit, self.target_lang)

    def translate(self, texts: list[str], beam: int = 1, alpha: float = 1.0, batch_size: int = 256) -> list[str]:
        """The translation of each text. ``beam`` 1: greedy, ``batch_size`` texts at a time; above 1: beam search
        of ``beam`` hypotheses scored ``log p / length ** alpha``, one text at a time."""
        if beam < 1:
            raise UserError(f"the beam width must be >= 1, got {beam}")
        start, end = self.target_index[START], self.target_index[END]
        x = self.encode_sources(list(texts))
        out: list[str] = []
        step = batch_size if beam == 1 else 1
        for s in range(0, len(x), step):
            states = self._initial(x[s:s + step])
            if beam == 1:
                out += [self._text(ids) for ids in greedy(self._step, states, start, end,
                                                          self.max_decoder_seq_length)]
            else:
                best = beam_search(self._step, states, start, end, self.max_decoder_seq_length, beam, alpha)[0]
                out.append(self._text(best.tokens))
        return out

    def attend(self, text: str) -> tuple[list[str], list[str], np.ndarray]:
        """Greedy decoding of one text with the attention weights of each output token: (source tokens, output
        tokens, weights (output tokens, source tokens)). Raises UserError for a model without attention."""
        start, end = self.target_index[START], self.target_index[END]
        x = self.encode_sources([text])
        src = tokens(text, self.unit, self.source_lang)[:self.max_encoder_seq_length]
        rows: list[np.ndarray] = []

        def step(last, states):
            log_probs, new = self._step(last, states)
            if not self.extras:
                raise UserError(f"{self.info.get('task', 'this model')} has no attention weights to show")
            rows.append(self.extras[0][0, -1, :len(src)])
            return log_probs, new

        ids = greedy(step, self._initial(x), start, end, self.max_decoder_seq_length)[0]
        out = [self.reverse_target.get(int(i), "") for i in ids]
        return src, out, np.array(rows[:len(out)]).reshape(len(out), len(src))


def load_translator(folder: str | Path, hint: str | None = None) -> Translator:
    """The :class:`Translator` saved in ``folder``. Raises MissingOutputError for a missing file and UserError
    for a folder that holds no translator."""
    folder = Path(folder)
    hint = hint or "train the task first"
    from dltm.inference import MODEL_FILE

    for name in (MODEL_FILE, TRANSLATOR_FILE):
        if not (folder / name).is_file():
            raise MissingOutputError(f"{folder / name}: missing; {hint}")
    info = read_json(folder / TRANSLATOR_FILE)
    missing = {"module", "unit", "input_token_index", "target_token_index", "n_states", "n_memory"} - set(info)
    if missing:
        raise UserError(f"{folder / TRANSLATOR_FILE}: not a translator (no {', '.join(sorted(missing))})")
    inference_models = importlib.import_module(info["module"]).inference_models
    from dltm.training import load_keras_model  # TensorFlow: once the files are found

    return Translator(load_keras_model(folder / MODEL_FILE, hint, compile=False), info, inference_models)


def save_translator(ctx, model, info: dict[str, Any], history: dict[str, list[float]], seconds: float) -> None:
    """What the train stage of an encoder-decoder writes and logs (:func:`dltm.saving.save_trained`):
    ``models/<task>/`` (``model.keras``, ``translator.json`` = ``info``, ``summary.txt``) in one rename, the
    curves, and to the run the MLflow Models (the keras flavor and the ``text_model`` pyfunc that takes raw
    text; none without a run)."""
    from dltm.saving import save_trained

    save_trained(ctx, model, {TRANSLATOR_FILE: info}, history, seconds, f"{ctx.task.id}: training history")

