"""Answer a question about a text with chapter 13's extractive reader: the DVC workspace's ``models/<task>/``
(``model.keras`` and ``reader.json``), or an MLflow Model, by a ``runs:/`` or ``models:/`` URI of its
``text_model``.

    python -m stages.answer ch13_span_reader --context "北京是中华人民共和国的首都。" --question "中国的首都是哪里？"
    python -m stages.answer models:/ch13_span_reader@champion --context "..." --question "..."

Prints the answer (a span of the context), a tab, and its score (p_start x p_end, in [0, 1]). A mistake ends in
one line ``error: ...`` and exit status 2: an unknown task id (the readers are listed), a task that has not been
trained (the DVC stage that trains it is named), a URI that is not a reader's, an empty context or question. Not
a DVC stage: it only reads what ``train_span_reader`` wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dltm import cli
from dltm.cli import UserError
from stages.predict import URI_SCHEMES, load_pyfunc

READERS = ("ch13_span_reader",)
"""The tasks whose models answer questions about a text (each saves reader.json beside its model)."""


def answer(task: str, context: str, question: str, models: str = "models") -> tuple[str, float]:
    """The answer span and its score by ``task``'s reader in ``models/`` (one of :data:`READERS`), or by the
    MLflow Model at a ``runs:/``/``models:/`` URI. Raises UserError as the module docstring says."""
    if not context.strip() or not question.strip():
        raise UserError("--context and --question must both be non-empty text")
    if task.startswith(URI_SCHEMES):
        import pandas as pd

        from dltm.mlflow_models import ReaderPyfunc

        model = load_pyfunc(task, ReaderPyfunc, "reader's text_model")
        row = model.predict(pd.DataFrame({"context": [context], "question": [question]})).iloc[0]
        return str(row["answer"]), float(row["score"])
    if task not in READERS:  # before TensorFlow is imported
        raise UserError(f"unknown reader {task!r}; answer takes: {', '.join(READERS)}, or an MLflow URI "
                        f"(models:/<task>@champion, runs:/<run id>/text_model)")
    from dltm.spans import SpanReader
    from dltm.tasks import dvc_stage

    reader = SpanReader(Path(models) / task, f"run `dvc repro {dvc_stage(task)}` first")
    found = reader.answer([(context, question)])[0]
    if found.context_cut:
        print(f"note: the reader reads the first {reader.vocab.context_words} words of a context; the rest of "
              f"this one was not searched", file=sys.stderr)
    return found.answer, found.score


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help=f"a trained reader ({', '.join(READERS)}) or an MLflow Model URI")
    ap.add_argument("--context", required=True, help="the text that holds the answer")
    ap.add_argument("--question", required=True, help="a question about it")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_args(argv)
    text, score = answer(args.task, args.context, args.question, args.models)
    print(f"{text}\t{score:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
