"""Text preprocessing the book relies on: Kim's ``clean_str`` and the Keras 2 ``Tokenizer``.

Keras 3 dropped the Keras 2 text-preprocessing module. :class:`Tokenizer` keeps its semantics exactly (book 7.1.1):

- ``fit_on_texts`` lower-cases, replaces every character of ``filters`` by ``split``, splits, and counts
  ``word_counts`` (first-seen order), ``word_docs`` and ``document_count``;
- ``word_index`` ranks words by count, ties by first appearance, from 1 (0 is padding); with ``oov_token`` the
  token takes index 1;
- ``texts_to_sequences`` drops unknown words, or maps them to ``oov_token``; with ``num_words`` only indices
  below ``num_words`` are kept (the rest are dropped or become ``oov_token``). The statistics ignore
  ``num_words``.

One deliberate difference: when the ``oov_token`` also occurs in the texts, Keras 2 ranked it a second time
among the words, so it lost index 1 and took its rank's index, which can be ``>= num_words`` (its sequences
then held indices the model's ``Embedding(num_words, ...)`` cannot look up). Here the token keeps index 1
and the words rank from 2, so every index of ``texts_to_sequences`` stays below ``num_words``.

How it maps to Keras 3's ``TextVectorization``: ``TextVectorization(max_tokens=num_words + 1,
standardize=<lower + strip filters>, split="whitespace", output_mode="int", vocabulary=<words by index>)``
gives the same ids only when ``oov_token`` is set, because TextVectorization always reserves index 1 for OOV
and never drops unknown words; it also pads or truncates to ``output_sequence_length``. The book's pipeline
drops unknown words, so dltm uses this class.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'

_CLEAN = [
    (re.compile(r"[^A-Za-z0-9(),!?\'\`]"), " "),
    (re.compile(r"\'s"), " 's"),
    (re.compile(r"\'ve"), " 've"),
    (re.compile(r"n\'t"), " n't"),
    (re.compile(r"\'re"), " 're"),
    (re.compile(r"\'d"), " 'd"),
    (re.compile(r"\'ll"), " 'll"),
    (re.compile(r","), " , "),
    (re.compile(r"!"), " ! "),
    # Kim's replacement strings " \( ", " \) ", " \? " keep the backslash: re.sub leaves unknown escapes as
    # they are. The Tokenizer's filters remove it again, but the cleaned text is kept byte-for-byte.
    (re.compile(r"\("), r" \\( "),
    (re.compile(r"\)"), r" \\) "),
    (re.compile(r"\?"), r" \\? "),
    (re.compile(r"\s{2,}"), " "),
]


def clean_str(string: str) -> str:
    """Kim (2014)'s tokenisation for MR (yoonkim/CNN_sentence, via the book's data_helpers.py)."""
    for pattern, repl in _CLEAN:
        string = pattern.sub(repl, string)
    return string.strip().lower()


class Tokenizer:
    """The Keras 2 ``Tokenizer`` (word level, or character level), reimplemented for Keras 3.

    >>> t = Tokenizer()
    >>> t.fit_on_texts(["Well done!", "Good work", "poor work"])
    >>> t.word_index["work"], t.texts_to_sequences(["good work, well done"])
    (1, [[3, 1, 4, 2]])
    """

    def __init__(self, num_words: int | None = None, filters: str = DEFAULT_FILTERS, lower: bool = True,
                 split: str = " ", char_level: bool = False, oov_token: str | None = None):
        if num_words is not None and (not isinstance(num_words, int) or num_words < 1):
            raise ValueError(f"num_words must be a positive integer or None, got {num_words!r}")
        if num_words == 1 and oov_token is not None:
            raise ValueError(f"num_words=1 leaves no index for oov_token={oov_token!r} (it has index 1, and every "
                             "index stays below num_words); use num_words >= 2")
        self.num_words = num_words
        self.filters = filters
        self.lower = lower
        self.split = split
        self.char_level = char_level
        self.oov_token = oov_token
        self.document_count = 0
        self.word_counts: dict[str, int] = {}
        self.word_docs: dict[str, int] = {}
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}
        self._table = str.maketrans({c: split for c in filters}) if filters else None

    # -- splitting ------------------------------------------------------------------------------------

    def text_to_word_sequence(self, text: str | list[str]) -> list[str]:
        if isinstance(text, list):
            return [w.lower() for w in text] if self.lower else list(text)
        if self.lower:
            text = text.lower()
        if self.char_level:
            return list(text)
        if self._table is not None:
            text = text.translate(self._table)
        return [w for w in text.split(self.split) if w]

    # -- fitting --------------------------------------------------------------------------------------

    def fit_on_texts(self, texts) -> None:
        counts = Counter(self.word_counts)
        docs = Counter(self.word_docs)
        for text in texts:
            self.document_count += 1
            seq = self.text_to_word_sequence(text)
            counts.update(seq)
            docs.update(dict.fromkeys(seq, 1))  # each word once per document, in first-seen order (not set order)
        # Counter keeps first-insertion order, as Keras 2's OrderedDict did: ties rank by first appearance.
        self.word_counts = dict(counts)
        self.word_docs = dict(docs)
        ranked = sorted(self.word_counts.items(), key=lambda kv: kv[1], reverse=True)
        # The oov_token keeps index 1 even where the texts hold it too (Keras 2 ranked it again; module docstring).
        vocab = ([] if self.oov_token is None else [self.oov_token]) + [w for w, _ in ranked if w != self.oov_token]
        self.word_index = dict(zip(vocab, range(1, len(vocab) + 1), strict=True))
        self.index_word = {i: w for w, i in self.word_index.items()}

    @property
    def index_docs(self) -> dict[int, int]:
        return {self.word_index[w]: c for w, c in self.word_docs.items()}

    # -- encoding -------------------------------------------------------------------------------------

    def texts_to_sequences(self, texts) -> list[list[int]]:
        index = self.word_index
        if self.num_words is not None:
            index = {w: i for w, i in index.items() if i < self.num_words}
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        if oov is None:
            return [[i for i in map(index.get, self.text_to_word_sequence(t)) if i is not None] for t in texts]
        return [[index.get(w, oov) for w in self.text_to_word_sequence(t)] for t in texts]

    def sequences_to_texts(self, sequences) -> list[str]:
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        out = []
        for seq in sequences:
            words = []
            for i in seq:
                i = int(i)
                if self.num_words is not None and i >= self.num_words:
                    i = oov
                w = self.index_word.get(i) if i is not None else None
                if w is not None:
                    words.append(w)
                elif oov is not None:
                    words.append(self.oov_token)
            out.append(" ".join(words))
        return out

    # -- serialisation --------------------------------------------------------------------------------

    def get_config(self) -> dict:
        return {
            "num_words": self.num_words, "filters": self.filters, "lower": self.lower, "split": self.split,
            "char_level": self.char_level, "oov_token": self.oov_token, "document_count": self.document_count,
            "word_counts": list(self.word_counts.items()), "word_docs": self.word_docs,
            "word_index": self.word_index,
        }

    @classmethod
    def from_config(cls, config: dict) -> Tokenizer:
        t = cls(num_words=config["num_words"], filters=config["filters"], lower=config["lower"],
                split=config["split"], char_level=config["char_level"], oov_token=config["oov_token"])
        t.document_count = config["document_count"]
        t.word_counts = dict((w, int(c)) for w, c in config["word_counts"])
        t.word_docs = {w: int(c) for w, c in config["word_docs"].items()}
        t.word_index = {w: int(i) for w, i in config["word_index"].items()}
        t.index_word = {i: w for w, i in t.word_index.items()}
        return t

    def to_json(self) -> str:
        return json.dumps(self.get_config(), ensure_ascii=False)

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        path = Path(path)
        try:
            return cls.from_config(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a dltm tokenizer file ({e})") from None


def pad_post(sequences, maxlen: int | None = None) -> np.ndarray:
    """The book's ``pad_sequences(..., maxlen=longest, padding='post')``: zeros after each sequence."""
    from keras.utils import pad_sequences

    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    return pad_sequences(sequences, maxlen=maxlen, padding="post", truncating="post", dtype="int32")


