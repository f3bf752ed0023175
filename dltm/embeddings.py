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

from dltm.cli import MissingOutputError, UserError
from dltm.datasets import fetch_command
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


class VectorsFileError(UserError, ValueError):
    """A word-vectors file that cannot be read: the message names the file and the line."""


def save_word2vec(kv, path: str | os.PathLike) -> Path:
    """The word2vec text format ('<count> <dim>' then '<word> <v1> ... <vdim>'), written atomically.

    A word may hold spaces (:func:`load_word2vec` splits each line from the right). A word that cannot be read
    back (empty, with a line break, or ending in a space and a number, which reads as one more value) raises
    ValueError naming it, before anything is written."""
    for key in kv.index_to_key:
        word = str(key)
        if not word or "\n" in word or "\r" in word or (" " in word and _is_number(word.rsplit(" ", 1)[1])):
            raise ValueError(f"{path}: cannot write the word {word!r} in the word2vec text format: a word is "
                             f"not empty, holds no line break and does not end in ' <number>'")
    with atomic_path(path, suffix=".txt") as tmp:
        kv.save_word2vec_format(str(tmp), binary=False)
    return Path(path)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def load_word2vec(path: str | os.PathLike, limit: int | None = None, no_header: bool = False):
    """KeyedVectors from the word2vec text format: a '<count> <dim>' line, then one '<word> <v1> ... <vdim>' line
    per word, most frequent first; ``no_header`` for GloVe's files (no first line; the dimension is that of the
    first vector). ``limit``: read the first ``limit`` vectors only.

    Each line is split from the right into ``dim`` numbers and the word, so words with spaces (GloVe 840B has
    some) are read whole; blank lines are skipped; a repeated word keeps its first vector (as gensim does).
    Raises :class:`~dltm.cli.MissingOutputError` for a missing file and :class:`VectorsFileError`, naming the
    file and the line, for an empty file, a bad header, a line with the wrong number of values or a value that
    is not a number, a line that is not UTF-8, and a count of vectors other than the header's."""
    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: no such vectors file")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    count = dim = None
    read = 0  # vector lines read
    limit = limit or None  # 0: all, as in gensim
    with open(path, "rb") as f:  # binary: lines end at b"\n" only, whatever a word holds
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip()
            except UnicodeDecodeError as e:
                raise VectorsFileError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if not line:
                continue
            if dim is None and not no_header:
                head = line.split()
                if len(head) != 2 or not all(t.isdigit() for t in head):
                    raise VectorsFileError(f"{path}:{lineno}: not a '<count> <dim>' header: {line[:60]!r} "
                                           f"(a GloVe file has no header line: pass no_header=True)")
                count, dim = int(head[0]), int(head[1])
                continue
            if dim is None:  # no header: the numbers at the end of the first line give the dimension
                tokens = line.split(" ")
                dim = len(tokens) - 1
                while dim and not _is_number(tokens[-dim]):
                    dim -= 1
                if not dim:
                    raise VectorsFileError(f"{path}:{lineno}: expected a word and its vector, got {line[:60]!r}")
            if read == limit:
                break
            if read == count:
                raise VectorsFileError(f"{path}:{lineno}: the header says {count} vectors, the file has more")
            read += 1
            word, *values = line.rsplit(" ", dim)
            if len(values) < dim:
                raise VectorsFileError(f"{path}:{lineno}: expected a word and {dim} numbers, found {len(values)} "
                                       f"values")
            if not word:
                raise VectorsFileError(f"{path}:{lineno}: no word before the {dim} numbers")
            try:
                vector = np.array(values, dtype=np.float32)
            except ValueError:
                bad = next(v for v in values if not _is_number(v))
                raise VectorsFileError(f"{path}:{lineno}: {bad!r} is not a number (expected a word and {dim} "
                                       f"numbers)") from None
            if " " in word and _is_number(word.rsplit(" ", 1)[1]):
                raise VectorsFileError(f"{path}:{lineno}: expected a word and {dim} numbers, found more numbers")
            if word not in seen:
                seen.add(word)
                words.append(word)
                rows.append(vector)
    if dim is None:
        raise VectorsFileError(f"{path}: empty file (expected {'vectors' if no_header else 'a <count> <dim> header'})")
    if count is not None and read < count and read != limit:
        raise VectorsFileError(f"{path}: the header says {count} vectors, the file has {read}")
    return keyed_vectors(words, np.stack(rows) if rows else np.zeros((0, dim), np.float32))


def _question_count(questions: str | os.PathLike) -> int:
    """The analogy questions of a questions-words.txt file: its lines of four words outside ': section' lines."""
    with open(questions, encoding="utf-8") as f:
        return sum(1 for line in f if not line.startswith(":") and len(line.split()) == 4)


def analogy_accuracy(kv, questions: str | os.PathLike, restrict_vocab: int = 30_000) -> dict[str, Any]:
    """Accuracy on the analogy questions whose four words are among the ``restrict_vocab`` most frequent.

    Returns ``analogy_accuracy`` (all sections), ``analogy_semantic``/``analogy_syntactic`` (sections
    without / with the 'gram' prefix), each a share in [0, 1], or None where no question of theirs is covered;
    ``analogy_questions`` (how many were covered), ``analogy_coverage`` (that share of the file's questions)
    and per-section values (``analogy_section.<name>``, covered sections only)."""
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
    out["analogy_accuracy"] = total[0] / total[1] if total[1] else None
    out["analogy_questions"] = total[1]
    asked = _question_count(questions)
    out["analogy_coverage"] = total[1] / asked if asked else 0.0
    for name, (right, n) in groups.items():
        out[f"analogy_{name}"] = right / n if n else None
    return out


