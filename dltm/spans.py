"""Extractive reading comprehension data (SQuAD's format, CMRC 2018's data) and span decoding, for chapter 13.3.

A SQuAD-style file (Rajpurkar et al. 2016; CMRC 2018, Cui et al. 2019, uses the same layout) holds articles of
paragraphs, each a ``context`` with questions, each with reference ``answers`` (``text`` and ``answer_start``,
a character offset). A reader predicts an answer as a span of the context's tokens.

The ``prepare_cmrc2018`` stage (``python -m stages.prepare cmrc2018``) segments every context and question into
words (jieba, Sun 2012, precise mode: chapter 10's segmentation) with each word's character offsets, finds each
training answer's word span (:func:`char_span_to_tokens`; an ``answer_start`` that misses its text is searched
for, :func:`dltm.qa_metrics.locate_answer`), and writes data/prepared/cmrc2018/{train,dev}.json and info.json.

:class:`SpanVocabulary` maps words and characters to ids, :func:`encode` turns examples into the model's four
arrays, :func:`best_spans` decodes the start/end probabilities under a maximum answer length, and
:class:`SpanReader` answers a question about a text with a trained model (``stages.answer``, the MLflow pyfunc).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm import params as P
from dltm.cli import MissingOutputError, UserError
from dltm.io import atomic_path, read_json, write_json
from dltm.qa_metrics import locate_answer

SPLIT_FILES = {"cmrc2018": {"train": "cmrc2018_train.json", "dev": "cmrc2018_dev.json"}}
"""The raw files of each dataset's splits (data/raw/<dataset>/)."""
PARAMS = {"max_questions": P.Int(1, null=True)}
"""``prepare.cmrc2018``: at most this many questions per split (null: all; a cap for quick runs)."""
READER_FILE = "reader.json"
"""Beside a reader's model.keras: its vocabulary, shapes and decoding settings (:class:`SpanReader`)."""
PAD, UNKNOWN = 0, 1


@dataclass
class Tokens:
    """A text's words and their character offsets: ``text[starts[i]:ends[i]] == words[i]``."""

    words: list[str]
    starts: list[int]
    ends: list[int]


def segment(text: str) -> Tokens:
    """Words of a Chinese (or mixed) text by jieba's precise mode with the HMM for unknown words, whitespace
    dropped, with offsets."""
    from dltm.text import jieba

    words, starts, ends = [], [], []
    for word, start, end in jieba().tokenize(text):
        if word.strip():
            words.append(word)
            starts.append(start)
            ends.append(end)
    return Tokens(words, starts, ends)


def char_span_to_tokens(tokens: Tokens, start: int, end: int) -> tuple[int, int] | None:
    """The first and last word (inclusive) that characters [start, end) overlap; None when none does. A word
    that only partly overlaps counts (jieba may join an answer's edge to the next character): the span then
    reads a little more than the answer."""
    first = next((i for i, e in enumerate(tokens.ends) if e > start), None)
    last = next((i for i in range(len(tokens.starts) - 1, -1, -1) if tokens.starts[i] < end), None)
    if first is None or last is None or last < first:
        return None
    return first, last


def read_squad(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The paragraphs of a SQuAD-style file: [{context, qas: [{id, question, answers: [{text, answer_start}]}]}].
    Raises MissingOutputError when missing, UserError naming the file and field when the layout differs."""
    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{path.parent.name}` first")
    layout = "{data: [{paragraphs: [{context, qas: [{id, question, answers: [{text, answer_start}]}]}]}]}"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        paragraphs = [p for article in doc["data"] for p in article["paragraphs"]]
        for p in paragraphs:
            if not isinstance(p["context"], str):
                raise TypeError("a context is not a string")
            for qa in p["qas"]:
                qa["id"], qa["question"]  # noqa: B018 -- each must exist
                answers = qa["answers"]
                if not isinstance(answers, list) or not answers:
                    raise TypeError(f"question {qa['id']}: answers must be a non-empty list")
                for a in answers:
                    if not isinstance(a, dict) or not isinstance(a.get("text"), (str, int, float)):
                        raise TypeError(f"question {qa['id']}: an answer without a text")
    except (ValueError, KeyError, TypeError) as e:  # UnicodeDecodeError and JSON's errors are ValueErrors
        raise UserError(f"{path}: not SQuAD's layout {layout} ({type(e).__name__}: {e})") from None
    if not any(p["qas"] for p in paragraphs):
        raise UserError(f"{path}: no question in it")
    return paragraphs


def prepare_split(paragraphs: list[dict[str, Any]], max_questions: int | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Segmented paragraphs, each question with its reference texts and the word span of its first answer found
    in the context (``span`` None when none is), and counts of what was found."""
    out, counts = [], Counter()
    for p in paragraphs:
        if max_questions is not None and counts["questions"] >= max_questions:
            break
        context = p["context"]
        tokens = segment(context)
        qas = []
        for qa in p["qas"]:
            if max_questions is not None and counts["questions"] >= max_questions:
                break
            counts["questions"] += 1
            texts = [str(a["text"]) for a in qa["answers"]]
            span = None
            for a in qa["answers"]:
                text = str(a["text"]).strip()
                if not text:
                    continue
                given = a.get("answer_start")
                start = locate_answer(context, text, given if isinstance(given, int) else None)
                if start is None:
                    continue
                counts["answer_start_corrected"] += int(start != given)
                span = char_span_to_tokens(tokens, start, start + len(text))
                if span is not None:
                    break
            counts["located" if span is not None else "not_located"] += 1
            qas.append({"id": str(qa["id"]), "question": segment(str(qa["question"])).words, "answers": texts,
                        "span": list(span) if span else None})
        out.append({"context": context, "words": tokens.words, "starts": tokens.starts, "ends": tokens.ends,
                    "qas": qas})
    counts["paragraphs"] = len(out)
    return out, dict(counts)


def prepare_cmrc2018(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]
                     ) -> dict[str, Any]:
    """Segment CMRC 2018's train and dev files into ``out_dir`` (see the module docstring)."""
    raw_dir = Path(raw_dir)
    cap = params.get("max_questions")
    summary: dict[str, Any] = {}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for split, name in SPLIT_FILES[raw_dir.name].items():
            paragraphs, counts = prepare_split(read_squad(raw_dir / name), cap)
            write_json(tmp / f"{split}.json", paragraphs)
            lengths = [len(p["words"]) for p in paragraphs]
            summary[split] = {**counts, "median_context_words": float(np.median(lengths)),
                              "max_context_words": int(max(lengths))}
        write_json(tmp / "info.json", summary)
    return summary


