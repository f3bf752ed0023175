"""WordPiece for chapter 12's BERT: a vocabulary learned here from the task's own text, the texts saved as ids,
and BERT's dynamic masking.

The prepare stage (``python -m stages.prepare wordpiece``, params ``prepare.wordpiece``) is the only step that
needs TensorFlow Text: KerasHub's ``compute_word_piece_vocabulary`` learns the vocabulary and its
``WordPieceTokenizer`` splits every text (Devlin et al. 2019, section 3; Wu et al. 2016's word pieces).
Training reads the saved ids, so it runs on any Keras backend; so does :func:`mask_tokens`, which draws BERT's
masks in NumPy (KerasHub's ``MaskedLMMaskGenerator`` is a TensorFlow Text op, which training must not need).

data/prepared/wordpiece/ holds ``vocab.txt`` (one token a line, the specials first), ``imdb_train.npz``,
``imdb_test.npz`` and ``mr.npz`` (each ``ids`` flat, ``offsets`` (n + 1,), ``labels`` (n,)), and ``info.json``.
IMDB's splits are in a seeded random order; MR's sentences keep data/prepared/mr's order, so that its holdout
split and its 10 folds apply to them unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltm import params as P
from dltm.cli import MissingOutputError, UserError
from dltm.io import atomic_path, read_json, write_json

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
"""BERT's special tokens, ids 0-4 in this order (``[PAD]`` is 0, as every padded input of this project)."""
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
SPLITS = ("imdb_train", "imdb_test", "mr")

PARAMS = {"vocabulary_size": P.Int(len(SPECIALS) + 1), "lowercase": P.BOOL, "shuffle_seed": P.Int(),
          "sources": P.List(P.Choice("imdb_train", "imdb_test", "mr"))}
"""``prepare.wordpiece``: the vocabulary's size (the specials included), lower-casing, the seed of IMDB's order,
and which texts the vocabulary is learned from (every split is tokenized whatever it says)."""


def read_texts(data_root: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """{split: (texts, labels)}: IMDB's 25,000 + 25,000 labelled reviews (data/raw/imdb, HTML breaks removed)
    and MR's cleaned sentences (data/prepared/mr/texts.txt, in that folder's order)."""
    from dltm.data import read_imdb_split

    mr = data_root / "prepared" / "mr"
    if not (mr / "texts.txt").is_file():
        raise MissingOutputError(f"{mr / 'texts.txt'}: missing; run `dvc repro prepare@mr` first")
    out = {f"imdb_{s}": read_imdb_split(data_root / "raw" / "imdb", s) for s in ("train", "test")}
    lines = mr.joinpath("texts.txt").read_text(encoding="utf-8").rstrip("\n").split("\n")  # as prepare_mr writes
    out["mr"] = (lines, np.load(mr / "labels.npy"))
    if len(out["mr"][0]) != len(out["mr"][1]):
        raise UserError(f"{mr}: texts.txt has {len(out['mr'][0])} lines, labels.npy {len(out['mr'][1])} labels; "
                        f"run `dvc repro prepare@mr` again")
    return out


def learn_vocabulary(texts: list[str], vocabulary_size: int, lowercase: bool = True) -> list[str]:
    """KerasHub's ``compute_word_piece_vocabulary`` (TensorFlow Text's WordPiece learner) over ``texts``, with
    :data:`SPECIALS` first. Returns at most ``vocabulary_size`` tokens (fewer when the text has fewer pieces)."""
    import keras_hub
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(texts).batch(1000)
    return list(keras_hub.tokenizers.compute_word_piece_vocabulary(
        ds, vocabulary_size, lowercase=lowercase, strip_accents=lowercase, reserved_tokens=SPECIALS))


def wordpiece_tokenizer(vocabulary: list[str], lowercase: bool = True):
    """KerasHub's ``WordPieceTokenizer`` over ``vocabulary`` (no sequence length: ragged ids)."""
    import keras_hub

    return keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=lowercase,
                                                   strip_accents=lowercase, oov_token=UNK, dtype="int32")


def tokenize(texts: list[str], tokenizer, batch: int = 2000) -> list[np.ndarray]:
    """Each text's word-piece ids (an int32 array each), ``batch`` texts at a time."""
    out: list[np.ndarray] = []
    for i in range(0, len(texts), batch):
        ragged = tokenizer(texts[i:i + batch])  # a tf.RaggedTensor, or nested lists where Keras is not TensorFlow
        out += [np.asarray(r, dtype=np.int32) for r in (ragged.to_list() if hasattr(ragged, "to_list") else ragged)]
    return out


