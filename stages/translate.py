"""Translate sentences with a trained encoder-decoder of chapter 10: the DVC workspace's ``models/<task>/``
(``model.keras`` and ``translator.json``), or an MLflow Model, by a ``runs:/`` or ``models:/`` URI of its
``text_model``.

    python -m stages.translate ch10_seq2seq_attention "How are you?" "I'm hungry."
    python -m stages.translate ch10_seq2seq_char "See you." --beam 3        # beam search of 3 hypotheses
    python -m stages.translate ch10_seq2seq_word --file sentences.txt        # one sentence per line ('-': stdin)
    python -m stages.translate models:/ch10_seq2seq_attention@champion "Thank you."

Prints one tab-separated line per sentence: the sentence, its translation. ``--beam 1`` (the default) decodes
greedily, as the book does; ``--beam K`` keeps K hypotheses, scored ``log p / length ** alpha`` (``--alpha``).
A mistake ends in one line ``error: ...`` and exit status 2: an unknown task id (the translators are listed), a
task that has not been trained (the DVC stage that trains it is named), a URI that is not a translator's, a
missing or non-UTF-8 file, an empty sentence, a beam below 1. Not a DVC stage: it only reads what
``train_translation@<task>`` wrote.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from dltm import cli
from dltm.cli import UserError
from stages.predict import URI_SCHEMES, load_pyfunc, read_texts

TRANSLATORS = ("ch10_seq2seq_char", "ch10_seq2seq_char_fra", "ch10_seq2seq_word", "ch10_seq2seq_attention",
               "ch10_gru_cho")
"""The tasks whose models translate (each saves translator.json beside its model)."""


def translate(task: str, texts: list[str], beam: int = 1, alpha: float = 1.0, models: str = "models",
              known: tuple[str, ...] = TRANSLATORS) -> list[str]:
    """The translation of each text by ``task``'s model in ``models/`` (one of ``known``), or by the MLflow Model
    at a ``runs:/``/``models:/`` URI. Raises UserError as the module docstring says."""
    if beam < 1:
        raise UserError(f"--beam must be >= 1 (1: greedy decoding), got {beam}")
    if not math.isfinite(alpha) or alpha < 0:
        raise UserError(f"--alpha must be a finite number >= 0, got {alpha}")
    for i, text in enumerate(texts, 1):
        if not text.strip():
            raise UserError(f"text {i}: empty, nothing to translate")
    if task.startswith(URI_SCHEMES):
        from dltm.mlflow_models import TranslatorPyfunc

        model = load_pyfunc(task, TranslatorPyfunc, "translator's text_model")
        return list(model.predict(texts, params={"beam": beam, "length_alpha": alpha})["translation"])
    if task not in known:  # before TensorFlow is imported
        raise UserError(f"unknown translator {task!r}; translate takes: {', '.join(known)}, or an MLflow "
                        f"URI (models:/<task>@champion, runs:/<run id>/text_model)")
    from dltm.tasks import dvc_stage
    from dltm.translation import load_translator

    translator = load_translator(Path(models) / task, f"run `dvc repro {dvc_stage(task)}` first")
    return translator.translate(texts, beam=beam, alpha=alpha)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help=f"a trained translator ({', '.join(TRANSLATORS)}) or an MLflow Model URI")
    ap.add_argument("texts", nargs="*", help="English sentences to translate")
    ap.add_argument("--file", help="a UTF-8 file with one sentence per line ('-' for stdin)")
    ap.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy, as the book)")
    ap.add_argument("--alpha", type=float, default=1.0, help="length normalisation of beam scores (default 1)")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_intermixed_args(argv)
    if not args.texts and not args.file:
        ap.error("give sentences on the command line or --file")
    texts = list(args.texts) + (read_texts(args.file)[0] if args.file else [])
    for text, out in zip(texts, translate(args.task, texts, args.beam, args.alpha, args.models), strict=True):
        print(f"{text}\t{out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
