"""Generate text with a trained model: a character-level language model (``models/<task>/model.keras`` and the
vocabulary saved beside it) continues a seed text; chapter 11.5's title generator writes a title for an abstract.

    python -m stages.generate ch08_char_rnn "First Citizen:" --chars 200 --temperature 0.8
    python -m stages.generate ch08_char_rnn "ROMEO:" --temperature 0      # greedy
    python -m stages.generate ch11_title_generation --file abstract.txt   # abstracts apart by a blank line
    python -m stages.generate ch11_title_generation "We propose ..." --beam 3

The language model prints the seed text followed by the generated characters; the same ``--seed`` gives the same
text. The title generator prints one title per abstract (greedy, as the book; ``--beam K``: beam search); an
abstract's lines are joined, a word hyphenated across a line break made whole. A mistake (an unknown or
untrained task, a temperature that is not a finite number >= 0, a negative ``--chars`` or ``--seed``, seed text
with characters the corpus lacks, a missing or non-UTF-8 file, an empty abstract) ends in one line
``error: ...``, exit status 2. Not a DVC stage: it only reads what training wrote.
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
TITLE_GENERATORS = ("ch11_title_generation",)
"""The tasks whose encoder-decoder writes a title for an abstract (chapter 11.5)."""


def read_abstracts(path: str) -> list[str]:
    """The abstracts of a UTF-8 file (``-``: stdin): runs of non-blank lines, apart by blank lines, each joined
    into one line as :func:`pipelines.ch11_attention.read_titles` joins the book's. Raises UserError as
    :func:`stages.predict.read_text_file`, or for a file with no text."""
    import re

    from stages.predict import read_text_file

    name, text = read_text_file(path)
    abstracts = [" ".join(re.sub(r"-\n(?=\w)", "", block).split()) for block in re.split(r"\n\s*\n", text)]
    abstracts = [a for a in abstracts if a]
    if not abstracts:
        raise UserError(f"{name}: no text in it (only blank lines)")
    return abstracts


def generate_titles(args) -> int:
    from stages.translate import translate

    if args.seed_text is not None and args.file:
        raise UserError("give an abstract on the command line or --file, not both")
    if args.seed_text is None and not args.file:
        raise UserError("give an abstract on the command line, or --file with abstracts apart by blank lines")
    abstracts = read_abstracts(args.file) if args.file else [" ".join(args.seed_text.split())]
    if not abstracts[0]:
        raise UserError("the abstract is empty: give at least one word")
    for title in translate(args.task, abstracts, args.beam, 1.0, args.models, known=TITLE_GENERATORS):
        print(title)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help=f"a trained task: {', '.join(CHAR_LMS + TITLE_GENERATORS)}")
    ap.add_argument("seed_text", nargs="?", help="the text to continue (only characters of the training corpus), "
                    "or an abstract")
    ap.add_argument("--chars", type=int, default=200, help="how many characters to generate (default 200)")
    ap.add_argument("--temperature", type=float, default=0.8, help="< 1 sharper, > 1 flatter, 0 greedy")
    ap.add_argument("--seed", type=int, default=1, help="the sampling seed, >= 0 (default 1)")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    ap.add_argument("--file", help="titles: a UTF-8 file of abstracts apart by blank lines ('-' for stdin)")
    ap.add_argument("--beam", type=int, default=1, help="titles: beam width (default 1: greedy, as the book)")
    args = ap.parse_args(argv)
    if args.task in TITLE_GENERATORS:
        return generate_titles(args)
    if args.file:
        raise UserError(f"--file is for a title generator ({', '.join(TITLE_GENERATORS)}); {args.task} continues "
                        f"the seed text")
    if args.seed_text is None:
        raise UserError("give the seed text to continue")
    if args.chars < 0:
        raise UserError(f"--chars must be >= 0, got {args.chars}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise UserError(f"--temperature must be a finite number >= 0 (0: greedy), got {args.temperature}")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if not args.seed_text:
        raise UserError("the seed text is empty: give at least one character to continue")
    if args.task not in CHAR_LMS:
        raise UserError(f"unknown task {args.task!r}; generate takes: {', '.join(CHAR_LMS + TITLE_GENERATORS)}")

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
