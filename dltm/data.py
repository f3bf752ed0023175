"""Prepared datasets: what the ``prepare`` stage writes under ``data/prepared/<dataset>/`` and how tasks read it.

MR (book 7.3.2, used again in chapter 9), as the book's ``data_helpers.load_data_and_labels`` and
``cnn-text.py`` do it:

1. read ``rt-polarity.pos`` then ``rt-polarity.neg`` (cp1252), strip each line, apply Kim's ``clean_str``;
   labels pos=1, neg=0;
2. fit the Keras-2-semantics :class:`~dltm.text.Tokenizer` on all sentences, encode, pad 'post' to the
   longest sentence (the full vocabulary: each task applies its own ``num_words`` with ``restrict_vocab``);
3. the book's split: ``np.random.seed(10)``, a permutation, the last 1000 as dev;
4. stratified, seeded k-fold ids for Kim's cross-validation.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm import datasets
from dltm import params as P
from dltm.cli import MissingOutputError, UserError
from dltm.io import atomic_path, read_json, write_json
from dltm.params import ParamError, require
from dltm.text import Tokenizer, clean_str, pad_post, restrict_vocab

MR_CLASSES = ["neg", "pos"]


def read_lines(path: Path, encoding: str) -> list[str]:
    """Lines of a text file, stripped; a decoding error names the file and the line."""
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for i, line in enumerate(lines, 1):
        try:
            out.append(line.decode(encoding).strip())
        except UnicodeDecodeError as e:
            raise DataFileError(f"{path}:{i}: cannot decode as {encoding} ({e.reason} at byte {e.start})") from None
    return out


def load_mr_raw(raw_dir: str | os.PathLike, encoding: str = "cp1252") -> tuple[list[str], np.ndarray]:
    """The cleaned MR sentences, positives first, and their labels (pos=1, neg=0)."""
    raw_dir = Path(raw_dir)
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        if not (raw_dir / name).is_file():
            raise MissingOutputError(f"{raw_dir / name}: missing; run `dvc repro download@mr` first")
    pos = read_lines(raw_dir / "rt-polarity.pos", encoding)
    neg = read_lines(raw_dir / "rt-polarity.neg", encoding)
    texts = [clean_str(s) for s in pos + neg]
    labels = np.concatenate([np.ones(len(pos), np.int32), np.zeros(len(neg), np.int32)])
    return texts, labels


def book_split(n: int, seed: int = 10, dev_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``np.random.seed(seed); p = np.random.permutation(n)``: train = p[:-dev_size], dev = p[-dev_size:]."""
    if not 0 < dev_size < n:
        raise P.ParamError(f"params.yaml: prepare dev_size must be between 1 and {n - 1}, got {dev_size}")
    perm = np.random.RandomState(seed).permutation(np.arange(n))
    return perm[:-dev_size], perm[-dev_size:]


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold id (0..k-1) of every example, stratified by label and seeded."""
    from sklearn.model_selection import StratifiedKFold

    folds = np.full(len(labels), -1, dtype=np.int32)
    for i, (_, test) in enumerate(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
                                  .split(np.zeros(len(labels)), labels)):
        folds[test] = i
    return folds


def prepare_mr(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """Write data/prepared/mr/: texts.txt, labels.npy, x.npy, tokenizer.json, split.npz, folds.npy, info.json."""
    encoding = require(params, "encoding", str, "prepare.mr")
    split_seed = require(params, "split_seed", int, "prepare.mr")
    dev_size = require(params, "dev_size", int, "prepare.mr")
    cv_folds = require(params, "cv_folds", int, "prepare.mr")
    cv_seed = require(params, "cv_seed", int, "prepare.mr")

    texts, labels = load_mr_raw(raw_dir, encoding)
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(texts)
    x = pad_post(tokenizer.texts_to_sequences(texts))
    train_idx, dev_idx = book_split(len(labels), split_seed, dev_size)
    folds = stratified_folds(labels, cv_folds, cv_seed)
    info = {
        "examples": len(texts), "positives": int(labels.sum()), "negatives": int((labels == 0).sum()),
        "vocabulary": len(tokenizer.word_index), "doc_length": int(x.shape[1]),
        "train": len(train_idx), "dev": len(dev_idx), "cv_folds": cv_folds,
        "raw_sha256": {name: datasets.sha256_file(Path(raw_dir) / name) for name in datasets.get("mr").files},
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        np.save(tmp / "labels.npy", labels)
        np.save(tmp / "x.npy", x)
        (tmp / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
        np.savez(tmp / "split.npz", train=train_idx, dev=dev_idx)
        np.save(tmp / "folds.npy", folds)
        write_json(tmp / "info.json", info)
    return info


# ------------------------------------------------------------------------------------------------------------
# Word-vector corpora (chapter 6): text8 as the book uses it, or PTB's training text offline
# ------------------------------------------------------------------------------------------------------------

CORPUS_FILES = {"text8": "text8", "ptb": "ptb.train.txt"}
IMDB_CORPUS = "imdb_text"
"""Chapter 6's third corpus: IMDB's 25,000 training reviews (data/raw/imdb) as running text in Kim's
``clean_str`` tokens, the domain and the tokens of MR (issue 20). The test reviews are left out: chapter 7's
IMDB classifier is scored on them."""
UNK = "UNK"


def corpus_words(raw_dir: str | os.PathLike, corpus: str) -> list[str]:
    """The corpus as one stream of words (line ends ignored, as text8 has none); PTB's ``<unk>`` is UNK. For
    ``imdb_text``: the training reviews in a fixed shuffled order (seed 0: the files come grouped by label),
    each through Kim's ``clean_str``."""
    if corpus == IMDB_CORPUS:
        from dltm.text import clean_str

        texts, _ = read_imdb_split(raw_dir, "train")
        order = np.random.default_rng(0).permutation(len(texts))
        return [w for i in order for w in clean_str(texts[i]).split()]
    path = Path(raw_dir) / CORPUS_FILES[corpus]
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{corpus}` first")
    words = path.read_text(encoding="utf-8").split()
    return [UNK if w == "<unk>" else w for w in words]


def prepare_corpus(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any],
                   corpus: str | None = None) -> dict[str, Any]:
    """The book's ``build_dataset`` (6.3): the ``vocabulary_size - 1`` most frequent words get ids 1.. by
    rank (ties by first appearance), everything else is UNK = 0. Writes ids.npy, vocab.tsv (word, count;
    row i = id i), info.json. ``corpus``: text8, ptb or imdb_text (default: ``raw_dir``'s name)."""
    from collections import Counter

    corpus = corpus or Path(raw_dir).name
    where = f"prepare.{corpus}"
    vocabulary_size = require(params, "vocabulary_size", int, where)
    max_tokens = require(params, "max_tokens", int, where)
    if vocabulary_size < 2:
        raise P.ParamError(f"params.yaml: {where}.vocabulary_size must be >= 2, got {vocabulary_size}")
    words = corpus_words(raw_dir, corpus)
    if max_tokens:
        words = words[:max_tokens]
    counts = Counter(w for w in words if w != UNK)
    vocab = [w for w, _ in counts.most_common(vocabulary_size - 1)]
    index = {w: i for i, w in enumerate(vocab, 1)}
    ids = np.fromiter((index.get(w, 0) for w in words), dtype=np.int32, count=len(words))
    unk = int((ids == 0).sum())
    info = {"corpus": corpus, "tokens": len(words), "vocabulary": len(vocab) + 1, "distinct_words": len(counts),
            "unk_tokens": unk, "unk_share": unk / max(len(words), 1)}
    if corpus in CORPUS_FILES:  # a corpus of one file (imdb_text: download@imdb's checksums cover its files)
        info["raw_sha256"] = datasets.sha256_file(Path(raw_dir) / CORPUS_FILES[corpus])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        np.save(tmp / "ids.npy", ids)
        rows = [f"{UNK}\t{unk}"] + [f"{w}\t{counts[w]}" for w in vocab]
        (tmp / "vocab.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        write_json(tmp / "info.json", info)
    return info


@dataclass
class Corpus:
    ids: np.ndarray
    """Word ids by frequency rank; 0 is UNK."""
    words: list[str]
    """words[i] is the word with id i (words[0] = 'UNK')."""
    counts: np.ndarray


def load_corpus(prepared_dir: str | os.PathLike) -> Corpus:
    d = Path(prepared_dir)
    if not (d / "ids.npy").is_file():
        stage = "prepare_imdb_text" if d.name == IMDB_CORPUS else f"prepare@{d.name}"
        raise MissingOutputError(f"{d}/ids.npy: missing; run `dvc repro {stage}` first")
    with open(d / "vocab.tsv", encoding="utf-8", newline="\n") as f:  # lines end at \n only (a word may hold U+2028)
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip("\n")]
    return Corpus(np.load(d / "ids.npy"), [r[0] for r in rows], np.array([int(r[1]) for r in rows]))


# ------------------------------------------------------------------------------------------------------------
# IMDB (7.3.4 on the data Keras' imdb_cnn was written for): aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt
# ------------------------------------------------------------------------------------------------------------

IMDB_CLASSES = ["neg", "pos"]


def read_imdb_split(raw_dir: str | os.PathLike, split: str) -> tuple[list[str], np.ndarray]:
    """The reviews of one split, neg then pos, each in file-name order; HTML line breaks become spaces."""
    texts, labels = [], []
    for label, name in enumerate(IMDB_CLASSES):
        folder = Path(raw_dir) / "aclImdb" / split / name
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise MissingOutputError(f"{folder}: no reviews; run `dvc repro download@imdb` first")
        for f in files:
            try:
                texts.append(f.read_text(encoding="utf-8").replace("<br />", " "))
            except UnicodeDecodeError as e:
                raise DataFileError(f"{f}: not UTF-8 ({e.reason} at byte {e.start})") from None
            labels.append(label)
    return texts, np.asarray(labels, dtype=np.int32)


def prepare_imdb(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """The Tokenizer fitted on the training reviews only; both splits encoded with the full vocabulary and
    stored flat (ids + offsets), each split in a seeded random order. Tasks cut the vocabulary and pad."""
    seed = require(params, "shuffle_seed", int, "prepare.imdb")
    tokenizer = Tokenizer()
    splits = {s: read_imdb_split(raw_dir, s) for s in ("train", "test")}
    tokenizer.fit_on_texts(splits["train"][0])
    info: dict[str, Any] = {"vocabulary": len(tokenizer.word_index)}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for i, (split, (texts, labels)) in enumerate(splits.items()):
            order = np.random.RandomState(seed + i).permutation(len(texts))
            seqs = tokenizer.texts_to_sequences([texts[k] for k in order])
            lengths = np.array([len(q) for q in seqs])
            np.savez(tmp / f"{split}.npz", ids=np.concatenate([np.asarray(q, np.int32) for q in seqs]),
                     offsets=np.concatenate([[0], np.cumsum(lengths)]), labels=labels[order])
            info[split] = len(texts)
            info[f"{split}_positives"] = int(labels.sum())
            info[f"{split}_median_length"] = float(np.median(lengths))
        (tmp / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
        write_json(tmp / "info.json", info)
    return info


def load_imdb(prepared_dir: str | os.PathLike, num_words: int, maxlen: int, split: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Keras' imdb_cnn input: words with index >= num_words dropped (as Tokenizer(num_words) does), then
    ``pad_sequences(maxlen)`` with its defaults (zeros in front, long reviews keep their end)."""
    from keras.utils import pad_sequences

    path = Path(prepared_dir) / f"{split}.npz"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro prepare@imdb` first")
    z = np.load(path)
    ids, offsets = z["ids"], z["offsets"]
    seqs = [q[q < num_words] for q in np.split(ids, offsets[1:-1])]
    return pad_sequences(seqs, maxlen=maxlen, dtype="int32"), z["labels"]


