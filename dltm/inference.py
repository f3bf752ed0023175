"""Raw text in, predictions out: a trained text model together with what it needs to read text.

A text classifier's folder (``models/<task>/``, or the artifacts of its ``text_model`` MLflow Model) holds
``model.keras``, ``tokenizer.json`` and ``data_info.json`` (the class names, ``doc_length``, the cleaner and the
padding side the task encoded its training data with). :class:`TextClassifier` encodes new texts exactly so and
classifies them; ``stages.predict`` and the MLflow pyfunc (:mod:`dltm.mlflow_models`) both use it.

A language model's folder (chapter 8) holds ``model.keras`` and ``vocab.json``: :class:`LanguageModel` continues
seed texts, character by character (``ix_to_char``: ``pipelines.ch08_rnn.sample``, what ``stages.generate`` runs)
or word by word (``words``: :func:`sample_words`).

TensorFlow is imported when a model is first used, so that a bad input fails at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm.cli import MissingOutputError, UserError
from dltm.io import read_json
from dltm.text import Tokenizer, clean_str

# the files dltm.training and pipelines.ch08_rnn write (dltm.training imports TensorFlow, so they are named here)
MODEL_FILE, TOKENIZER_FILE, DATA_INFO_FILE, VOCAB_FILE = "model.keras", "tokenizer.json", "data_info.json", "vocab.json"

CLEANERS = {"kim": clean_str, "html_breaks": lambda s: s.replace("<br />", " "), "none": lambda s: s,
            None: lambda s: s}
"""``data_info.json``'s ``clean`` -> the function applied to a text before the tokenizer: Kim's ``clean_str`` for
MR, the IMDB archive's line breaks removed, or nothing."""


def encode(texts: list[str], tokenizer: Tokenizer, info: dict) -> np.ndarray:
    """Texts -> (len(texts), doc_length) int32 index arrays as the task's training data: the cleaner, the
    tokenizer's num_words cut, then padding to ``doc_length`` on the task's side ('post' for MR as in the book,
    'pre' for IMDB); a longer text is cut on ``truncating``'s side, the padding's where not given ('pre' keeps
    the last words: chapter 11.4's pad_sequences(padding='post') with Keras' default truncating). Raises
    UserError for a cleaner this version does not know."""
    if info.get("clean") not in CLEANERS:
        raise UserError(f"data_info.json: unknown cleaner {info.get('clean')!r} (known: kim, html_breaks, none)")
    clean = CLEANERS[info.get("clean")]
    seqs = tokenizer.texts_to_sequences([clean(t) for t in texts])
    post = info.get("padding", "post") == "post"
    cut_end = info.get("truncating", info.get("padding", "post")) == "post"
    length = int(info.get("doc_length") or info["max_length"])  # chapter 7.2's classifier names it max_length
    x = np.zeros((len(seqs), length), dtype=np.int32)
    for row, seq in zip(x, seqs, strict=True):
        seq = seq[:length] if cut_end else seq[max(len(seq) - length, 0):]
        if seq:
            row[slice(0, len(seq)) if post else slice(length - len(seq), length)] = seq
    return x


def load_tokenizer(path: Path):
    """A classifier's ``tokenizer.json``: the project's :class:`dltm.text.Tokenizer`, or chapter 12's
    :class:`dltm.wordpiece.WordPieceEncoder` (``{"wordpiece": ...}``)."""
    config = read_json(path)
    if isinstance(config, dict) and "wordpiece" in config:
        from dltm.wordpiece import WordPieceEncoder

        return WordPieceEncoder(**config["wordpiece"])
    return Tokenizer.load(path)


@dataclass(frozen=True)
class Prediction:
    """One text's class: its label, the probability of that label, and the probability of every class."""

    label: str
    probability: float
    probabilities: dict[str, float]