def restrict_vocab(padded: np.ndarray, num_words: int | None) -> np.ndarray:
    """Re-encode post-padded full-vocabulary sequences as ``Tokenizer(num_words)`` would have encoded them.

    Keras 2 drops words whose index is >= num_words, so sequences shrink and the padded length becomes the
    longest remaining sequence. Equal to ``pad_post(Tokenizer(num_words).texts_to_sequences(texts))``.
    """
    padded = np.asarray(padded)
    if num_words is None:
        return padded
    keep = (padded > 0) & (padded < num_words)
    lengths = keep.sum(axis=1)
    out = np.zeros((padded.shape[0], int(lengths.max(initial=0))), dtype=padded.dtype)
    # stable argsort puts kept positions first, in order
    order = np.argsort(~keep, axis=1, kind="stable")[:, : out.shape[1]]
    gathered = np.take_along_axis(padded, order, axis=1)
    mask = np.arange(out.shape[1])[None, :] < lengths[:, None]
    out[mask] = gathered[mask]
    return out


def jieba():
    """The jieba module (Sun 2012: Chinese word segmentation), its "Building prefix dict ..." log lines off, as
    chapters 10-13 segment Chinese with it (``dltm.translation.split_words``, ``dltm.spans.segment``)."""
    import logging

    import jieba as module

    module.setLogLevel(logging.WARNING)
    return module