# ------------------------------------------------------------------------------------------------------------
# Bring your own data (issue 5): a CSV, TSV or JSON-lines file of text and label, prepared like MR so that every
# chapter-7 classifier trains on it through the same stages (``run.text_data: custom``).
# ------------------------------------------------------------------------------------------------------------

TEXT_FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": None, ".json": None}
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
"""Byte-order marks, UTF-32's before UTF-16's (FF FE 00 00 starts with FF FE)."""
LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")
"""Runs of the characters ``str.splitlines`` breaks at: inside a text they become one space."""


class DataFileError(UserError, ValueError):
    """A user's data file that cannot be read as it is: the message names the file, the line and the field."""


@dataclass
class LabelledFile:
    """What :func:`read_labelled_file` read from one file."""

    texts: list[str]
    """One line each: line breaks inside a text are a space."""
    labels: list[str]
    lines: list[int]
    """The line of the file where each example's record starts (1 = the first line)."""
    dropped: list[int]
    """The lines of the records dropped for an empty text or label (``drop_empty=True``)."""


def decode_text_file(path: Path, encoding: str) -> str:
    """The contents of ``path`` decoded as ``encoding``, without a byte-order mark.

    A UTF-8 file may start with a BOM or not. A file whose BOM says another encoding than ``encoding`` (a UTF-16
    file read as UTF-8) raises :class:`DataFileError` naming it; so does a byte that cannot be decoded (with its
    line). An unknown ``encoding`` raises :class:`~dltm.params.ParamError`."""
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise ParamError(f"params.yaml: prepare.custom.encoding: unknown encoding {encoding!r}") from None
    raw = path.read_bytes()
    marked = next((name for bom, name in BOMS if raw.startswith(bom)), None)
    if marked is not None and not codec.startswith(marked):
        raise DataFileError(f"{path}:1: the file starts with a {marked.upper()} byte-order mark but is read as "
                            f"{encoding}; set prepare.custom.encoding to {marked}")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].decode(encoding, errors="replace").count("\n") + 1
        raise DataFileError(f"{path}:{line}: cannot decode as {encoding} ({e.reason}); "
                            f"set prepare.custom.encoding to the file's encoding") from None
    return text.removeprefix("\ufeff")