class TextClassifier:
    """A trained text classifier that reads raw text: ``TextClassifier("models/ch07_kim_cnn").predict([...])``.

    Reads ``tokenizer.json`` and ``data_info.json`` of ``folder`` at once and ``model.keras`` when first needed.
    Raises MissingOutputError for a folder without ``model.keras`` and UserError for one without the tokenizer or
    data_info.json (not a text classifier, or trained by an older version), each with ``hint`` (what trains it).
    """

    def __init__(self, folder: str | Path, hint: str | None = None):
        self.folder = Path(folder)
        self.hint = hint or "train the task first"
        if not (self.folder / MODEL_FILE).is_file():
            raise MissingOutputError(f"{self.folder / MODEL_FILE}: missing; {self.hint}")
        for name in (TOKENIZER_FILE, DATA_INFO_FILE):
            if not (self.folder / name).is_file():
                raise UserError(f"{self.folder}: no {name} beside the model: not a text classifier, or trained by an "
                                f"older version; {self.hint}")
        self.info: dict[str, Any] = read_json(self.folder / DATA_INFO_FILE)
        self.tokenizer = load_tokenizer(self.folder / TOKENIZER_FILE)
        self.class_names: list[str] = [str(c) for c in self.info["class_names"]]
        self._model = None

    @property
    def model(self):
        """The Keras model (loaded on first use, with the project's custom objects registered)."""
        if self._model is None:
            import dltm.layers  # noqa: F401 -- layers a saved classifier may hold (chapter 12's BertInputs)
            from dltm.training import load_keras_model  # TensorFlow

            self._model = load_keras_model(self.folder / MODEL_FILE, self.hint, compile=False)
        return self._model

    def encode(self, texts: list[str], sources: list[str] | None = None) -> np.ndarray:
        """:func:`encode` with this model's tokenizer and settings: (len(texts), doc_length) int32.

        Raises UserError for an empty text and for a text none of whose words the model knows (it would see only
        padding), each named by ``sources`` (default "text <i>", counted from 1).
        """
        sources = sources or [f"text {i}" for i in range(1, len(texts) + 1)]
        for source, text in zip(sources, texts, strict=True):
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"{source}: empty text, nothing to classify")
        x = encode(texts, self.tokenizer, self.info)
        for source, text, row in zip(sources, texts, x, strict=True):
            if not row.any():
                raise UserError(f"{source}: no word of {text!r} is in the model's vocabulary, nothing to classify "
                                f"(the model would see an empty text)")
        return x

    def predict(self, texts: list[str], sources: list[str] | None = None) -> list[Prediction]:
        """A :class:`Prediction` per text. Raises what :meth:`encode` raises, and UserError for a model whose
        outputs are not numbers (a diverged model)."""
        x = self.encode(texts, sources)
        probs = np.asarray(self.model.predict(x, verbose=0), dtype=np.float64)
        if not np.isfinite(probs).all():
            raise UserError(f"{self.folder}: the model's outputs are not numbers (a diverged model); {self.hint}")
        names = self.class_names
        if probs.shape[-1] == 1:  # binary: the probability of class 1
            probs = np.concatenate([1 - probs, probs], axis=-1)
        out = []
        for row in probs:
            k = int(row.argmax())
            out.append(Prediction(names[k], float(row[k]), {n: float(p) for n, p in zip(names, row, strict=True)}))
        return out

    def example_text(self, words: int = 5) -> str:
        """A text made of the tokenizer's most frequent words that the model keeps (an input example)."""
        limit = self.tokenizer.num_words or math.inf
        known = [w for i, w in sorted(self.tokenizer.index_word.items())
                 if i < limit and w != self.tokenizer.oov_token]
        return " ".join(known[:words])