def load_split(prepared: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    path = Path(prepared) / f"{split}.json"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro prepare_{Path(prepared).name}` first")
    return read_json(path)


@dataclass
class SpanVocabulary:
    """Word and character ids (0 pad, 1 unknown) and the shapes :func:`encode` pads to: ``context_words`` (a
    longer context is cut there), ``question_words``, ``word_chars`` (characters kept per word)."""

    words: list[str]
    chars: list[str]
    context_words: int
    question_words: int
    word_chars: int

    @classmethod
    def build(cls, paragraphs: list[dict[str, Any]], max_words: int, min_count: int, context_words: int,
              question_words: int, word_chars: int) -> SpanVocabulary:
        """From training paragraphs: the ``max_words`` most frequent words seen at least ``min_count`` times in
        contexts and questions, every character seen ``min_count`` times."""
        words, chars = Counter(), Counter()
        for p in paragraphs:
            words.update(p["words"])
            for qa in p["qas"]:
                words.update(qa["question"])
        for w, n in words.items():
            for c in w:
                chars[c] += n
        kept = [w for w, n in words.most_common(max_words) if n >= min_count]
        kept_chars = sorted(c for c, n in chars.items() if n >= min_count)
        return cls(["<pad>", "<unk>", *kept], ["<pad>", "<unk>", *kept_chars], context_words, question_words,
                   word_chars)

    def to_json(self) -> dict[str, Any]:
        return {"words": self.words, "chars": self.chars, "context_words": self.context_words,
                "question_words": self.question_words, "word_chars": self.word_chars}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SpanVocabulary:
        return cls(list(d["words"]), list(d["chars"]), int(d["context_words"]), int(d["question_words"]),
                   int(d["word_chars"]))

    def _maps(self) -> tuple[dict[str, int], dict[str, int]]:
        if not hasattr(self, "_word_index"):
            self._word_index = {w: i for i, w in enumerate(self.words)}
            self._char_index = {c: i for i, c in enumerate(self.chars)}
        return self._word_index, self._char_index

    def encode_words(self, words: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        """(length,) word ids and (length, word_chars) char ids of ``words``, cut or zero-padded to ``length``."""
        wi, ci = self._maps()
        ids = np.zeros(length, np.int32)
        chars = np.zeros((length, self.word_chars), np.int32)
        for i, w in enumerate(words[:length]):
            ids[i] = wi.get(w, UNKNOWN)
            for j, c in enumerate(w[:self.word_chars]):
                chars[i, j] = ci.get(c, UNKNOWN)
        return ids, chars


INPUT_NAMES = ("context_words", "context_chars", "question_words", "question_chars")


def encode(vocab: SpanVocabulary, items: list[tuple[list[str], list[str]]]) -> dict[str, np.ndarray]:
    """(context words, question words) pairs -> the reader's inputs by name: context_words (n, T), context_chars
    (n, T, W), question_words (n, J), question_chars (n, J, W)."""
    n, t, j, w = len(items), vocab.context_words, vocab.question_words, vocab.word_chars
    out = {"context_words": np.zeros((n, t), np.int32), "context_chars": np.zeros((n, t, w), np.int32),
           "question_words": np.zeros((n, j), np.int32), "question_chars": np.zeros((n, j, w), np.int32)}
    for i, (context, question) in enumerate(items):
        out["context_words"][i], out["context_chars"][i] = vocab.encode_words(context, t)
        out["question_words"][i], out["question_chars"][i] = vocab.encode_words(question, j)
    return out


def examples(paragraphs: list[dict[str, Any]], vocab: SpanVocabulary, train: bool
             ) -> tuple[dict[str, np.ndarray], np.ndarray, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """The inputs (:func:`encode`), the gold spans (n, 2) word indices (start, end inclusive) and each example's
    (paragraph, question). ``train``: only questions whose answer was located and ends within ``context_words``
    (the others cannot be learned); otherwise every question, its span (-1, -1) when not located or cut off."""
    items, spans, refs = [], [], []
    for p in paragraphs:
        for qa in p["qas"]:
            span = qa["span"]
            inside = span is not None and span[1] < vocab.context_words
            if train and not inside:
                continue
            items.append((p["words"], qa["question"]))
            spans.append(span if inside else (-1, -1))
            refs.append((p, qa))
    return encode(vocab, items), np.asarray(spans, np.int32).reshape(-1, 2), refs


def best_spans(p_start: np.ndarray, p_end: np.ndarray, max_answer_words: int) -> tuple[np.ndarray, np.ndarray]:
    """The span (i, j), i <= j < i + max_answer_words, of the highest p_start[i] * p_end[j], per example:
    p_start, p_end (n, T) probabilities -> spans (n, 2) int and scores (n,) (that product). Seo et al. (2017),
    section 2.6, decode the same way (their answers are not capped; CMRC's are short: the cap keeps a long
    passage from pairing a start with a far-off end)."""
    n, t = p_start.shape
    best = np.full(n, -1.0)
    spans = np.zeros((n, 2), np.int64)
    for d in range(min(max_answer_words, t)):
        scores = p_start[:, :t - d] * p_end[:, d:]  # span (i, i + d)
        i = scores.argmax(axis=1)
        s = scores[np.arange(n), i]
        better = s > best
        best[better], spans[better, 0], spans[better, 1] = s[better], i[better], i[better] + d
    return spans, best


def span_text(paragraph: dict[str, Any], start: int, end: int) -> str:
    """The context's characters from word ``start``'s first to word ``end``'s last."""
    if not paragraph["words"]:
        return ""
    last = len(paragraph["words"]) - 1
    start, end = min(start, last), min(end, last)
    return paragraph["context"][paragraph["starts"][start]:paragraph["ends"][end]]


@dataclass
class Answer:
    answer: str
    score: float
    """p_start * p_end of the span."""
    start: int
    """The answer's first character in the context."""
    context_cut: bool = False
    """Whether the context had more words than the reader reads (``context_words``): the rest was not searched."""


class SpanReader:
    """A trained reader in ``folder`` (model.keras and :data:`READER_FILE`): :meth:`answer` a question about a
    context. Raises MissingOutputError (with ``hint``) when the folder lacks them."""

    def __init__(self, folder: str | os.PathLike, hint: str | None = None):
        folder = Path(folder)
        path = folder / READER_FILE
        if not path.is_file():
            raise MissingOutputError(f"{path}: missing" + (f"; {hint}" if hint else ""))
        try:
            info = read_json(path)
            self.vocab = SpanVocabulary.from_json(info["vocabulary"])
            self.max_answer_words = int(info["max_answer_words"])
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path}: not a reader's {READER_FILE} ({type(e).__name__}: {e})"
                            + (f"; {hint}" if hint else "")) from None
        self.folder, self.example, self._model = folder, info.get("example", {}), None

    @property
    def model(self):
        if self._model is None:
            import dltm.reading  # noqa: F401 -- registers the reader's layers
            from dltm.training import MODEL_FILE, load_keras_model

            self._model = load_keras_model(self.folder / MODEL_FILE, compile=False)
        return self._model

    def answer(self, pairs: list[tuple[str, str]]) -> list[Answer]:
        """The best span of each (context, question) pair, within the context's first ``vocab.context_words``
        words and the question's first ``vocab.question_words`` (the model's input sizes; :attr:`Answer.
        context_cut` says when a context was longer). Raises UserError for an empty context or question."""
        paragraphs, items = [], []
        for i, (context, question) in enumerate(pairs, 1):
            if not str(context).strip() or not str(question).strip():
                raise UserError(f"pair {i}: the context and the question must both be non-empty text")
            tokens = segment(str(context))
            paragraphs.append({"context": str(context), "words": tokens.words, "starts": tokens.starts,
                               "ends": tokens.ends})
            items.append((tokens.words, segment(str(question)).words))
        probs = np.asarray(self.model.predict(encode(self.vocab, items), verbose=0, batch_size=64))
        spans, scores = best_spans(probs[:, 0], probs[:, 1], self.max_answer_words)
        out = []
        for p, (s, e), score in zip(paragraphs, spans, scores, strict=True):
            last = len(p["words"]) - 1
            out.append(Answer(span_text(p, int(s), int(e)), float(score), p["starts"][min(int(s), last)],
                              len(p["words"]) > self.vocab.context_words))
        return out