def read_labelled_file(path: str | os.PathLike, text_field: str = "text", label_field: str = "label",
                       encoding: str = "utf-8", drop_empty: bool = False) -> LabelledFile:
    """The examples of a ``.csv``/``.tsv`` file with a header row, or of a ``.jsonl`` file of one JSON object
    per line, each holding a text and a label (a string, or an integer in JSON).

    The file is decoded as ``encoding`` (UTF-8 with or without a byte-order mark by default). A ``.csv``/``.tsv``
    file is parsed by the csv module as one stream (RFC 4180 quoting, as Excel and pandas write it): a text that
    holds the delimiter, a quote or a line break is quoted whole, its quotes doubled. A ``.jsonl`` file is split
    into records at line feeds only. Line breaks inside a text (quoted ones, escaped ones in JSON, U+2028, form
    feeds...) become one space. Texts and labels are stripped.

    A row whose text or label is empty (or JSON null) is an error, or with ``drop_empty`` is left out and its
    line kept in ``dropped``. Raises :class:`MissingOutputError` for a missing file and :class:`DataFileError`
    for a bad one, naming the file, the line where the record starts and the field."""
    import csv
    import io
    import json

    path = Path(path)
    if path.suffix.lower() not in TEXT_FORMATS:
        raise DataFileError(f"{path}: unknown format {path.suffix!r}; use .csv, .tsv or .jsonl")
    if not path.is_file():
        raise MissingOutputError(f"{path}: no such file")
    content = decode_text_file(path, encoding)
    out = LabelledFile([], [], [], [])

    def add(lineno: int, row: dict) -> None:
        empty = []
        for field in (text_field, label_field):
            value = row.get(field, ...)
            if value is ...:
                raise DataFileError(f"{path}:{lineno}: field {field!r} is missing")
            if value is None or (isinstance(value, str) and not value.strip()):
                empty.append(field)
        if empty and drop_empty:
            out.dropped.append(lineno)
            return
        if empty:
            raise DataFileError(f"{path}:{lineno}: field {empty[0]!r} is empty "
                                f"(prepare.custom.drop_empty: true leaves such rows out)")
        if not isinstance(row[text_field], str):
            raise DataFileError(f"{path}:{lineno}: field {text_field!r} should be a string, got {row[text_field]!r}")
        if isinstance(row[label_field], (dict, list, float)):
            raise DataFileError(f"{path}:{lineno}: field {label_field!r} should be a string or an integer, "
                                f"got {row[label_field]!r}")
        out.texts.append(LINE_BREAKS.sub(" ", row[text_field]).strip())
        out.labels.append(LINE_BREAKS.sub(" ", str(row[label_field])).strip())
        out.lines.append(lineno)

    delimiter = TEXT_FORMATS[path.suffix.lower()]
    if delimiter is None:
        for i, line in enumerate(content.split("\n"), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                hint = "; a .jsonl file holds one object per line, not a JSON array" if line.lstrip()[:1] == "[" \
                    else ""
                raise DataFileError(f"{path}:{i}: not valid JSON ({e.msg} at column {e.colno}){hint}") from None
            if not isinstance(row, dict):
                raise DataFileError(f"{path}:{i}: expected a JSON object with {text_field!r} and {label_field!r}, "
                                    f"got {type(row).__name__}")
            add(i, row)
    else:
        # newline="": the csv module sees the line ends as they are, so a quoted text keeps its line break, and the
        # stream splits lines at \n and \r only (str.splitlines would also split at U+2028, \x85, \f...).
        reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter, strict=True)
        header: list[str] | None = None
        start = 1
        try:
            for record in reader:
                if record and header is None:
                    header = [name.strip() for name in record]
                    for field in (text_field, label_field):
                        if field not in header:
                            raise DataFileError(f"{path}:{start}: no column {field!r} in the header "
                                                f"(columns: {', '.join(header)})")
                elif record:
                    if len(record) > len(header):
                        raise DataFileError(f"{path}:{start}: more fields than the header's {len(header)} "
                                            f"(quote texts that hold the delimiter)")
                    add(start, dict(zip(header, record, strict=False)))
                start = reader.line_num + 1
        except csv.Error as e:
            raise DataFileError(f"{path}:{start}: bad quoting ({e}); a text that holds the delimiter, a quote or a "
                                f"line break must be quoted whole, with its quotes doubled: \"say \"\"hi\"\"\"") \
                from None
    if not out.texts:
        dropped = f" ({len(out.dropped)} rows with an empty text or label left out)" if out.dropped else ""
        raise DataFileError(f"{path}: no examples{dropped}")
    return out


