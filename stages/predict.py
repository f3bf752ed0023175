"""Classify sentences with a trained text classifier: ``models/<task>/model.keras`` and the tokenizer saved
beside it, encoded the way the task encoded its training data (``data_info.json``).

    python -m stages.predict ch07_kim_cnn "a gorgeous, witty film" "dull and lifeless"
    python -m stages.predict ch07_cnn1d_imdb --file reviews.txt        # one text per line
    python -m stages.predict ch07_kim_cnn --file - < sentences.txt     # from stdin
    python -m stages.predict ch07_kim2014-static/fold_0 "a witty film" # one model of a cross-validated task

Prints one tab-separated line per text: label, probability of that label, the text. A file is read as UTF-8
(a BOM is dropped), with any line ending (\\n, \\r\\n, \\r); its blank lines are skipped. A mistake ends in one
line ``error: ...`` and exit status 2: an unknown task id (the known ones are listed), a task that is not a
text classifier or has not been trained (the DVC stage that trains it is named), a cross-validated task
without a fold, a missing or non-UTF-8 file, an empty text, a text with no word in the model's vocabulary.
Not a DVC stage: it only reads what ``train@<task>`` wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dltm import cli
from dltm.cli import MissingOutputError, UserError
from dltm.io import read_json
from dltm.text import Tokenizer, clean_str

CLEANERS = {"kim": clean_str, "html_breaks": lambda s: s.replace("<br />", " "), "none": lambda s: s,
            None: lambda s: s}

TEXT_CLASSIFIERS = ("ch07_simple_classifier", "ch07_kim_cnn", "ch07_kim2014", "ch07_cnn_glove_2ch", "ch07_cnn1d",
                    "ch07_cnn1d_imdb", "ch09_lstm_sentiment", "ch09_custom_cell", "ch09_peephole_sentiment",
                    "ch09_rnn_comparison")
"""The tasks whose models classify text (each saves its tokenizer beside its model)."""


def encode(texts: list[str], tokenizer: Tokenizer, info: dict) -> np.ndarray:
    """Texts -> (len(texts), doc_length) int32 index arrays as the task's training data: the cleaner, the
    tokenizer's num_words cut, then padding to ``doc_length`` on the task's side ('post' for MR as in the book,
    'pre' for IMDB; a longer text is cut on the same side, as Keras' pad_sequences). Raises UserError for a
    cleaner this version does not know."""
    if info.get("clean") not in CLEANERS:
        raise UserError(f"data_info.json: unknown cleaner {info.get('clean')!r} (known: kim, html_breaks, none)")
    clean = CLEANERS[info.get("clean")]
    seqs = tokenizer.texts_to_sequences([clean(t) for t in texts])
    post = info.get("padding", "post") == "post"
    length = int(info.get("doc_length") or info["max_length"])  # chapter 7.2's classifier names it max_length
    x = np.zeros((len(seqs), length), dtype=np.int32)
    for row, seq in zip(x, seqs, strict=True):
        seq = seq[:length] if post else seq[max(len(seq) - length, 0):]
        if seq:
            row[slice(0, len(seq)) if post else slice(length - len(seq), length)] = seq
    return x


def predict(model_dir: str | Path, texts: list[str], hint: str | None = None,
            sources: list[str] | None = None) -> list[tuple[str, float]]:
    """(label, probability of that label) for each text, by the model in ``model_dir``.

    Raises MissingOutputError for a model that is not there (``hint``: what trains it) or a folder of
    cross-validated models, and UserError for a folder without a tokenizer (not a text classifier), an empty
    text and a text none of whose words the model knows (each named by ``sources``, default "text <i>").
    """
    model_dir = Path(model_dir)
    hint = hint or "train the task first"
    sources = sources or [f"text {i}" for i in range(1, len(texts) + 1)]
    if not (model_dir / "model.keras").is_file():
        subs = sorted(p.parent.name for p in model_dir.glob("*/model.keras"))
        if subs and all(s.startswith("fold_") for s in subs):
            raise MissingOutputError(f"{model_dir}: cross-validated, one model per fold; name one, e.g. "
                                     f"{model_dir.name}/{subs[0]}")
        if subs:
            raise MissingOutputError(f"{model_dir}: one model per sub-folder ({', '.join(subs)}); name one, e.g. "
                                     f"{model_dir.name}/{subs[0]}")
        raise MissingOutputError(f"{model_dir / 'model.keras'}: missing; {hint}")
    for name in ("tokenizer.json", "data_info.json"):
        if not (model_dir / name).is_file():
            raise UserError(f"{model_dir}: no {name} beside the model: not a text classifier, or trained by an older "
                            f"version; {hint}")
    for source, text in zip(sources, texts, strict=True):
        if not text.strip():
            raise UserError(f"{source}: empty text, nothing to classify")
    info = read_json(model_dir / "data_info.json")
    tokenizer = Tokenizer.load(model_dir / "tokenizer.json")
    x = encode(texts, tokenizer, info)
    for source, text, row in zip(sources, texts, x, strict=True):
        if not row.any():
            raise UserError(f"{source}: no word of {text!r} is in the model's vocabulary, nothing to classify "
                            f"(the model would see an empty text)")
    from dltm.training import load_keras_model  # TensorFlow: only once the input is known to be good

    model = load_keras_model(model_dir / "model.keras", hint, compile=False)
    probs = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    if not np.isfinite(probs).all():
        raise UserError(f"{model_dir}: the model's outputs are not numbers (a diverged model); {hint}")
    names = info["class_names"]
    if probs.shape[-1] == 1:  # binary: the probability of class 1
        p = probs.reshape(-1)
        return [(names[1], float(q)) if q > 0.5 else (names[0], float(1 - q)) for q in p]
    return [(names[int(k)], float(row[k])) for row, k in zip(probs, probs.argmax(axis=-1), strict=True)]


def resolve(name: str) -> tuple[str, str | None]:
    """(task id, variant) of a model name ``<task>[-<variant>][/<sub-model>]``, e.g. ``ch07_kim2014-static/
    fold_0``. Raises UserError for a name that is not one of :data:`TEXT_CLASSIFIERS` (an unknown task, or one
    that does not classify text), an unknown or missing variant."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise UserError(f"{name!r}: name a task (e.g. ch07_kim_cnn) or one of its models (ch07_kim2014-static/"
                        f"fold_0), not a path")
    head = name.split("/", 1)[0]
    if not any(head == t or head.startswith(f"{t}-") for t in TEXT_CLASSIFIERS):  # before TensorFlow is imported
        raise UserError(f"unknown text classifier {head!r}; predict takes: {', '.join(TEXT_CLASSIFIERS)}")
    from dltm import tasks

    known = tasks.all_tasks()
    found = [(head, None)] if head in known else [(t, v) for t in TEXT_CLASSIFIERS for v in known[t].variants
                                                  if head == f"{t}-{v}"]
    if not found:
        raise UserError(f"unknown text classifier {head!r}; predict takes: {', '.join(TEXT_CLASSIFIERS)} (with "
                        f"a variant where the task has some)")
    task_id, variant = found[0]
    variants = known[task_id].variants
    if variants and variant is None:
        raise UserError(f"{task_id} has variants ({', '.join(variants)}): name one, e.g. {task_id}-{variants[0]} "
                        f"(or {task_id}-{variants[0]}/fold_0 when cross-validated)")
    return task_id, variant


def read_texts(path: str) -> tuple[list[str], list[str]]:
    """The non-blank lines of a UTF-8 file (``-``: stdin) and their sources (``file:line``). Any line ending
    (\\n, \\r\\n, \\r) ends a line and none is kept; a BOM is dropped. Raises UserError for a file that is
    missing, unreadable or not UTF-8 (naming the line and the byte)."""
    if path == "-":
        name = "<stdin>"
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    else:
        name = path
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise UserError(f"--file {path}: no such file") from None
        except OSError as e:
            raise UserError(f"--file {path}: cannot read it ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UserError(f"{name}:{line}: not UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8, e.g. "
                        f"`iconv -f cp1252 -t utf-8`") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = [(f"{name}:{i}", line) for i, line in enumerate(lines, 1) if line.strip()]
    if not kept:
        raise UserError(f"{name}: no text in it (only blank lines)")
    return [line for _, line in kept], [source for source, _ in kept]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="a trained text classifier, e.g. ch07_kim_cnn, or one model of a task that "
                                 "trains several, e.g. ch07_kim2014-static/fold_0")
    ap.add_argument("texts", nargs="*", help="sentences to classify")
    ap.add_argument("--file", help="a UTF-8 file with one text per line ('-' for stdin)")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_intermixed_args(argv)  # texts before or after the options
    if not args.texts and not args.file:
        ap.error("give texts on the command line or --file")
    texts = list(args.texts)
    sources = [f"text {i}" for i in range(1, len(texts) + 1)]
    if args.file:
        more, where = read_texts(args.file)
        texts += more
        sources += where
    task_id, variant = resolve(args.task)

    from dltm.tasks import dvc_stage

    hint = f"run `dvc repro {dvc_stage(task_id, variant)}` first"
    for text, (label, p) in zip(texts, predict(Path(args.models) / args.task, texts, hint, sources), strict=True):
        print(f"{label}\t{p:.4f}\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
