"""Generate text with a trained character-level language model (``models/<task>/model.keras`` and the
vocabulary saved beside it):

    python -m stages.generate ch08_char_rnn "First Citizen:" --chars 200 --temperature 0.8
    python -m stages.generate ch08_char_rnn "ROMEO:" --temperature 0      # greedy

Prints the seed text followed by the generated characters. The same ``--seed`` gives the same text.
A mistake (an unknown or untrained task, a temperature that is not a finite number >= 0, a negative
``--chars`` or ``--seed``, seed text with characters the corpus lacks) ends in one line ``error: ...``, exit
status 2. Not a DVC stage: it only reads what ``train@<task>`` wrote.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from dltm import cli
from dltm.cli import UserError

CHAR_LMS = ("ch08_char_rnn",)
"""The tasks that train a character-level language model (chapter 8's ``train_char_rnn``)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="a trained character-level LM task, e.g. ch08_char_rnn")
    ap.add_argument("seed_text", help="the text to continue (only characters of the training corpus)")
    ap.add_argument("--chars", type=int, default=200, help="how many characters to generate (default 200)")
    ap.add_argument("--temperature", type=float, default=0.8, help="< 1 sharper, > 1 flatter, 0 greedy")
    ap.add_argument("--seed", type=int, default=1, help="the sampling seed, >= 0 (default 1)")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_args(argv)
    if args.chars < 0:
        raise UserError(f"--chars must be >= 0, got {args.chars}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise UserError(f"--temperature must be a finite number >= 0 (0: greedy), got {args.temperature}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if not args.seed_text:
        raise UserError("the seed text is empty: give at least one character to continue")
    if args.task not in CHAR_LMS:
        raise UserError(f"unknown character-level language model {args.task!r}; generate takes: "
                        f"{', '.join(CHAR_LMS)}")

    from dltm.tasks import dvc_stage
    from pipelines.ch08_rnn import load_char_model, sample  # TensorFlow: only once the arguments are good

    model, info = load_char_model(Path(args.models) / args.task, f"run `dvc repro {dvc_stage(args.task)}` first")
    vocab = info["ix_to_char"]
    missing = sorted(set(args.seed_text) - set(vocab))
    if missing:
        raise UserError(f"the seed text has characters that {args.task}'s corpus lacks: {''.join(missing)!r} "
                        f"(its {len(vocab)} characters: {''.join(vocab)!r})")
    try:
        text = sample(model, vocab, args.seed_text, args.chars, args.temperature, args.seed,
                      window=int(info["seq_length"]))
    except ValueError as e:  # the checks of sample() (the model's own output, here)
        raise UserError(f"{args.task}: {e}") from None
    print(args.seed_text + text)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