def word_pair_correlations(kv, restrict_vocab: int = 300_000) -> dict[str, Any]:
    """Spearman's rho between the cosine similarities and the human scores of WordSim-353 and SimLex-999 (both
    ship inside gensim), over the pairs whose two words are among the ``restrict_vocab`` most frequent (case
    folded, as gensim's ``evaluate_word_pairs``).

    Returns, for each set, ``<set>_spearman`` (None when fewer than two pairs are covered or the similarities
    are all equal: no rank correlation exists), ``<set>_pairs`` (the pairs covered), ``<set>_coverage`` (their
    share) and ``<set>_oov_percent`` (the share not covered, in percent)."""
    import warnings

    from gensim.test.utils import datapath

    known = {w.upper() for w in kv.index_to_key[:restrict_vocab]}
    out: dict[str, Any] = {}
    for name, file in PAIR_SETS.items():
        pairs = covered = 0
        with open(datapath(file), encoding="utf-8") as f:  # the lines evaluate_word_pairs reads
            for line in f:
                fields = line.split("\t")
                if line.startswith("#") or len(fields) != 3 or not _is_number(fields[2]):
                    continue
                pairs += 1
                covered += fields[0].upper() in known and fields[1].upper() in known
        spearman = None
        if covered >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy warns on constant input
                _, rho, _ = kv.evaluate_word_pairs(datapath(file), restrict_vocab=restrict_vocab,
                                                   case_insensitive=True)
            spearman = float(rho[0]) if np.isfinite(rho[0]) else None
        out[f"{name}_spearman"] = spearman
        out[f"{name}_pairs"] = covered
        out[f"{name}_coverage"] = covered / pairs if pairs else 0.0
        out[f"{name}_oov_percent"] = (pairs - covered) / pairs * 100 if pairs else 100.0  # gensim's oov_ratio
    return out


NULL_NOTES = {"analogy_accuracy": ("analogy_questions", "questions"), "analogy_semantic": (None, ""),
              "analogy_syntactic": (None, ""), "wordsim353_spearman": ("wordsim353_pairs", "pairs"),
              "simlex999_spearman": ("simlex999_pairs", "pairs")}


def null_metrics_note(metrics: dict[str, Any], vocabulary: int) -> str | None:
    """One sentence for the report on the metrics that are None because too few test items are in the
    vocabulary, e.g. 'analogy_accuracy (0 questions), wordsim353_spearman (0 pairs) have no value: too few of
    their words are among the 35 words of the vectors'; None when every metric has a value."""
    parts = []
    for key, (count_key, unit) in NULL_NOTES.items():
        if key in metrics and metrics[key] is None:
            parts.append(f"{key} ({metrics[count_key]} {unit} covered)" if count_key in metrics else key)
    if not parts:
        return None
    return (f"{', '.join(parts)} {'has' if len(parts) == 1 else 'have'} no value: too few of their test items "
            f"have their words among the {vocabulary} words of the vectors")


def word_coverage(kv, counts: dict[str, int]) -> dict[str, float]:
    """How much of a text collection the vectors cover: ``words`` (the share of its distinct words with a vector)
    and ``tokens`` (the share of its running words, each word weighted by its count ``counts[word]``). For
    chapter 6's vectors against MR's words (issue 20), as chapter 7's ``embedding_coverage`` measures them."""
    found = [w for w in counts if w in kv.key_to_index]
    total = sum(counts.values())
    return {"words": len(found) / len(counts) if counts else 0.0,
            "tokens": sum(counts[w] for w in found) / total if total else 0.0}


def nearest_neighbours(kv, words: list[str], topn: int = 8) -> dict[str, list[tuple[str, float]]]:
    """The ``topn`` nearest words of each word by cosine similarity, most similar first (fewer when the
    vocabulary is smaller); words not in the vocabulary are left out, so the result may be empty."""
    return {w: [(n, round(float(s), 4)) for n, s in kv.most_similar(w, topn=topn)] for w in words if w in kv}


def projection_png(kv, path: str | os.PathLike, title: str, n_words: int = 150) -> Path:
    """The ``n_words`` most frequent words projected on their first two principal components. With fewer than
    two words (or vectors of fewer than two dimensions) there is nothing to project: the picture says so."""
    from sklearn.decomposition import PCA

    from dltm.evaluation import figure, save_png

    words = kv.index_to_key[:n_words]
    fig, ax = figure(figsize=(9, 7))
    if min(len(words), kv.vector_size) < 2:
        ax.text(0.5, 0.5, f"nothing to project: {len(words)} word(s) of {kv.vector_size} dimension(s)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set(title=title, xticks=[], yticks=[])
        return save_png(fig, path)
    xy = PCA(n_components=2, random_state=0).fit_transform(kv[words])
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
    n = (max(word_index.values(), default=0) + 1) if num_words is None else num_words
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
        raise MissingOutputError(f"{path}: missing; run {fetch_command(dataset_id)} first")
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
