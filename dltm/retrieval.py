"""Retrieval by document vectors (book chapter 14): the tokenization of gensim's IMDB tutorial, repeatable
gensim seeding, nearest neighbours by cosine, precision@k of same-label neighbours, a TF-IDF baseline, and the
searcher behind ``python -m stages.search``.

Where no relevance judgments exist (IMDB has none), a neighbour counts as relevant when it has the query's
sentiment label: precision@k is then the share of a query review's k nearest reviews with its label, averaged
over the queries. It measures how much of the vectors' geometry follows the label, not ad-hoc retrieval quality.
"""

from __future__ import annotations

import contextlib
import functools
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm.cli import MissingOutputError, UserError
from dltm.io import read_json

_PUNCT = re.compile(r'([.",()!?;:])')


def is_punctuation(token: str) -> bool:
    """Whether ``token`` is one of the marks :func:`review_words` splits off as tokens (. " , ( ) ! ? ; :)."""
    return _PUNCT.fullmatch(token) is not None


def review_words(text: str) -> list[str]:
    """The tokens of one review as gensim's doc2vec-IMDB notebook (gensim 3.x, ``normalize_text``) makes them:
    lower case, HTML line breaks as spaces, the marks . " , ( ) ! ? ; : split off as tokens, then whitespace.

    >>> review_words('A <br />tense thriller, with "a twist"!')
    ['a', 'tense', 'thriller', ',', 'with', '"', 'a', 'twist', '"', '!']
    """
    return _PUNCT.sub(r" \1 ", text.lower().replace("<br />", " ")).split()


SENTENCE_END = frozenset({".", "!", "?"})
PAD, UNK, EOS = 0, 1, 2
"""The reserved ids of a sentence encoder's vocabulary (chapter 14's skip-thought model): padding (masked),
unknown word, end of sentence (also the decoders' first input, as Kiros et al.'s decoders start from a zero
word)."""


def review_sentences(text: str, max_words: int) -> list[list[str]]:
    """A review's sentences in order: :func:`review_words` split after each . ! or ?, each cut to its first
    ``max_words`` tokens; empty ones dropped.

    >>> review_sentences("Great film. Really!<br />Loved it", 10)
    [['great', 'film', '.'], ['really', '!'], ['loved', 'it']]
    """
    out, cur = [], []
    for w in review_words(text):
        cur.append(w)
        if w in SENTENCE_END:
            out.append(cur[:max_words])
            cur = []
    if cur:
        out.append(cur[:max_words])
    return [s for s in out if s]


def encode_sentences(sentences: list[list[str]], vocab: dict[str, int], length: int) -> np.ndarray:
    """(n, length) int32 word ids, padded with PAD after the words (unknown words are UNK)."""
    x = np.zeros((len(sentences), length), dtype=np.int32)
    for i, s in enumerate(sentences):
        ids = [vocab.get(w, UNK) for w in s[:length]]
        x[i, :len(ids)] = ids
    return x


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (CRC-32). gensim 4 draws a model's starting vectors
    from its ``seed``, but an inferred document's from ``hashfxn(its words)``, whose default, Python's ``hash()``,
    changes per process (PYTHONHASHSEED)."""
    return zlib.crc32(text.encode("utf-8"))


@contextlib.contextmanager
def repeatable_inference():
    """``Doc2Vec.infer_vector`` with the starting vector seeded by :func:`stable_hash` of the words, not by
    Python's per-process ``hash()`` (gensim 4 offers no argument for it), so that one worker and one seed give
    the same inferred vectors in every run. Patches ``gensim.models.doc2vec.pseudorandom_weak_vector`` for the
    duration of the block."""
    from gensim.models import doc2vec

    original = doc2vec.pseudorandom_weak_vector
    doc2vec.pseudorandom_weak_vector = functools.partial(original, hashfxn=stable_hash)
    try:
        yield
    finally:
        doc2vec.pseudorandom_weak_vector = original


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` (n, d) with each row scaled to length 1 (a zero row stays zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def nearest(queries: np.ndarray, corpus: np.ndarray, k: int, exclude: np.ndarray | None = None,
            chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``corpus`` (n, d) nearest each of ``queries`` (q, d) by cosine, best first: indices (q, k)
    and similarities (q, k). ``exclude[i]`` (q,): a corpus row left out for query i (the query itself when it
    is in the corpus), or -1. Dense arrays or scipy sparse rows (TF-IDF); computed ``chunk`` queries at a time.

    Raises ValueError when the corpus has fewer than ``k`` (+1 with ``exclude``) rows."""
    n = corpus.shape[0]
    if n < k + (exclude is not None):
        raise ValueError(f"the corpus has {n} rows, fewer than the {k} neighbours asked for")
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    sparse = hasattr(corpus, "tocsr")
    c = corpus if sparse else unit_rows(corpus)
    for start in range(0, queries.shape[0], chunk):
        q = queries[start:start + chunk]
        s = (q @ c.T).toarray() if sparse else unit_rows(q) @ c.T
        s = np.asarray(s, dtype=np.float32)
        if exclude is not None:
            rows = np.arange(len(s))
            ex = exclude[start:start + chunk]
            s[rows[ex >= 0], ex[ex >= 0]] = -np.inf
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        idx[start:start + len(s)] = np.take_along_axis(top, order, axis=1)
        sims[start:start + len(s)] = np.take_along_axis(s, idx[start:start + len(s)], axis=1)
    return idx, sims