class LanguageModel:
    """A trained language model of chapter 8 that continues seed texts: ``model.keras`` and ``vocab.json`` of
    ``folder``, by characters (``ix_to_char``, ``seq_length``) or by words (``words``, PTB's ``<eos>``/``<unk>``).

    Raises MissingOutputError for a missing file and UserError for a vocab.json of neither kind.
    """

    def __init__(self, folder: str | Path, hint: str | None = None):
        self.folder = Path(folder)
        hint = hint or "train the task first"
        for name in (MODEL_FILE, VOCAB_FILE):
            if not (self.folder / name).is_file():
                raise MissingOutputError(f"{self.folder / name}: missing; {hint}")
        self.vocab_info: dict[str, Any] = read_json(self.folder / VOCAB_FILE)
        if "ix_to_char" in self.vocab_info:
            self.unit, self.vocab = "characters", list(self.vocab_info["ix_to_char"])
        elif "words" in self.vocab_info:
            self.unit, self.vocab = "words", list(self.vocab_info["words"])
        else:
            raise UserError(f"{self.folder / VOCAB_FILE}: neither ix_to_char nor words: not a language model")
        self.hint = hint
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import dltm.layers  # noqa: F401 -- layers a saved classifier may hold (chapter 12's BertInputs)
            from dltm.training import load_keras_model  # TensorFlow

            self._model = load_keras_model(self.folder / MODEL_FILE, self.hint, compile=False)
        return self._model

    def example_seed(self) -> str:
        """A seed text the model knows (an input example): the training's seed text, or three frequent words."""
        if self.unit == "characters":
            return str(self.vocab_info.get("seed_text") or self.vocab[0])
        special = {self.vocab_info.get("eos"), self.vocab_info.get("unk")}
        return " ".join([w for w in self.vocab if w not in special][:3])

    def generate(self, seed_text: str, length: int, temperature: float = 0.8, seed: int = 1) -> str:
        """``length`` characters or words after ``seed_text`` (words joined by spaces), each drawn from the model's
        next-unit distribution sharpened by ``temperature`` (0: greedy); the same ``seed`` gives the same text.

        Raises UserError for an empty seed text, a negative ``length`` or ``seed``, a temperature that is not a
        finite number >= 0, and (characters) seed characters outside the vocabulary, which it names. Unknown
        words become ``<unk>``, as PTB's reader makes them.
        """
        if not isinstance(seed_text, str) or not seed_text.strip():
            raise UserError("the seed text is empty: give at least one character to continue")
        if self.unit == "characters":
            missing = sorted(set(seed_text) - set(self.vocab))
            if missing:
                raise UserError(f"the seed text has characters the model's corpus lacks: {''.join(missing)!r}")
        try:
            if self.unit == "characters":
                from pipelines.ch08_rnn import sample  # the sampler stages.generate uses

                return sample(self.model, self.vocab, seed_text, int(length), float(temperature), int(seed),
                              window=int(self.vocab_info["seq_length"]))
            return " ".join(sample_words(self.model, self.vocab, seed_text.split(), int(length), float(temperature),
                                         int(seed), eos=self.vocab_info.get("eos", "<eos>"),
                                         unk=self.vocab_info.get("unk", "<unk>")))
        except ValueError as e:  # the checks of the samplers
            raise UserError(str(e)) from None


def draw(p: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """An index drawn from the distribution ``p`` sharpened (temperature < 1) or flattened (> 1); 0 is greedy.

    ``p ** (1 / T)`` is computed from the largest log-probability down, so a tiny T cannot give 0 / 0.
    """
    if temperature == 0:
        return int(np.argmax(p))
    logp = np.log(np.maximum(p, 1e-12))
    q = np.exp((logp - logp.max()) / temperature)
    return int(rng.choice(len(p), p=q / q.sum()))


def sample_words(model, vocab: list[str], seed_words: list[str], n_words: int, temperature: float = 1.0,
                 seed: int = 0, eos: str = "<eos>", unk: str = "<unk>") -> list[str]:
    """``n_words`` words after ``seed_words`` from a word-level language model that outputs logits over ``vocab``
    at every step (chapter 8's PTB model). Each step reads the last ``num_steps`` words (the model's input length;
    a shorter history is padded on the left with ``eos``, as if a sentence had just ended), from zero states;
    a model with a fixed batch size (stateful) gets the window in every row. Words outside ``vocab`` become
    ``unk`` (lower-cased first: PTB is). Raises ValueError for no seed words, a negative ``n_words`` or ``seed``,
    a temperature that is negative or not finite, and outputs that are not numbers (a diverged model).
    """
    import keras

    if not seed_words:
        raise ValueError("the seed text has no word: give at least one")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if n_words < 0 or seed < 0:
        raise ValueError(f"the length and the seed must be >= 0, got {n_words} and {seed}")
    word_to_id = {w: i for i, w in enumerate(vocab)}
    ids = [word_to_id.get(w.lower(), word_to_id[unk]) for w in seed_words]
    batch, steps = model.inputs[0].shape[0], model.inputs[0].shape[1]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_words):
        window = ids[-steps:] if steps else ids
        window = [word_to_id[eos]] * ((steps or len(window)) - len(window)) + window
        for layer in model.layers:  # zero states for every window
            if getattr(layer, "stateful", False):
                layer.reset_states()
        logits = keras.ops.convert_to_numpy(model(np.tile(np.asarray(window, np.int32), (batch or 1, 1)),
                                                  training=False)).astype(np.float64)[0, -1]
        if not np.isfinite(logits).all():
            raise ValueError("the model's next-word scores are not numbers (a diverged model): retrain")
        p = np.exp(logits - logits.max())
        k = draw(p / p.sum(), temperature, rng)
        ids.append(k)
        out.append(vocab[k])
    return out
