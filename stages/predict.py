"""Classify sentences with a trained text classifier: the DVC workspace's ``models/<task>/`` (``model.keras`` and
the tokenizer saved beside it, encoded the way the task encoded its training data: ``data_info.json``), or an
MLflow Model, by a ``runs:/`` or ``models:/`` URI of its ``text_model``.

    python -m stages.predict ch07_kim_cnn "a gorgeous, witty film" "dull and lifeless"
    python -m stages.predict ch07_cnn1d_imdb --file reviews.txt        # one text per line
    python -m stages.predict ch07_kim_cnn --file - < sentences.txt     # from stdin
    python -m stages.predict ch07_kim2014-static/fold_0 "a witty film" # one model of a cross-validated task
    python -m stages.predict models:/ch07_kim_cnn@champion "a witty film"   # the registry's best version
    python -m stages.predict runs:/<run id>/text_model "a witty film"       # the model a run logged

Prints one tab-separated line per text: label, probability of that label, the text. A file is read as UTF-8
(a BOM is dropped), with any line ending (\\n, \\r\\n, \\r); its blank lines are skipped. A mistake ends in one
line ``error: ...`` and exit status 2: an unknown task id (the known ones are listed), a task that is not a
text classifier or has not been trained (the DVC stage that trains it is named), a cross-validated task
without a fold, a URI MLflow cannot load or that is not a text classifier's ``text_model``, a missing or
non-UTF-8 file, an empty text, a text with no word in the model's vocabulary. URIs are read from the project's
tracking store (``mlflow.db`` at the repository root, or ``MLFLOW_TRACKING_URI``). Not a DVC stage: it only
reads what ``train@<task>`` wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dltm import cli
from dltm.cli import MissingOutputError, UserError
from dltm.inference import CLEANERS, MODEL_FILE, TextClassifier, encode  # noqa: F401 -- CLEANERS, encode: importable here too

TEXT_CLASSIFIERS = ("ch07_simple_classifier", "ch07_kim_cnn", "ch07_kim2014", "ch07_cnn_glove_2ch", "ch07_cnn1d",
                    "ch07_cnn1d_imdb", "ch09_lstm_sentiment", "ch09_custom_cell", "ch09_peephole_sentiment",
                    "ch09_rnn_comparison", "ch12_transformer_classifier", "ch12_bert_finetune")
"""The tasks whose models classify text (each saves its tokenizer beside its model)."""
URI_SCHEMES = ("runs:/", "models:/")


def load_pyfunc(uri: str, kind: type, what: str):
    """The MLflow pyfunc at ``uri`` (``runs:/...`` or ``models:/...``), from the project's tracking store, when its
    python model is a ``kind``; UserError naming ``uri`` when MLflow cannot load it or it is another model (a keras
    flavor, another task's pyfunc): "<uri>: not a <what>"."""
    import mlflow

    from dltm.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as e:  # noqa: BLE001 -- MLflow raises many kinds for a bad URI
        raise UserError(f"{uri}: MLflow cannot load it ({str(e).splitlines()[0][:200]})") from None
    try:
        python_model = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 -- MLflow raises when the model is no pyfunc of ours (a keras flavor)
        python_model = None
    if not isinstance(python_model, kind):
        raise UserError(f"{uri}: not a {what}")
    return model


def predict(model_dir: str | Path, texts: list[str], hint: str | None = None,
            sources: list[str] | None = None) -> list[tuple[str, float]]:
    """(label, probability of that label) for each text, by the model in ``model_dir``.

    Raises MissingOutputError for a model that is not there (``hint``: what trains it) or a folder of
    cross-validated models, and UserError for a folder without a tokenizer (not a text classifier), an empty
    text and a text none of whose words the model knows (each named by ``sources``, default "text <i>").
    """
    model_dir = Path(model_dir)
    if not (model_dir / MODEL_FILE).is_file():
        subs = sorted(p.parent.name for p in model_dir.glob(f"*/{MODEL_FILE}"))
        if subs and all(s.startswith("fold_") for s in subs):
            raise MissingOutputError(f"{model_dir}: cross-validated, one model per fold; name one, e.g. "
                                     f"{model_dir.name}/{subs[0]}")
        if subs:
            raise MissingOutputError(f"{model_dir}: one model per sub-folder ({', '.join(subs)}); name one, e.g. "
                                     f"{model_dir.name}/{subs[0]}")
    return [(p.label, p.probability) for p in TextClassifier(model_dir, hint).predict(texts, sources)]


def predict_uri(uri: str, texts: list[str], sources: list[str] | None = None) -> list[tuple[str, float]]:
    """(label, probability of that label) for each text, by the MLflow Model at ``uri`` (``runs:/<run id>/
    text_model``, ``models:/<task>@champion``, ``models:/<task>/<version>``), loaded through ``mlflow.pyfunc``.
    Raises UserError for a URI that does not load or is not a text classifier's, and as :func:`predict`."""
    for source, text in zip(sources or [f"text {i}" for i in range(1, len(texts) + 1)], texts, strict=True):
        if not text.strip():  # before MLflow and TensorFlow are imported
            raise UserError(f"{source}: empty text, nothing to classify")
    from dltm.mlflow_models import load_text_classifier

    return [(p.label, p.probability) for p in load_text_classifier(uri).predict(texts, sources)]


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


def read_text_file(path: str) -> tuple[str, str]:
    """(name, text) of a UTF-8 file (``-``: stdin), a BOM dropped and every line ending (\\r\\n, \\r) made \\n.
    Raises UserError for a file that is missing, unreadable or not UTF-8 (naming the line and the byte)."""
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
    return name, text.replace("\r\n", "\n").replace("\r", "\n")


def read_texts(path: str) -> tuple[list[str], list[str]]:
    """The non-blank lines of a UTF-8 file (``-``: stdin) and their sources (``file:line``). Any line ending
    (\\n, \\r\\n, \\r) ends a line and none is kept; a BOM is dropped. Raises UserError for a file that is
    missing, unreadable or not UTF-8 (naming the line and the byte), or has no text."""
    name, text = read_text_file(path)
    kept = [(f"{name}:{i}", line) for i, line in enumerate(text.split("\n"), 1) if line.strip()]
    if not kept:
        raise UserError(f"{name}: no text in it (only blank lines)")
    return [line for _, line in kept], [source for source, _ in kept]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="a trained text classifier, e.g. ch07_kim_cnn, one model of a task that trains "
                                 "several, e.g. ch07_kim2014-static/fold_0, or an MLflow Model: "
                                 "models:/ch07_kim_cnn@champion, runs:/<run id>/text_model")
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
    if args.task.startswith(URI_SCHEMES):
        found = predict_uri(args.task, texts, sources)
    else:
        task_id, variant = resolve(args.task)

        from dltm.tasks import dvc_stage

        hint = f"run `dvc repro {dvc_stage(task_id, variant)}` first"
        found = predict(Path(args.models) / args.task, texts, hint, sources)
    for text, (label, p) in zip(texts, found, strict=True):
        print(f"{label}\t{p:.4f}\t{text}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