def precision_at_k(neighbour_labels: np.ndarray, query_labels: np.ndarray) -> float:
    """The mean over queries of the share of their neighbours (q, k) that have the query's label (q,)."""
    return float(np.mean(neighbour_labels == np.asarray(query_labels)[:, None]))


def tfidf_matrix(texts: list[str], fit_on: list[str]):
    """TF-IDF rows (L2-normalised, scipy sparse) of ``texts`` with the vocabulary and IDF of ``fit_on``
    (scikit-learn's TfidfVectorizer on :func:`review_words`' tokens, sublinear tf, words in 2+ documents)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(tokenizer=review_words, lowercase=False, token_pattern=None, min_df=2,
                                 sublinear_tf=True)
    vectorizer.fit(fit_on)
    return vectorizer.transform(texts)


# ------------------------------------------------------------------------------------------------------------
# The searcher of `python -m stages.search`: a query text -> the nearest documents of a saved collection
# ------------------------------------------------------------------------------------------------------------

SEARCH_DIR = "search"
"""models/<task>/search/: collection.json (the documents' names, labels and where their text is), vectors.npy
(one unit row per document) and the task's query encoder."""


@dataclass
class Hit:
    rank: int
    similarity: float
    label: str
    name: str
    text: str


class Collection:
    """The documents a task searches: ``vectors.npy`` (n, d) unit rows, ``collection.json`` ({"names": [...],
    "labels": [...], "class_names": [...]}) and ``texts.json`` (the texts, read when first searched)."""

    def __init__(self, folder: Path, hint: str):
        self.folder = Path(folder)
        meta = self.folder / "collection.json"
        if not meta.is_file() or not (self.folder / "vectors.npy").is_file():
            raise MissingOutputError(f"{meta}: missing; {hint}")
        info = read_json(meta)
        self.names: list[str] = info["names"]
        self.labels = np.asarray(info["labels"])
        self.class_names: list[str] = info["class_names"]
        self.vectors = np.load(self.folder / "vectors.npy")
        self._texts: list[str] | None = None
        if len(self.names) != len(self.vectors):
            raise UserError(f"{self.folder}: {len(self.names)} names for {len(self.vectors)} vectors; re-run the "
                            f"stage that wrote it")

    def texts(self) -> list[str]:
        if self._texts is None:
            self._texts = read_json(self.folder / "texts.json")
        return self._texts

    def search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` documents nearest ``query_vector`` (d,) by cosine, best first."""
        k = min(k, len(self.names))
        idx, sims = nearest(np.asarray(query_vector, dtype=np.float32)[None], self.vectors, k)
        texts = self.texts()
        return [Hit(r + 1, float(s), self.class_names[int(self.labels[i])], self.names[i], texts[i])
                for r, (i, s) in enumerate(zip(idx[0], sims[0], strict=True))]


class ParagraphVectorSearch:
    """Search a :class:`Collection` with a query text (``python -m stages.search``, the MLflow pyfunc): the
    query's PV-DBOW vector inferred by the gensim Doc2Vec model saved beside the collection
    (``doc2vec.model``), then the nearest documents by cosine. ``folder``: models/<task>/search/.

    Raises MissingOutputError (with ``hint``) for a folder without the collection or the model, and UserError
    for an empty query or one without a word of the model's vocabulary (punctuation aside)."""

    MODEL_FILE = "doc2vec.model"

    def __init__(self, folder: str | Path, hint: str = "run the stage that trains it first"):
        from gensim.models.doc2vec import Doc2Vec

        self.collection = Collection(Path(folder), hint)
        path = Path(folder) / self.MODEL_FILE
        if not path.is_file():
            raise MissingOutputError(f"{path}: missing; {hint}")
        self.model = Doc2Vec.load(str(path))

    def vector(self, query: str) -> np.ndarray:
        words = review_words(query)
        if not query.strip():
            raise UserError("the query is empty")
        if not any(w in self.model.wv.key_to_index and not is_punctuation(w) for w in words):
            raise UserError(f"none of the query's words is in the model's vocabulary ({len(self.model.wv)} words "
                            f"of the training reviews, min_count {self.model.min_count}); try other words")
        with repeatable_inference():
            return self.model.infer_vector(words)

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The ``k`` documents nearest ``query``, best first."""
        return self.collection.search(self.vector(query), k)


class SkipThoughtSearch:
    """Search a :class:`Collection` of reviews with a query text by skip-thought vectors (Kiros et al. 2015,
    book 14.2.2): a text's vector is the mean of its sentences' encoder states (:func:`text_vectors`), the
    query's as the collection's. ``folder``: models/<task>/search/, holding the collection, the Keras encoder
    (``encoder.keras``: word ids (batch, max_words) -> states (batch, hidden)) and ``skip_thought.json``
    ({"vocabulary": {word: id}, "max_words": n}).

    Raises MissingOutputError (with ``hint``) for a folder without the collection, the encoder or the
    vocabulary; UserError (with ``hint``) for an unreadable encoder or vocabulary, and for an empty query or one
    without a word of the vocabulary (punctuation aside) among the first ``max_words`` of its sentences."""

    ENCODER_FILE = "encoder.keras"
    VOCAB_FILE = "skip_thought.json"

    def __init__(self, folder: str | Path, hint: str = "run the stage that trains it first"):
        folder = Path(folder)
        self.collection = Collection(folder, hint)
        if not (folder / self.VOCAB_FILE).is_file():
            raise MissingOutputError(f"{folder / self.VOCAB_FILE}: missing; {hint}")
        from dltm.training import load_keras_model

        self.encoder = load_keras_model(folder / self.ENCODER_FILE, hint, compile=False)
        try:
            info = read_json(folder / self.VOCAB_FILE)
            self.vocabulary: dict[str, int] = dict(info["vocabulary"])
            self.max_words: int = int(info["max_words"])
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{folder / self.VOCAB_FILE}: not a skip-thought vocabulary ({type(e).__name__}: {e}); "
                            f"{hint}") from None

    def vector(self, query: str) -> np.ndarray:
        if not query.strip():
            raise UserError("the query is empty")
        kept = [w for s in review_sentences(query, self.max_words) for w in s]  # the words the encoder reads
        if not any(w in self.vocabulary and not is_punctuation(w) for w in kept):
            raise UserError(f"none of the query's words is in the encoder's vocabulary ({len(self.vocabulary)} "
                            f"words of the training sentences); try other words")
        return text_vectors(self.encoder, [query], self.vocabulary, self.max_words)[0]

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The ``k`` documents nearest ``query``, best first."""
        return self.collection.search(self.vector(query), k)


def sentence_vectors(encoder, sentences: list[list[str]], vocab: dict[str, int], length: int,
                     batch_size: int = 512) -> np.ndarray:
    """A Keras sentence ``encoder``'s vectors (n, hidden) float32 of tokenized ``sentences`` (each cut to
    ``length`` words, unknown words as UNK)."""
    x = encode_sentences(sentences, vocab, length)
    return np.asarray(encoder.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def text_vectors(encoder, texts: list[str], vocab: dict[str, int], max_words: int, chunk: int = 2000,
                 batch_size: int = 512) -> np.ndarray:
    """One vector per text (n, hidden) float32: the mean of the sentence ``encoder``'s vectors of its sentences
    (:func:`review_sentences`), ``chunk`` texts at a time; a text without a sentence gets zeros. The mean of
    sentence vectors is how a paragraph gets one skip-thought vector: Kiros et al. encode sentences only."""
    out = np.zeros((len(texts), encoder.output_shape[-1]), dtype=np.float32)
    for start in range(0, len(texts), chunk):
        sentences = [review_sentences(t, max_words) for t in texts[start:start + chunk]]
        counts = np.array([len(s) for s in sentences])
        has = np.flatnonzero(counts)  # texts with a sentence; the others keep their zeros
        if has.size:
            vectors = sentence_vectors(encoder, [w for s in sentences for w in s], vocab, max_words, batch_size)
            offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])[has]
            out[start + has] = np.add.reduceat(vectors, offsets, axis=0) / counts[has, None]
    return out


def open_searcher(folder: str | Path, hint: str = "run the stage that trains it first"):
    """The searcher of a models/<task>/search/ folder whose task is not known (an MLflow Model's artifact):
    :class:`SkipThoughtSearch` where it holds a Keras encoder, else :class:`ParagraphVectorSearch`. Raises as
    they do."""
    folder = Path(folder)
    if (folder / SkipThoughtSearch.ENCODER_FILE).is_file():
        return SkipThoughtSearch(folder, hint)
    return ParagraphVectorSearch(folder, hint)


def write_collection(folder: Path, vectors: np.ndarray, names: list[str], labels: np.ndarray,
                     class_names: list[str], texts: list[str]) -> None:
    """Write what :class:`Collection` reads into ``folder`` (created)."""
    from dltm.io import write_json

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", unit_rows(vectors))
    write_json(folder / "collection.json", {"names": names, "labels": [int(v) for v in labels],
                                            "class_names": class_names})
    write_json(folder / "texts.json", texts)


def snippet(text: str, width: int = 160) -> str:
    """The first ``width`` characters of ``text`` on one line, with an ellipsis when cut."""
    one = " ".join(text.split())
    return one if len(one) <= width else one[:width - 1].rstrip() + "…"


def describe(hits: list[Hit]) -> list[dict[str, Any]]:
    return [{"rank": h.rank, "similarity": round(h.similarity, 4), "label": h.label, "name": h.name,
             "text": snippet(h.text)} for h in hits]
