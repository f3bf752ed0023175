"""Exact match and F1 of extractive question answering: CMRC 2018 (Chinese) and SQuAD v1.1 (English).

Definitions, reimplemented from the published evaluation scripts:

* CMRC 2018 -- Cui et al. 2019, "A Span-Extraction Dataset for Chinese Machine Reading Comprehension" (EMNLP),
  official ``cmrc2018_evaluate.py`` (github.com/ymcui/cmrc2018, ``squad-style-data/``, v5). Text is lower-cased
  and stripped, then segmented by :func:`mixed_segmentation`: every Chinese character (U+4E00-U+9FA5) and every
  character of :data:`CMRC_PUNCTUATION` is a token of its own, other runs (English words, numbers) are split into
  words. F1 counts the longest common *substring* (contiguous, the official ``find_lcs``) of the answer's and the
  prediction's tokens, punctuation removed: precision = lcs / len(prediction tokens), recall = lcs / len(answer
  tokens). EM is string equality after :func:`remove_punctuation`. A question scores its best reference answer.
* SQuAD v1.1 -- Rajpurkar et al. 2016, "SQuAD: 100,000+ Questions for Machine Comprehension of Text" (EMNLP),
  official ``evaluate-v1.1.py``: :func:`normalize_answer` (lower-case, drop ``string.punctuation``, drop the
  articles a/an/the, collapse whitespace); EM is equality of the normalised strings, F1 the overlap of the two
  bags of whitespace tokens (multiset intersection); best reference answer per question.

Why our own code: no maintained pip package computes CMRC's metric offline (Hugging Face ``evaluate`` downloads
its metric scripts from the Hub at run time), and both definitions are a few lines.

Units: every score here is a fraction in [0, 1]; the official scripts print 100 x these numbers. Corpus scores
average over the *reference* questions; a question with no prediction scores 0, as in both official scripts, and
predictions for unknown ids are ignored.

Deviation from the official CMRC script (the only one): it splits the non-Chinese runs with ``nltk.word_tokenize``,
which needs NLTK's punkt sentence-splitter data, not downloadable here. :func:`mixed_segmentation` splits those
runs with a regular expression instead: a word is a run of word characters (letters, digits) that may carry an
inner ``.`` followed by a word character or a ``,`` followed by a digit (as NLTK's Treebank rules keep "3.14",
"1,000", "python3.8" whole); every other non-space character is a token of its own. NLTK's finer rules
(contractions "don't" -> "do", "n't"; quotes rewritten as ``` `` ``` and ``''``; a sentence-final period split by
punkt) are not reproduced; they are rare inside the short answers of CMRC. Everything else follows the official
script, including two quirks: a punctuation character removed with ``rm_punc`` does not end the current
non-Chinese run ("a-b" -> ["ab"]), and the two-character list entry "……" never equals a single character, so
"…" is not punctuation there (nor here).

:func:`locate_answer` recovers an answer's character offset: CMRC's official data has ``answer_start`` values
that miss their text (21 of 10,142 train answers, 200 of 9,657 dev answers).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

# The ``sp_char`` list of the official cmrc2018_evaluate.py, in its order ("……" is one two-character entry).
CMRC_PUNCTUATION: tuple[str, ...] = (
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
)  # fmt: skip
_CMRC_PUNCTUATION = frozenset(CMRC_PUNCTUATION)
_RUN_TOKEN = re.compile(r"\w+(?:\.\w+|,\d\w*)*|[^\w\s]")
_SQUAD_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _is_chinese(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fa5"


def _split_run(run: str) -> list[str]:
    """Words and punctuation of a non-Chinese run (stands in for ``nltk.word_tokenize``, see module doc)."""
    return _RUN_TOKEN.findall(run)


def mixed_segmentation(text: str, rm_punc: bool = False) -> list[str]:
    """CMRC 2018 tokens of ``text``: lower-cased and stripped, one token per Chinese character (U+4E00-U+9FA5)
    and per :data:`CMRC_PUNCTUATION` character, other runs split into words (see the module doc).

    With ``rm_punc`` the :data:`CMRC_PUNCTUATION` characters are dropped (without ending the current run, as the
    official script does). ``mixed_segmentation("2018年") == ["2018", "年"]``.
    """
    tokens: list[str] = []
    run = ""
    for char in text.lower().strip():
        if rm_punc and char in _CMRC_PUNCTUATION:
            continue
        if _is_chinese(char) or char in _CMRC_PUNCTUATION:
            if run:
                tokens.extend(_split_run(run))
                run = ""
            tokens.append(char)
        else:
            run += char
    if run:
        tokens.extend(_split_run(run))
    return tokens


def remove_punctuation(text: str) -> str:
    """``text`` lower-cased and stripped, then without its :data:`CMRC_PUNCTUATION` characters (CMRC's EM key)."""
    return "".join(char for char in text.lower().strip() if char not in _CMRC_PUNCTUATION)


def longest_common_substring(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest *contiguous* run of tokens common to ``a`` and ``b`` (the official ``find_lcs``)."""
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def _check_answers(answers: Sequence[str]) -> None:
    if isinstance(answers, str):
        raise TypeError("answers must be a list of reference strings, not one string")
    if len(answers) == 0:
        raise ValueError("answers must hold at least one reference answer")


def _f1(overlap: int, n_prediction: int, n_answer: int) -> float:
    if overlap == 0:
        return 0.0
    precision = overlap / n_prediction
    recall = overlap / n_answer
    return 2 * precision * recall / (precision + recall)


def cmrc_em(prediction: str, answers: Sequence[str]) -> float:
    """CMRC 2018 exact match of one prediction: 1.0 when it equals one of ``answers`` after
    :func:`remove_punctuation`, else 0.0. Raises ValueError for an empty ``answers``, TypeError for a bare str."""
    _check_answers(answers)
    key = remove_punctuation(prediction)
    return 1.0 if any(remove_punctuation(answer) == key for answer in answers) else 0.0


def cmrc_f1(prediction: str, answers: Sequence[str]) -> float:
    """CMRC 2018 F1 of one prediction, in [0, 1]: the best over ``answers`` of the longest-common-substring F1 of
    the :func:`mixed_segmentation` tokens (punctuation removed). An empty prediction scores 0. Raises ValueError
    for an empty ``answers``, TypeError for a bare str."""
    _check_answers(answers)
    predicted = mixed_segmentation(prediction, rm_punc=True)
    scores = []
    for answer in answers:
        reference = mixed_segmentation(answer, rm_punc=True)
        scores.append(_f1(longest_common_substring(reference, predicted), len(predicted), len(reference)))
    return max(scores)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, drop ``string.punctuation``, drop articles, collapse whitespace."""
    text = "".join(char for char in text.lower() if char not in _SQUAD_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_em(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD v1.1 exact match of one prediction: 1.0 when its :func:`normalize_answer` equals one answer's, else
    0.0. Raises ValueError for an empty ``answers``, TypeError for a bare str."""
    _check_answers(answers)
    key = normalize_answer(prediction)
    return 1.0 if any(normalize_answer(answer) == key for answer in answers) else 0.0


def squad_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD v1.1 F1 of one prediction, in [0, 1]: the best over ``answers`` of the F1 of the two bags of
    normalised whitespace tokens (a token counts as often as it occurs in both). Raises ValueError for an empty
    ``answers``, TypeError for a bare str."""
    _check_answers(answers)
    predicted = normalize_answer(prediction).split()
    scores = []
    for answer in answers:
        reference = normalize_answer(answer).split()
        overlap = sum((Counter(predicted) & Counter(reference)).values())
        scores.append(_f1(overlap, len(predicted), len(reference)))
    return max(scores)


def _corpus(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    em: Callable[[str, Sequence[str]], float],
    f1: Callable[[str, Sequence[str]], float],
) -> dict[str, float | int]:
    if not references:
        raise ValueError("references must hold at least one question")
    em_sum = f1_sum = 0.0
    for question_id, answers in references.items():
        if question_id not in predictions:
            _check_answers(answers)
            continue  # unanswered: 0, as the official scripts count it
        em_sum += em(predictions[question_id], answers)
        f1_sum += f1(predictions[question_id], answers)
    n = len(references)
    return {"em": em_sum / n, "f1": f1_sum / n, "questions": n}


def cmrc_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float | int]:
    """CMRC 2018 corpus scores: ``{"em", "f1"}`` the means of :func:`cmrc_em` / :func:`cmrc_f1` over the questions
    of ``references`` (id -> reference answers), fractions in [0, 1] (the official script prints x100), and
    ``"questions"`` their count. A missing prediction scores 0; extra prediction ids are ignored. Raises
    ValueError for empty ``references`` or a question without answers."""
    return _corpus(predictions, references, cmrc_em, cmrc_f1)


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float | int]:
    """SQuAD v1.1 corpus scores, shaped and counted as :func:`cmrc_scores` but with :func:`squad_em` /
    :func:`squad_f1`."""
    return _corpus(predictions, references, squad_em, squad_f1)


def locate_answer(context: str, text: str, answer_start: int | None) -> int | None:
    """Character offset of ``text`` in ``context``: ``answer_start`` itself when
    ``context[answer_start:answer_start + len(text)] == text`` (and ``answer_start >= 0``); otherwise the start of
    the occurrence nearest to ``answer_start`` (ties: the earlier; ``None`` -> the first occurrence); ``None``
    when ``text`` does not occur. Raises ValueError for an empty ``text``."""
    if not text:
        raise ValueError("text must not be empty")
    if answer_start is not None and answer_start >= 0 and context[answer_start : answer_start + len(text)] == text:
        return answer_start
    anchor = 0 if answer_start is None else answer_start
    best: int | None = None
    position = context.find(text)
    while position != -1:  # occurrences in increasing order, so a tie keeps the earlier one
        if best is None or abs(position - anchor) < abs(best - anchor):
            best = position
        position = context.find(text, position + 1)
    return best