def prepare_wordpiece(data_root: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any]
                      ) -> dict[str, Any]:
    """Learn the vocabulary from ``params["sources"]``, tokenize every split, write data/prepared/wordpiece/."""
    texts = read_texts(Path(data_root))
    vocab = learn_vocabulary([t for s in params["sources"] for t in texts[s][0]], params["vocabulary_size"],
                             params["lowercase"])
    tokenizer = wordpiece_tokenizer(vocab, params["lowercase"])
    summary: dict[str, Any] = {"vocabulary_size": len(vocab), "lowercase": params["lowercase"],
                               "sources": params["sources"]}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        for i, split in enumerate(SPLITS):
            split_texts, labels = texts[split]
            order = (np.random.RandomState(params["shuffle_seed"] + i).permutation(len(split_texts))
                     if split.startswith("imdb") else np.arange(len(split_texts)))
            seqs = tokenize([split_texts[k] for k in order], tokenizer)
            lengths = np.array([len(q) for q in seqs])
            np.savez(tmp / f"{split}.npz", ids=np.concatenate(seqs) if seqs else np.zeros(0, np.int32),
                     offsets=np.concatenate([[0], np.cumsum(lengths)]), labels=np.asarray(labels)[order])
            summary[split] = {"texts": len(seqs), "pieces": int(lengths.sum()),
                              "median_length": float(np.median(lengths)),
                              "unk_share": round(float(np.mean(np.concatenate(seqs) == UNK_ID)), 5)}
        write_json(tmp / "info.json", summary)
    return summary


@dataclass
class WordPieceTexts:
    """One split of data/prepared/wordpiece: ``texts[i]`` is text i's ids (no specials), ``labels[i]`` its
    class."""

    texts: list[np.ndarray]
    labels: np.ndarray


def read_vocabulary(folder: Path, hint: str = "run `dvc repro prepare_wordpiece` first") -> list[str]:
    """``folder``/vocab.txt: the word pieces by id, the specials first. Raises MissingOutputError (with ``hint``)
    when missing, UserError when it does not start with :data:`SPECIALS`."""
    path = Path(folder) / "vocab.txt"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; {hint}")
    vocab = path.read_text(encoding="utf-8").rstrip("\n").split("\n")  # one token a line, as written
    if vocab[:len(SPECIALS)] != SPECIALS:
        raise UserError(f"{path}: the first tokens must be {', '.join(SPECIALS)}, got {', '.join(vocab[:5])}")
    return vocab


def load_split(prepared: Path, split: str) -> WordPieceTexts:
    """``split`` (imdb_train, imdb_test or mr) of data/prepared/wordpiece."""
    path = Path(prepared) / f"{split}.npz"
    if not path.is_file():
        raise MissingOutputError(f"{path}: missing; run `dvc repro prepare_wordpiece` first")
    z = np.load(path)
    return WordPieceTexts(np.split(z["ids"], z["offsets"][1:-1]), z["labels"])


def bert_inputs(texts: list[np.ndarray], seq_length: int) -> np.ndarray:
    """``[CLS] ids [SEP]`` per text, cut to ``seq_length`` (the text's first pieces) and padded with ``[PAD]``:
    (len(texts), seq_length) int32."""
    x = np.zeros((len(texts), seq_length), dtype=np.int32)
    for row, ids in zip(x, texts, strict=True):
        ids = ids[:seq_length - 2]
        row[0], row[1:len(ids) + 1], row[len(ids) + 1] = CLS_ID, ids, SEP_ID
    return x


def windows(texts: list[np.ndarray], seq_length: int, max_windows: int | None = None) -> np.ndarray:
    """Every text cut into consecutive windows of ``seq_length - 2`` pieces (the last one shorter), each as
    :func:`bert_inputs` writes it, at most ``max_windows`` per text: (n_windows, seq_length) int32. Pre-training
    thus sees all of a long review, not its first words only."""
    step = seq_length - 2
    pieces = [ids[i:i + step] for ids in texts for i in list(range(0, max(len(ids), 1), step))[:max_windows]]
    return bert_inputs(pieces, seq_length)


