"""Classify sentences with a trained text classifier: ``models/<task>/model.keras`` and the tokenizer saved
beside it, encoded the way the task encoded its training data (``data_info.json``).

    python -m stages.predict ch07_kim_cnn "a gorgeous, witty film" "dull and lifeless"
    python -m stages.predict ch07_cnn1d_imdb --file reviews.txt        # one text per line
    python -m stages.predict ch07_kim_cnn --file - < sentences.txt     # from stdin

Prints one tab-separated line per text: label, probability of that label, the text.
Not a DVC stage: it only reads what ``train@<task>`` wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dltm.cli import MissingOutputError
from dltm.io import read_json
from dltm.text import Tokenizer, clean_str

CLEANERS = {"kim": clean_str, "html_breaks": lambda s: s.replace("<br />", " "), "none": lambda s: s,
            None: lambda s: s}


def encode(texts: list[str], tokenizer: Tokenizer, info: dict) -> np.ndarray:
    """Texts -> padded index arrays as the task's training data: the cleaner, the tokenizer's num_words cut,
    then padding to ``doc_length`` on the task's side ('post' for MR as in the book, 'pre' for IMDB)."""
    from keras.utils import pad_sequences

    clean = CLEANERS[info.get("clean")]
    seqs = tokenizer.texts_to_sequences([clean(t) for t in texts])
    padding = info.get("padding", "post")
    return pad_sequences(seqs, maxlen=int(info["doc_length"]), padding=padding, truncating=padding, dtype="int32")


def predict(model_dir: str | Path, texts: list[str]) -> list[tuple[str, float]]:
    """(label, probability of that label) for each text."""
    import keras

    model_dir = Path(model_dir)
    if not (model_dir / "model.keras").is_file() and (model_dir / "fold_0" / "model.keras").is_file():
        raise FileNotFoundError(f"{model_dir}: cross-validated, one model per fold; name one, e.g. "
                                f"{model_dir.name}/fold_0")
    for name in ("model.keras", "tokenizer.json", "data_info.json"):
        if not (model_dir / name).is_file():
            raise MissingOutputError(f"{model_dir / name}: missing; train the task first "
                                    f"(`dvc repro train@{model_dir.name}`), or it is not a text classifier")
    info = read_json(model_dir / "data_info.json")
    tokenizer = Tokenizer.load(model_dir / "tokenizer.json")
    model = keras.models.load_model(model_dir / "model.keras")
    probs = np.asarray(model.predict(encode(texts, tokenizer, info), verbose=0), dtype=np.float64)
    names = info["class_names"]
    if probs.shape[-1] == 1:  # binary: the probability of class 1
        p = probs.reshape(-1)
        return [(names[1], float(q)) if q > 0.5 else (names[0], float(1 - q)) for q in p]
    return [(names[int(k)], float(row[k])) for row, k in zip(probs, probs.argmax(axis=-1), strict=True)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="a trained text-classification task, e.g. ch07_kim_cnn")
    ap.add_argument("texts", nargs="*", help="sentences to classify")
    ap.add_argument("--file", help="a UTF-8 file with one text per line ('-' for stdin)")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_args(argv)
    texts = list(args.texts)
    if args.file:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with stream:
            texts += [line.rstrip("\n") for line in stream if line.strip()]
    if not texts:
        ap.error("give texts on the command line or --file")
    for text, (label, p) in zip(texts, predict(Path(args.models) / args.task, texts), strict=True):
        print(f"{label}\t{p:.4f}\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
