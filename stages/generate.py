"""Generate text with a trained character-level language model (``models/<task>/model.keras`` and the
vocabulary saved beside it):

    python -m stages.generate ch08_char_rnn "First Citizen:" --chars 200 --temperature 0.8
    python -m stages.generate ch08_char_rnn "ROMEO:" --temperature 0      # greedy

Prints the seed text followed by the generated characters. The same ``--seed`` gives the same text.
Not a DVC stage: it only reads what ``train@<task>`` wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help="a trained character-level LM task, e.g. ch08_char_rnn")
    ap.add_argument("seed_text", help="the text to continue (only characters of the training corpus)")
    ap.add_argument("--chars", type=int, default=200, help="how many characters to generate (default 200)")
    ap.add_argument("--temperature", type=float, default=0.8, help="< 1 sharper, > 1 flatter, 0 greedy")
    ap.add_argument("--seed", type=int, default=1, help="the sampling seed (default 1)")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_args(argv)
    if args.chars < 0 or args.temperature < 0:
        ap.error("--chars and --temperature must be >= 0")

    from pipelines.ch08_rnn import load_char_model, sample

    model, info = load_char_model(Path(args.models) / args.task)
    try:
        text = sample(model, info["ix_to_char"], args.seed_text, args.chars, args.temperature, args.seed,
                      window=int(info["seq_length"]))
    except ValueError as e:
        ap.error(str(e))
    print(args.seed_text + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