def read_labelled_texts(path: str | os.PathLike, text_field: str = "text", label_field: str = "label",
                        encoding: str = "utf-8", drop_empty: bool = False) -> tuple[list[str], list[str]]:
    """The texts and labels (as strings) of :func:`read_labelled_file`."""
    f = read_labelled_file(path, text_field, label_field, encoding, drop_empty)
    return f.texts, f.labels


def find_custom_files(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """``path`` is a file (the training data) or a folder holding ``train.<ext>`` and optionally ``test.<ext>``."""
    path = Path(path)
    if path.is_file():
        return path, None
    if not path.is_dir():
        raise ParamError(f"params.yaml: prepare.custom.path: {path} is neither a file nor a folder")
    found = {}
    for part in ("train", "test"):
        hits = [path / f"{part}{ext}" for ext in TEXT_FORMATS if (path / f"{part}{ext}").is_file()]
        if len(hits) > 1:
            raise DataFileError(f"{path}: more than one {part} file ({', '.join(h.name for h in hits)})")
        found[part] = hits[0] if hits else None
    if found["train"] is None:
        raise DataFileError(f"{path}: no train.csv, train.tsv or train.jsonl")
    return found["train"], found["test"]


def prepare_custom(path: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """data/prepared/custom/ in MR's layout from the user's file(s) (``prepare.custom`` in params.yaml).

    With a test file, it is the holdout ("dev") split; without one, a seeded stratified ``test_size`` share
    of the training file is. The Tokenizer is fitted on the training rows only. ``clean: kim`` applies Kim's
    ``clean_str`` (English); ``none`` keeps the text as it is (the Tokenizer still lowercases and strips
    punctuation). ``drop_empty: true`` leaves out the rows whose text or label is empty (default false: such
    a row is an error); info.json's ``dropped_empty`` counts them and ``dropped_empty_lines`` gives their
    lines per file. Errors about the files are :class:`DataFileError`, about the settings ParamError."""
    from sklearn.model_selection import train_test_split

    where = "prepare.custom"
    text_field = require(params, "text_field", str, where)
    label_field = require(params, "label_field", str, where)
    encoding = require(params, "encoding", str, where)
    clean = require(params, "clean", str, where)
    if clean not in ("kim", "none"):
        raise ParamError(f"params.yaml: {where}.clean must be kim or none, got {clean!r}")
    max_length = require(params, "max_length", int, where)
    cv_folds = require(params, "cv_folds", int, where)
    seed = require(params, "split_seed", int, where)
    drop_empty = params.get("drop_empty", False)
    if not isinstance(drop_empty, bool):
        raise ParamError(f"params.yaml: {where}.drop_empty should be true or false, got {drop_empty!r}")
    train_file, test_file = find_custom_files(path)
    read = {f: read_labelled_file(f, text_field, label_field, encoding, drop_empty)
            for f in (train_file, test_file) if f is not None}
    texts, labels = read[train_file].texts, read[train_file].labels
    class_names = sorted(set(labels))
    if len(class_names) < 2:
        raise DataFileError(f"{train_file}: every example has the label {class_names[0]!r}; "
                            f"need two classes or more")
    n_train = len(texts)
    if test_file is not None:
        test_texts, test_labels = read[test_file].texts, read[test_file].labels
        unseen = sorted(set(test_labels) - set(class_names))
        if unseen:
            raise DataFileError(f"{test_file}: label(s) {', '.join(map(repr, unseen))} do not occur in "
                                f"{train_file}")
        texts, labels = texts + test_texts, labels + test_labels
        train_idx, dev_idx = np.arange(n_train), np.arange(n_train, len(texts))
    else:
        test_size = require(params, "test_size", float, where)
        if not 0 < test_size < 1:
            raise ParamError(f"params.yaml: {where}.test_size must be in (0, 1), got {test_size}")
        try:
            train_idx, dev_idx = train_test_split(np.arange(n_train), test_size=test_size, random_state=seed,
                                                  stratify=labels)
        except ValueError as e:
            raise DataFileError(f"{train_file}: cannot split off a stratified {where}.test_size={test_size}: {e}") \
                from None
    y = np.array([class_names.index(label) for label in labels], dtype=np.int32)
    if clean == "kim":
        texts = [clean_str(t) for t in texts]
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts([texts[i] for i in train_idx])
    seqs = tokenizer.texts_to_sequences(texts)
    longest = max(len(s) for s in seqs)
    x = pad_post(seqs, min(longest, max_length) if max_length else longest)
    smallest = int(np.bincount(y).min())
    folds = (stratified_folds(y, cv_folds, seed) if smallest >= cv_folds > 1
             else np.full(len(y), -1, dtype=np.int32))
    info = {
        "examples": len(texts), "classes": len(class_names), "class_names": class_names,
        "class_counts": {c: int((y == i).sum()) for i, c in enumerate(class_names)},
        "vocabulary": len(tokenizer.word_index), "doc_length": int(x.shape[1]), "clean": clean,
        "train": len(train_idx), "dev": len(dev_idx), "cv_folds": cv_folds if folds[0] >= 0 else 0,
        "files": {f.name: datasets.sha256_file(f) for f in read},
        "dropped_empty": sum(len(r.dropped) for r in read.values()),
        "dropped_empty_lines": {f.name: r.dropped for f, r in read.items() if r.dropped},
    }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")  # one line each (the reader)
        np.save(tmp / "labels.npy", y)
        np.save(tmp / "x.npy", x)
        (tmp / "tokenizer.json").write_text(tokenizer.to_json(), encoding="utf-8")
        np.savez(tmp / "split.npz", train=np.asarray(train_idx), dev=np.asarray(dev_idx))
        np.save(tmp / "folds.npy", folds)
        write_json(tmp / "info.json", info)
    return info


# ------------------------------------------------------------------------------------------------------------
# Chapter 10: sentence pairs (the Anki files), and the held-out test set every translation model reports on
# ------------------------------------------------------------------------------------------------------------

PAIR_FILES = {"cmn": "cmn.txt", "fra": "fra.txt"}
"""The file of each sentence-pair dataset in ``data/raw/<dataset>/``."""


def read_pairs(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """The first two tab-separated fields (source, target) of the first ``limit`` lines of an Anki file (the
    third, where present, is the attribution). Raises MissingOutputError for a missing file and DataFileError,
    naming the line, for one without a tab or with an empty field."""
    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{path.parent.name}`")
    pairs: list[tuple[str, str]] = []
    with open(path, encoding="utf-8", newline="\n") as f:  # only \n (or \r\n) ends a line
        for i, line in enumerate(f, 1):
            if limit is not None and len(pairs) >= limit:
                break
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                raise DataFileError(f"{path}:{i}: expected 'English<TAB>translation[<TAB>attribution]'")
            pairs.append((fields[0], fields[1]))
    return pairs


def held_out_split(sources: list[str], test_pairs: int, seed: int, keep: set[str] | frozenset = frozenset()
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices into ``sources``: ``test_pairs`` distinct sources drawn at random
    (``numpy.random.default_rng(seed)``, the first pair of each), none of ``keep``; training is every pair whose
    source is not a test source, so no test sentence is seen in training under another translation. Raises
    ParamError when that leaves no training pair or too few sources."""
    first: dict[str, int] = {}
    for i, s in enumerate(sources):
        first.setdefault(s, i)
    candidates = np.array([i for s, i in first.items() if s not in keep])
    if not 0 < test_pairs < len(candidates):
        raise ParamError(f"params.yaml: test_pairs must be between 1 and {len(candidates) - 1} for "
                         f"{len(candidates)} distinct sources, got {test_pairs}")
    test = np.sort(np.random.default_rng(seed).choice(candidates, size=test_pairs, replace=False))
    held = {sources[i] for i in test}
    train = np.array([i for i, s in enumerate(sources) if s not in held])
    return train, test


def prepare_pairs(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]) -> dict[str, Any]:
    """The held-out test set of chapter 10 (issue 15): ``test_pairs`` sentences drawn at random from the first
    ``pool`` pairs of the file (Anki files are sorted by length: the pairs after the first 10,000 would be
    unfairly long), never one of ``train_only`` (the book's examples, which it decodes as training sentences);
    every other pair whose source is not a test sentence is for training. Writes ``train.tsv`` and ``test.tsv``
    (line number in the raw file, source, target; the file's order) and info.json."""
    dataset = Path(raw_dir).name
    where = f"prepare.{dataset}"
    pool, test_pairs = require(params, "pool", int, where), require(params, "test_pairs", int, where)
    seed, train_only = require(params, "split_seed", int, where), require(params, "train_only", list, where)
    pairs = read_pairs(Path(raw_dir) / PAIR_FILES[dataset])
    head = [s for s, _ in pairs[:pool]]
    _, test = held_out_split(head, test_pairs, seed, frozenset(train_only))
    held = {head[i] for i in test}
    train = [i for i, (s, _) in enumerate(pairs) if s not in held]
    info = {"dataset": dataset, "pairs": len(pairs), "pool": min(pool, len(pairs)), "test": len(test),
            "train": len(train), "left_out_other_translations": len(pairs) - len(train) - len(test),
            "raw_sha256": datasets.sha256_file(Path(raw_dir) / PAIR_FILES[dataset])}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for name, rows in (("train", train), ("test", test)):
            (tmp / f"{name}.tsv").write_text("".join(f"{i + 1}\t{pairs[i][0]}\t{pairs[i][1]}\n" for i in rows),
                                             encoding="utf-8")
        write_json(tmp / "info.json", info)
    return info


def load_pairs(prepared_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(line numbers in the raw file, sources, targets) of ``split`` (train or test) of a prepared pair dataset.
    Raises MissingOutputError when it was not prepared."""
    path = Path(prepared_dir) / f"{split}.tsv"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro prepare@{Path(prepared_dir).name}` first")
    with open(path, encoding="utf-8", newline="\n") as f:  # only \n ends a row: a text may hold U+2028 or \f
        rows = [line.rstrip("\r\n").split("\t") for line in f]
    return np.array([int(r[0]) for r in rows], dtype=np.int64), [r[1] for r in rows], [r[2] for r in rows]



PREPARERS = {"mr": prepare_mr, "imdb": prepare_imdb, "text8": prepare_corpus, "ptb": prepare_corpus,
             IMDB_CORPUS: functools.partial(prepare_corpus, corpus=IMDB_CORPUS),
             "custom": prepare_custom, "cmn": prepare_pairs, "fra": prepare_pairs}
_CORPUS = {"vocabulary_size": P.Int(2), "max_tokens": P.Int(0)}
_PAIRS = {"pool": P.POSITIVE_INT, "test_pairs": P.POSITIVE_INT, "split_seed": P.Int(), "train_only": P.List(P.STR, 0)}
PREPARE_PARAMS = {
    "mr": {"encoding": P.STR, "split_seed": P.Int(), "dev_size": P.POSITIVE_INT, "cv_folds": P.Int(2),
           "cv_seed": P.Int()},
    "imdb": {"shuffle_seed": P.Int()},
    "text8": _CORPUS,
    "ptb": _CORPUS,
    IMDB_CORPUS: _CORPUS,
    "cmn": _PAIRS,
    "fra": _PAIRS,
    "custom": {"path": P.STR, "text_field": P.STR, "label_field": P.STR, "encoding": P.STR,
               "clean": P.Choice("kim", "none"), "max_length": P.Int(0),
               "test_size": P.Float(0.0, 1.0, low_open=True, high_open=True), "split_seed": P.Int(),
               "cv_folds": P.Int(2), "drop_empty": P.BOOL},
}
"""What each ``prepare.<dataset>`` section of params.yaml accepts (dltm.params.validate)."""


@dataclass
class PreparedText:
    """A prepared text-classification dataset restricted to a task's vocabulary."""

    x: np.ndarray
    y: np.ndarray
    tokenizer: Tokenizer
    train_idx: np.ndarray
    dev_idx: np.ndarray
    folds: np.ndarray
    class_names: list[str]
    clean: str = "kim"
    """How the texts were cleaned before tokenizing (``python -m stages.predict`` does the same)."""


def load_prepared_text(prepared_dir: str | os.PathLike, num_words: int | None) -> PreparedText:
    """Read data/prepared/<dataset>/ and apply ``Tokenizer(num_words=num_words)``'s vocabulary cut."""
    d = Path(prepared_dir)
    if not (d / "x.npy").is_file():
        stage = "prepare_custom" if d.name == "custom" else f"prepare@{d.name}"
        raise MissingOutputError(f"{d}/x.npy: missing; run `dvc repro {stage}` first")
    tokenizer = Tokenizer.from_config(read_json(d / "tokenizer.json"))
    tokenizer.num_words = num_words
    info = read_json(d / "info.json") if (d / "info.json").is_file() else {}
    split = np.load(d / "split.npz")
    return PreparedText(
        x=restrict_vocab(np.load(d / "x.npy"), num_words),
        y=np.load(d / "labels.npy"),
        tokenizer=tokenizer,
        train_idx=split["train"],
        dev_idx=split["dev"],
        folds=np.load(d / "folds.npy"),
        class_names=info.get("class_names", MR_CLASSES),
        clean=info.get("clean", "kim"),
    )


# ------------------------------------------------------------------------------------------------------------
# Raw-format loaders for the chapters 3-5 datasets: read straight from data/raw/<dataset>/ (no prepare stage;
# the files are already arrays). Each error names the file and what is wrong with it.
# ------------------------------------------------------------------------------------------------------------


def load_table(path: str | os.PathLike, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A headerless CSV of ``n_features`` numeric columns and a last target column (book 3.3: ionosphere,
    iris, housing). Returns float32 features and the target column as strings."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{path.parent.name}` first")
    frame = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    if frame.shape[1] != n_features + 1:
        raise DataFileError(f"{path}: expected {n_features + 1} comma-separated columns, found {frame.shape[1]}")
    features = frame.iloc[:, :n_features]
    numeric = features.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & features.notna() | features.isna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise DataFileError(f"{path}:{row + 1}: column {col + 1} is {features.iat[row, col]!r}, not a number")
    return numeric.to_numpy(np.float32), frame.iloc[:, n_features].str.strip().to_numpy()


IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An idx file (LeCun's MNIST format), gzipped or not: magic 0x0000TTDD, DD sizes, then the data."""
    import gzip

    path = Path(path)
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@{path.parent.name}` first")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_TYPES:
        raise DataFileError(f"{path}: not an idx file (magic {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataFileError(f"{path}: header says shape {shape} ({expected} bytes), file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
               "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
"""Fashion-MNIST's labels 0-9 (Xiao et al. 2017, the repository's README)."""
IMAGE_CLASSES = {"mnist": MNIST_CLASSES, "fashion_mnist": FASHION_MNIST_CLASSES}
"""The 28x28 idx datasets of chapters 4-5 (registry id -> class names): MNIST, the book's, and Fashion-MNIST, the
stand-in with the same format, sizes and split (the offline mirror lacks MNIST's training images)."""


def load_mnist(raw_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's (or Fashion-MNIST's) images (n, 28, 28) as float32 in [0, 1], as the book's ``x / 255.0``, and
    int32 labels 0-9, from ``raw_dir``'s idx files. Raises DataFileError (naming the file) for a file that is not
    idx, images and labels of different counts, or a label above 9."""
    images_file, labels_file = MNIST_FILES[split]
    images = read_idx(Path(raw_dir) / images_file)
    labels = read_idx(Path(raw_dir) / labels_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataFileError(f"{raw_dir}: {images_file} has shape {images.shape} but {labels_file} has {labels.shape}")
    if labels.max(initial=0) > 9:
        raise DataFileError(f"{Path(raw_dir) / labels_file}: label {labels.max()} is not one of 0-9")
    return images.astype(np.float32) / 255.0, labels.astype(np.int32)


def mnist_splits(raw_root: str | os.PathLike, train: bool = True, dataset: str = "mnist") -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` like the book's ``mnist.load_data()`` then ``/ 255.0``, from
    ``<raw_root>/<dataset>`` (a key of IMAGE_CLASSES: ``mnist`` or ``fashion_mnist``). ``train=False`` reads only
    the test files (empty training arrays): evaluation needs nothing else, so it also works where only the test
    split is at hand. Raises KeyError for another dataset, MissingOutputError when a file is not downloaded."""
    if dataset not in IMAGE_CLASSES:
        raise KeyError(f"no 28x28 image dataset {dataset!r}; known: {', '.join(IMAGE_CLASSES)}")
    raw = Path(raw_root) / dataset
    if not train:
        x_test, y_test = load_mnist(raw, "test")
        return x_test[:0], y_test[:0], x_test, y_test
    datasets.require(dataset, raw_root)
    return (*load_mnist(raw, "train"), *load_mnist(raw, "test"))


HAR_SIGNALS = [f"{kind}_{axis}" for kind in ("total_acc", "body_acc", "body_gyro") for axis in "xyz"]
HAR_CLASSES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]


def _read_matrix(path: Path, columns: int | None) -> np.ndarray:
    import pandas as pd

    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro download@har` first")
    try:
        values = pd.read_csv(path, header=None, sep=r"\s+", dtype=np.float32).to_numpy()
    except ValueError as e:
        raise DataFileError(f"{path}: not a whitespace-separated table of numbers ({e})") from None
    if columns is not None and values.shape[1] != columns:
        raise DataFileError(f"{path}: expected {columns} columns, found {values.shape[1]}")
    return values


def load_har(raw_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """UCI HAR as the book's 5.6 loads it: the nine 'Inertial Signals' files of a split stacked into
    (windows, 128, 9) in the order total_acc, body_acc, body_gyro (x, y, z), and labels 1-6 shifted to 0-5."""
    root = Path(raw_dir) / "UCI HAR Dataset" / split
    signals = [_read_matrix(root / "Inertial Signals" / f"{name}_{split}.txt", 128) for name in HAR_SIGNALS]
    lengths = {len(s) for s in signals}
    y_file = root / f"y_{split}.txt"
    y = _read_matrix(y_file, 1)[:, 0].astype(np.int32)
    if len(lengths) != 1 or lengths != {len(y)}:
        raise ValueError(f"{root}: the signal files and {y_file.name} disagree on the number of windows "
                         f"({sorted(lengths)} vs {len(y)})")
    if y.min(initial=1) < 1 or y.max(initial=1) > len(HAR_CLASSES):
        raise ValueError(f"{y_file}: labels must be 1-{len(HAR_CLASSES)}, found {y.min()}..{y.max()}")
    return np.stack(signals, axis=-1), y - 1
