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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm import datasets
from dltm.io import atomic_path, read_json, write_json
from dltm.params import require
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
            raise ValueError(f"{path}:{i}: cannot decode as {encoding} ({e.reason} at byte {e.start})") from None
    return out


def load_mr_raw(raw_dir: str | os.PathLike, encoding: str = "cp1252") -> tuple[list[str], np.ndarray]:
    """The cleaned MR sentences, positives first, and their labels (pos=1, neg=0)."""
    raw_dir = Path(raw_dir)
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        if not (raw_dir / name).is_file():
            raise FileNotFoundError(f"{raw_dir / name}: missing; run `dvc repro download@mr` first")
    pos = read_lines(raw_dir / "rt-polarity.pos", encoding)
    neg = read_lines(raw_dir / "rt-polarity.neg", encoding)
    texts = [clean_str(s) for s in pos + neg]
    labels = np.concatenate([np.ones(len(pos), np.int32), np.zeros(len(neg), np.int32)])
    return texts, labels


def book_split(n: int, seed: int = 10, dev_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """``np.random.seed(seed); p = np.random.permutation(n)``: train = p[:-dev_size], dev = p[-dev_size:]."""
    if not 0 < dev_size < n:
        raise ValueError(f"params.yaml: prepare dev_size must be between 1 and {n - 1}, got {dev_size}")
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


PREPARERS = {"mr": prepare_mr}


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


def load_prepared_text(prepared_dir: str | os.PathLike, num_words: int | None) -> PreparedText:
    """Read data/prepared/<dataset>/ and apply ``Tokenizer(num_words=num_words)``'s vocabulary cut."""
    d = Path(prepared_dir)
    if not (d / "x.npy").is_file():
        raise FileNotFoundError(f"{d}/x.npy: missing; run `dvc repro prepare@{d.name}` first")
    tokenizer = Tokenizer.from_config(read_json(d / "tokenizer.json"))
    tokenizer.num_words = num_words
    split = np.load(d / "split.npz")
    return PreparedText(
        x=restrict_vocab(np.load(d / "x.npy"), num_words),
        y=np.load(d / "labels.npy"),
        tokenizer=tokenizer,
        train_idx=split["train"],
        dev_idx=split["dev"],
        folds=np.load(d / "folds.npy"),
        class_names=MR_CLASSES,
    )
