"""ROUGE of generated text (chapter 11.5's titles), by Google's ``rouge-score`` package (a reimplementation of
Lin 2004's ROUGE-1.5.5).

rouge-score's own tokenizer lower-cases and splits on every non-alphanumeric character ("A/B" -> "a", "b");
:func:`rouge_scores` passes the project's own word split instead (:func:`dltm.translation.split_words`, the
tokens the model reads and writes), leaving out tokens that are punctuation only, so that a title scores on its
words. No stemming (ROUGE-1.5.5's ``-m`` is off by default too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_PUNCTUATION = re.compile(r"^[^\w]+$")


class _Tokens:
    """The ``tokenize(text)`` object rouge-score takes."""

    def __init__(self, split: Callable[[str], list[str]]):
        self.split = split

    def tokenize(self, text: str) -> list[str]:
        return [t for t in self.split(text) if not _PUNCTUATION.match(t)]


def rouge_scores(hypotheses: list[str], references: list[str], split: Callable[[str], list[str]] | None = None
                 ) -> dict[str, Any]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (``rouge1``, ``rouge2``, ``rougeL``; 0-100) of each hypothesis against
    its one reference, and their recalls (``rouge1_recall`` ...). ``split``: a text's tokens (default: English
    words of :func:`dltm.translation.split_words`); punctuation-only tokens are left out. Raises ValueError when
    the lists differ in length or are empty."""
    from rouge_score.rouge_scorer import RougeScorer

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"rouge_scores needs as many hypotheses as references, at least one; got "
                         f"{len(hypotheses)} and {len(references)}")
    if split is None:
        from dltm.translation import split_words

        def split(text: str) -> list[str]:
            return split_words(text, "en")

    scorer = RougeScorer(list(ROUGE_TYPES), tokenizer=_Tokens(split))
    scores = [scorer.score(r, h) for h, r in zip(hypotheses, references, strict=True)]
    out: dict[str, Any] = {}
    for kind in ROUGE_TYPES:
        out[kind] = 100.0 * float(np.mean([s[kind].fmeasure for s in scores]))
        out[f"{kind}_recall"] = 100.0 * float(np.mean([s[kind].recall for s in scores]))
    return out
