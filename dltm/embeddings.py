"""Word vectors: the evaluation every embedding gets (book 6; issue 4) and the embedding matrix a text model
takes from them (chapter 7's static, non-static and multichannel CNNs).

Vectors are gensim ``KeyedVectors``, read from and written to the word2vec text format, so the Keras SGNS
model, gensim's Word2Vec, GloVe and pretrained files all go through the same functions.

- :func:`analogy_accuracy`: questions-words.txt (king - man + woman = queen) per section and in total, over
  the ``restrict_vocab`` most frequent words as gensim does it;
- :func:`word_pair_correlations`: Spearman's rho on WordSim-353 and SimLex-999 (both ship inside gensim);
- :func:`nearest_neighbours`: by cosine similarity (the book printed raw dot products);
- :func:`projection_png`: a 2-D PCA picture of the most frequent words;
- :func:`embedding_matrix`: rows for a tokenizer's word_index, unknown words drawn from U(-a, a) as Kim did,
  and how many words the vectors cover.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dltm.cli import MissingOutputError
from dltm.io import atomic_path

PAIR_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def keyed_vectors(words: list[str], vectors: np.ndarray):
    """KeyedVectors from a word list (most frequent first) and a (len(words), dim) matrix."""
    from gensim.models import KeyedVectors

    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(words) != len(vectors):
        raise ValueError(f"keyed_vectors: {len(words)} words but vectors of shape {vectors.shape}")
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(words, vectors)
    for i, w in enumerate(words):  # the word2vec format stores words by descending count
        kv.set_vecattr(w, "count", len(words) - i)
    return kv


def save_word2vec(kv, path: str | os.PathLike) -> Path:
    """The word2vec text format ('<count> <dim>' then '<word> <v1> ... <vdim>'), written atomically."""
    with atomic_path(path, suffix=".txt") as tmp:
        kv.save_word2vec_format(str(tmp), binary=False)
    return Path(path)


def load_word2vec(path: str | os.PathLike, limit: int | None = None, no_header: bool = False):
    """Vectors in the word2vec text format; ``no_header`` for GloVe's files (no '<count> <dim>' line)."""
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: no such vectors file")
    try:
        return KeyedVectors.load_word2vec_format(str(path), binary=False, limit=limit, no_header=no_header)
    except (ValueError, UnicodeDecodeError) as e:
        hint = "" if no_header else " (a GloVe file has no header line: pass no_header=True)"
        raise ValueError(f"{path}: not a word2vec text file{hint}: {e}") from None


def analogy_accuracy(kv, questions: str | os.PathLike, restrict_vocab: int = 30_000) -> dict[str, Any]:
    """Accuracy on the analogy questions whose four words are among the ``restrict_vocab`` most frequent.

    Returns ``analogy_accuracy`` (all sections), ``analogy_semantic``/``analogy_syntactic`` (sections
    without / with the 'gram' prefix), ``analogy_questions`` (how many were covered) and per-section values."""
    import logging

    logging.getLogger("gensim").setLevel(logging.WARNING)
    _, sections = kv.evaluate_word_analogies(str(questions), restrict_vocab=restrict_vocab, case_insensitive=True)
    out: dict[str, Any] = {}
    groups: dict[str, list[int]] = {"semantic": [0, 0], "syntactic": [0, 0]}
    total = [0, 0]
    for sec in sections:
        if sec["section"] == "Total accuracy":
            continue
        right, wrong = len(sec["correct"]), len(sec["incorrect"])
        g = groups["syntactic" if sec["section"].startswith("gram") else "semantic"]
        g[0] += right
        g[1] += right + wrong
        total[0] += right
        total[1] += right + wrong
        if right + wrong:
            out[f"analogy_section.{sec['section']}"] = right / (right + wrong)
    out["analogy_accuracy"] = total[0] / total[1] if total[1] else 0.0
    out["analogy_questions"] = total[1]
    for name, (right, n) in groups.items():
        out[f"analogy_{name}"] = right / n if n else 0.0
    return out


def word_pair_correlations(kv) -> dict[str, float]:
    """Spearman's rho (and the share of pairs out of vocabulary) on WordSim-353 and SimLex-999."""
    import warnings

    from gensim.test.utils import datapath

    out = {}
    for name, file in PAIR_SETS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on constant input when nothing is covered
            _, spearman, oov = kv.evaluate_word_pairs(datapath(file), case_insensitive=True)
        out[f"{name}_spearman"] = float(spearman[0]) if np.isfinite(spearman[0]) else 0.0
        out[f"{name}_oov_percent"] = float(oov)
    return out