def mask_tokens(token_ids: np.ndarray, rng: np.random.Generator, vocabulary_size: int, rate: float = 0.15,
                max_predictions: int = 20) -> dict[str, np.ndarray]:
    """BERT's masked-LM inputs (Devlin et al. 2019, section 3.1): in each row, ``rate`` of the word pieces
    (never a special token: ``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``; at least one, at most
    ``max_predictions``) are chosen; of those,
    80% become ``[MASK]``, 10% a random word piece, 10% stay. Called afresh for every batch of every epoch, the
    masks differ each time: RoBERTa's dynamic masking (Liu et al. 2019).

    ``token_ids`` (batch, seq_length) int32 -> {"token_ids" (changed copy), "padding_mask" (batch, seq_length)
    bool, "segment_ids" zeros, "mask_positions" (batch, max_predictions) int32, "mask_ids" (the original ids at
    those positions), "mask_weights" (1.0 where a position was chosen, 0.0 for the unused slots)}.

    Same ``rng`` state, same masks. KerasHub's ``MaskedLMMaskGenerator`` draws masks by the same recipe (its
    ``unselectable_token_ids`` play the specials' part) in TensorFlow Text ops; this NumPy version keeps training
    free of TensorFlow (tests/test_ch12_bert.py checks the rates).
    """
    ids = np.array(token_ids, dtype=np.int32, copy=True)
    batch, _ = ids.shape
    positions = np.zeros((batch, max_predictions), dtype=np.int32)
    originals = np.zeros((batch, max_predictions), dtype=np.int32)
    weights = np.zeros((batch, max_predictions), dtype=np.float32)
    for r in range(batch):
        candidates = np.flatnonzero(ids[r] > MASK_ID)  # word pieces only: ids 0-4 are the specials
        if not len(candidates):
            continue
        n = min(max_predictions, max(1, int(round(len(candidates) * rate))))
        chosen = np.sort(rng.choice(candidates, size=n, replace=False))
        positions[r, :n], originals[r, :n], weights[r, :n] = chosen, ids[r, chosen], 1.0
        what = rng.random(n)
        ids[r, chosen[what < 0.8]] = MASK_ID
        randoms = chosen[(what >= 0.8) & (what < 0.9)]
        ids[r, randoms] = rng.integers(len(SPECIALS), vocabulary_size, size=len(randoms))
    return {"token_ids": ids, "padding_mask": token_ids != PAD_ID, "segment_ids": np.zeros_like(ids),
            "mask_positions": positions, "mask_ids": originals, "mask_weights": weights}


class WordPieceEncoder:
    """Raw text -> ``[CLS] pieces [SEP]`` ids for a fine-tuned BERT classifier, with the interface of
    :class:`dltm.text.Tokenizer` that :class:`dltm.inference.TextClassifier` uses (``texts_to_sequences``,
    ``index_word``, ``num_words``, ``oov_token``, ``to_json``), so ``stages.predict`` and the MLflow pyfunc take
    raw text for it as for every other classifier. Saved as ``tokenizer.json``: ``{"wordpiece": {vocabulary,
    lowercase, seq_length}}``. Needs TensorFlow Text (KerasHub's tokenizer) when it tokenizes."""

    def __init__(self, vocabulary: list[str], lowercase: bool, seq_length: int):
        self.vocabulary, self.lowercase, self.seq_length = list(vocabulary), bool(lowercase), int(seq_length)
        self.num_words, self.oov_token = None, UNK
        self.index_word = {i: w for i, w in enumerate(self.vocabulary)  # whole words (an example text's)
                           if i >= len(SPECIALS) and w.isalpha()}
        self.word_index = {w: i for i, w in self.index_word.items()}
        self._tokenizer = None

    def texts_to_sequences(self, texts: list[str]) -> list[list[int]]:
        if self._tokenizer is None:
            self._tokenizer = wordpiece_tokenizer(self.vocabulary, self.lowercase)
        cut = self.seq_length - 2
        # a text of unknown pieces only comes back empty: TextClassifier.encode refuses it (nothing to classify)
        return [[CLS_ID, *map(int, ids[:cut]), SEP_ID] if (ids != UNK_ID).any() else []
                for ids in tokenize(list(texts), self._tokenizer)]

    def get_config(self) -> dict[str, Any]:
        return {"vocabulary": self.vocabulary, "lowercase": self.lowercase, "seq_length": self.seq_length}

    def to_json(self) -> str:
        import json

        return json.dumps({"wordpiece": self.get_config()}, ensure_ascii=False)


def info(prepared: Path) -> dict[str, Any]:
    return read_json(Path(prepared) / "info.json")
