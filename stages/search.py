"""Search chapter 14's collection of IMDB test reviews with a query text: the nearest reviews by the cosine of
their paragraph vectors (``ch14_paragraph_vector``: PV-DBOW, the query's vector inferred by gensim's
``infer_vector``) or of their skip-thought vectors (``ch14_skip_thought``: the mean of a text's sentence
vectors), with their labels.

    python -m stages.search ch14_paragraph_vector "a tense thriller with a twist"
    python -m stages.search ch14_skip_thought "a tense thriller with a twist" -k 5 --json

Prints one line per review: rank, cosine similarity, the review's label, its file (``test/<label>/<id>_<rating>.txt``
under aclImdb/) and the start of its text. A mistake ends in one line ``error: ...`` and
exit status 2: an unknown task id (the searchable tasks are listed), a task that has not been trained (the DVC
stage that trains it is named), an empty query or a query with no word the model knows. Not a DVC stage: it
only reads what the task's training stage wrote to ``models/<task>/search/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dltm import cli
from dltm.cli import UserError

SEARCHERS = {"ch14_paragraph_vector": "ParagraphVectorSearch", "ch14_skip_thought": "SkipThoughtSearch"}
"""The tasks whose models search a collection (each writes models/<task>/search/), and the class of
:mod:`dltm.retrieval` that reads it."""


def search(task: str, query: str, k: int = 10, models: str = "models") -> list:
    """The ``k`` reviews nearest ``query`` by ``task``'s vectors (:class:`dltm.retrieval.Hit`, best first).
    Raises UserError as the module docstring says."""
    if task not in SEARCHERS:
        raise UserError(f"unknown searcher {task!r}; search takes: {', '.join(SEARCHERS)}")
    if k < 1:
        raise UserError(f"-k must be at least 1, got {k}")
    from dltm import retrieval
    from dltm.tasks import dvc_stage

    searcher = getattr(retrieval, SEARCHERS[task])(Path(models) / task / retrieval.SEARCH_DIR,
                                                   f"run `dvc repro {dvc_stage(task)}` first")
    return searcher.search(query, k)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", help=f"a trained searcher: {', '.join(SEARCHERS)}")
    ap.add_argument("query", help="the text to search for")
    ap.add_argument("-k", type=int, default=10, help="how many reviews to list (default 10)")
    ap.add_argument("--json", action="store_true", help="print the hits as JSON lines")
    ap.add_argument("--models", default="models", help="the models folder (default: models)")
    args = ap.parse_args(argv)
    from dltm.retrieval import describe, snippet

    hits = search(args.task, args.query, args.k, args.models)
    for hit, row in zip(hits, describe(hits), strict=True):
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{hit.rank:>3}  {hit.similarity:.3f}  {hit.label}  {hit.name}  {snippet(hit.text, 100)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