def nearest_neighbours(kv, words: list[str], topn: int = 8) -> dict[str, list[tuple[str, float]]]:
    """The ``topn`` nearest words of each word by cosine similarity (words not in the vocabulary skipped)."""
    return {w: [(n, round(float(s), 4)) for n, s in kv.most_similar(w, topn=topn)] for w in words if w in kv}


def projection_png(kv, path: str | os.PathLike, title: str, n_words: int = 150) -> Path:
    """The ``n_words`` most frequent words projected on their first two principal components."""
    from sklearn.decomposition import PCA

    from dltm.evaluation import _pyplot, save_png

    words = kv.index_to_key[:n_words]
    xy = PCA(n_components=2, random_state=0).fit_transform(kv[words])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.scatter(xy[:, 0], xy[:, 1], s=6, color="grey")
    for w, (x, y) in zip(words, xy, strict=True):
        ax.annotate(w, (x, y), fontsize=7)
    ax.set(title=title, xlabel="PC 1", ylabel="PC 2")
    return save_png(fig, path)


def embedding_matrix(word_index: dict[str, int], kv, num_words: int | None = None, scale: float = 0.25,
                     seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """A (num_words, dim) matrix for ``Embedding(weights=...)``: row i is the vector of the word with index i;
    words without a vector get U(-scale, scale) (Kim 2014); row 0 (padding) is zeros.

    Returns the matrix and its coverage: words found, words missing, and the share found."""
    n = (max(word_index.values()) + 1) if num_words is None else num_words
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-scale, scale, (n, kv.vector_size)).astype(np.float32)
    matrix[0] = 0.0
    found = missing = 0
    for word, i in word_index.items():
        if i >= n:
            continue
        vec = kv[word] if word in kv else (kv[word.lower()] if word.lower() in kv else None)
        if vec is None:
            missing += 1
        else:
            matrix[i] = vec
            found += 1
    coverage = {"words": found + missing, "found": found, "missing": missing,
                "coverage": found / (found + missing) if found + missing else 0.0}
    return matrix, coverage


PRETRAINED = {"glove6b": "glove.6B.{dim}d.txt", "glove_twitter": "glove.twitter.27B.{dim}d.txt"}


def pretrained(dataset_id: str, dim: int, raw_root: str | os.PathLike = "data/raw", limit: int | None = None):
    """Pretrained GloVe vectors from the dataset registry (``dvc repro download@glove6b`` first):
    ``glove6b`` has 50/100/200/300 dimensions, ``glove_twitter`` 25/50/100/200."""
    from dltm import datasets

    if dataset_id not in PRETRAINED:
        raise ValueError(f"pretrained vectors: unknown dataset {dataset_id!r} (known: {', '.join(PRETRAINED)})")
    name = PRETRAINED[dataset_id].format(dim=dim)
    if name not in datasets.get(dataset_id).files:
        dims = sorted(int(f.rsplit(".", 2)[-2].rstrip("d")) for f in datasets.get(dataset_id).files)
        raise ValueError(f"{dataset_id} has no {dim}-d vectors (dimensions: {dims})")
    path = Path(raw_root) / dataset_id / name
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{dataset_id}` "
                                f"(or `python -m stages.download {dataset_id}`) first")
    return load_word2vec(path, limit=limit, no_header=True)


def load_vectors(path: str | os.PathLike, dim: int | None = None, limit: int | None = None):
    """The vectors a chapter-7 model starts from, named by one param (``embeddings`` in params.yaml):

    - a chapter-6 output folder, ``data/embeddings/<task>-<corpus>`` (its ``vectors.txt``);
    - a pretrained dataset folder, ``data/raw/glove6b`` or ``data/raw/glove_twitter``, with ``dim``;
    - a vectors file, in the word2vec text format with or without its '<count> <dim>' header (GloVe's files
      have none).
    """
    path = Path(path)
    if path.is_dir() and path.name in PRETRAINED:
        if dim is None:
            raise ValueError(f"{path}: pretrained vectors come in several dimensions; give one")
        return pretrained(path.name, dim, path.parent, limit=limit)
    if path.is_dir():
        path = path / "vectors.txt"
    if not path.is_file():
        raise MissingOutputError(f"{path}: no such vectors file (build it with `dvc repro embed@...`, or point "
                                f"the embeddings param at a folder of data/embeddings/ or a vectors file)")
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split()
    has_header = len(first) == 2 and all(t.isdigit() for t in first)
    return load_word2vec(path, limit=limit, no_header=not has_header)
