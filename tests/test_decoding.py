"""Greedy and beam-search decoding (dltm.decoding) on hand-checkable Markov chains."""

import math

import numpy as np
import pytest

from dltm.decoding import Hypothesis, beam_search, greedy

START, END, A, B = 0, 1, 2, 3


def markov(table: dict[int, list[float]]):
    """A step function whose next-token distribution depends on the last token only; its state counts steps."""
    def step(tokens, states):
        probs = np.array([table[int(t)] for t in tokens])
        with np.errstate(divide="ignore"):  # log 0 = -inf: a token that cannot come
            return np.log(probs), [states[0] + 1]

    return step


# From START, A is likelier (0.6) than B (0.4); after A every continuation is uncertain, after B the sentence
# almost surely ends. Greedy takes A and ends with probability 0.6 x 0.4 = 0.24; "B END" has 0.4 x 0.99 = 0.396.
TRAP = {START: [0.0, 0.0, 0.6, 0.4], A: [0.0, 0.4, 0.3, 0.3], B: [0.0, 0.99, 0.005, 0.005]}


def test_greedy_takes_the_locally_best_token_and_beam_search_finds_the_likelier_sentence():
    step = markov(TRAP)
    assert greedy(step, [np.zeros((1, 1))], START, END, max_length=10) == [[A]]
    best = beam_search(step, [np.zeros((1, 1))], START, END, max_length=10, width=2)[0]
    assert best.tokens == (B,) and best.finished
    assert best.log_prob == pytest.approx(math.log(0.4 * 0.99))


def test_a_beam_of_width_one_is_greedy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        table = {t: list(rng.dirichlet(np.ones(6) * 0.5)) for t in range(6)}
        step = markov(table)
        expected = greedy(step, [np.zeros((1, 1))], START, END, max_length=8)[0]
        for alpha in (0.0, 1.0):
            got = beam_search(step, [np.zeros((1, 1))], START, END, max_length=8, width=1, alpha=alpha)
            assert list(got[0].tokens) == expected


def test_greedy_decodes_a_batch_and_stops_at_max_length():
    step = markov({START: [0, 0, 1, 0], A: [0, 0, 0, 1], B: [0, 0, 1, 0]})  # A B A B ... never ends
    out = greedy(step, [np.zeros((3, 1))], START, END, max_length=5)
    assert out == [[A, B, A, B, A]] * 3


def test_length_normalisation_prefers_the_longer_sentence_when_asked():
    short = Hypothesis((A,), math.log(0.3), True)  # 2 tokens with the end
    long = Hypothesis((A, B, A), math.log(0.2), True)  # 4 tokens with the end
    assert short.score(0.0) > long.score(0.0)  # raw log-probability favours the short one
    assert long.score(1.0) > short.score(1.0)  # per token, the long one is better


def test_bad_arguments_are_named():
    step = markov(TRAP)
    with pytest.raises(ValueError, match="max_length must be >= 1"):
        greedy(step, [np.zeros((1, 1))], START, END, max_length=0)
    with pytest.raises(ValueError, match="width and max_length must be >= 1"):
        beam_search(step, [np.zeros((1, 1))], START, END, max_length=5, width=0)
    with pytest.raises(ValueError, match="one input at a time"):
        beam_search(step, [np.zeros((2, 1))], START, END, max_length=5, width=2)


def test_bleu_of_a_translation_against_itself_is_100_and_the_signature_names_the_tokenizer():
    from dltm.evaluation import translation_scores

    refs = ["我很好。", "你好吗？", "他在看书。"]
    same = translation_scores(refs, refs, tokenize="zh")
    assert same["bleu"] == pytest.approx(100.0) and same["chrf"] == pytest.approx(100.0)
    assert same["exact_match"] == 1.0 and "tok:zh" in same["bleu_signature"]
    other = translation_scores(["我很累。", "你好吗？", "她在写字。"], refs, tokenize="zh")
    assert 0.0 < other["bleu"] < 100.0 and other["exact_match"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="as many hypotheses as references"):
        translation_scores(["a"], refs)
