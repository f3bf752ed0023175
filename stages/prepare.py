"""DVC stage ``prepare@<dataset>``: tokenize, pad and split ``data/raw/<dataset>/`` into
``data/prepared/<dataset>/``, with the settings of ``params.yaml: prepare.<dataset>``.

``prepare_custom`` (``python -m stages.prepare custom``) reads your own file instead, from
``prepare.custom.path`` (README, "Bring your own data")."""

from __future__ import annotations

import argparse
import json
import sys

from dltm import babi, blogs, cli, data, spans, wordpiece
from dltm import params as P

PREPARERS = {**data.PREPARERS, "authors": blogs.prepare_authors, "wordpiece": wordpiece.prepare_wordpiece,
             "babi": babi.prepare_babi, "cmrc2018": spans.prepare_cmrc2018}
"""Each dataset's preparer: dltm.data's, chapter 11.4's blog corpus (dltm.blogs: its own module, so that its
stage alone depends on it), chapter 12's WordPiece ids (dltm.wordpiece, from IMDB's and MR's text) and chapter
13's bAbI stories (dltm.babi) and CMRC 2018's segmented passages (dltm.spans)."""
PREPARE_PARAMS = {**data.PREPARE_PARAMS, "authors": blogs.PARAMS, "wordpiece": wordpiece.PARAMS,
                  "babi": babi.PARAMS, "cmrc2018": spans.PARAMS}
SOURCES = {"wordpiece": "data", "imdb_text": "data/raw/imdb"}
"""Where a preparer reads from, when not data/raw/<dataset>: WordPiece reads data/raw/imdb and data/prepared/mr;
chapter 6's ``imdb_text`` corpus, IMDB's training reviews."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset", choices=sorted(PREPARERS))
    args = ap.parse_args(argv)
    where = f"prepare.{args.dataset}"
    settings = P.validate(where, P.section(P.load(), where), PREPARE_PARAMS[args.dataset])
    source = P.require(settings, "path", str, "prepare.custom") if args.dataset == "custom" \
        else SOURCES.get(args.dataset, f"data/raw/{args.dataset}")
    info = PREPARERS[args.dataset](source, f"data/prepared/{args.dataset}", settings)
    print(json.dumps(info, indent=2))
    if info.get("dropped_empty"):
        print(f"prepare_custom: {dropped_summary(info['dropped_empty_lines'])}", file=sys.stderr)
    return 0


def dropped_summary(lines: dict[str, list[int]], show: int = 10) -> str:
    """'left out 3 rows with an empty text or label: train.csv lines 4, 9; test.csv line 2' (``show`` lines
    per file at most; the full list is in info.json)."""
    parts = []
    for name, numbers in lines.items():
        listed = ", ".join(map(str, numbers[:show])) + (f" and {len(numbers) - show} more" if len(numbers) > show
                                                        else "")
        parts.append(f"{name} line{'s' if len(numbers) > 1 else ''} {listed}")
    total = sum(map(len, lines.values()))
    return f"left out {total} row{'s' if total > 1 else ''} with an empty text or label: {'; '.join(parts)} " \
           f"(prepare.custom.drop_empty; all lines in info.json)"


if __name__ == "__main__":
    sys.exit(cli.run(main))
