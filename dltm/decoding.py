"""Decoding a sequence from a model one token at a time: greedy and beam search (chapter 10 on; issue 15).

Both work with any model through a *step function*: given the last token of each of B hypotheses and their
states, it returns the log-probabilities of the next token and the new states::

    step(tokens: np.ndarray (B,) int, states: list[np.ndarray (B, ...)]) -> (log_probs (B, V), new_states)

(for the book's LSTM decoder of 10.2, ``states`` are ``[h, c]`` and the step runs the decoder model on one
time step). A hypothesis ends when it emits ``end``; the returned tokens exclude ``start`` and ``end``.

Greedy decoding is the book's (10.2, "推断"): the most probable token at every step. Beam search keeps the
``width`` best partial hypotheses by summed log-probability (Sutskever et al. 2014; Koehn 2004); finished ones
compete by their *normalised* score ``sum log p / length ** alpha`` (``alpha`` = 0: raw sum, which favours short
outputs; 1: mean per token; Wu et al. 2016 use a similar length penalty). With ``width=1`` and any ``alpha``,
beam search returns exactly the greedy output (tested).

Written here rather than taken from a library: KerasHub's samplers decode a Keras model's token logits with
a cache of its own shape; the book's models are split encoder/decoder Keras models whose state is a list of
arrays, and a 40-line NumPy loop over a step function serves every chapter's models (LSTM, GRU, attention,
Transformer) the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Step = Callable[[np.ndarray, list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]]


def _take(states: list[np.ndarray], index: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(s)[index] for s in states]


def greedy(step: Step, states: Sequence[np.ndarray], start: int, end: int, max_length: int) -> list[list[int]]:
    """The most probable token at every step, for a batch of B inputs at once (``states`` of batch B).

    Returns B token lists, each stopping before ``end`` or after ``max_length`` tokens. Raises ValueError for
    ``max_length`` < 1."""
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    states = [np.asarray(s) for s in states]
    batch = len(states[0]) if states else 1
    tokens = np.full(batch, start, dtype=np.int64)
    out: list[list[int]] = [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for _ in range(max_length):
        log_probs, states = step(tokens, states)
        tokens = np.asarray(log_probs).argmax(axis=-1)
        for i in np.flatnonzero(~done):
            if tokens[i] == end:
                done[i] = True
            else:
                out[i].append(int(tokens[i]))
        if done.all():
            break
    return out


@dataclass(frozen=True)
class Hypothesis:
    """A decoded sequence (``start`` and ``end`` left out), its summed log-probability and whether it ended
    with ``end`` (rather than at ``max_length``)."""

    tokens: tuple[int, ...]
    log_prob: float
    finished: bool

    def score(self, alpha: float) -> float:
        """The log-probability normalised by length: ``log_prob / max(1, len) ** alpha`` (the ``end`` token
        counts in the length of a finished hypothesis)."""
        length = len(self.tokens) + (1 if self.finished else 0)
        return self.log_prob / max(1, length) ** alpha


def beam_search(step: Step, states: Sequence[np.ndarray], start: int, end: int, max_length: int, width: int,
                alpha: float = 1.0) -> list[Hypothesis]:
    """Beam search for ONE input (``states`` of batch 1): the hypotheses found, best first by
    :meth:`Hypothesis.score` with ``alpha``.

    Each step expands the ``width`` live hypotheses by every token and walks the expansions best first by
    summed log-probability: one that emits ``end`` is set aside as finished, the others become the next live
    ones until there are ``width`` of them. The search stops when ``width`` hypotheses have finished, or at
    ``max_length`` (the live ones are then returned unfinished). Raises ValueError for a width or ``max_length``
    below 1 or a batch other than 1."""
    if width < 1 or max_length < 1:
        raise ValueError(f"width and max_length must be >= 1, got {width} and {max_length}")
    states = [np.asarray(s) for s in states]
    if states and len(states[0]) != 1:
        raise ValueError(f"beam_search decodes one input at a time; got a batch of {len(states[0])}")
    live = [Hypothesis((), 0.0, False)]
    last = np.array([start], dtype=np.int64)
    finished: list[Hypothesis] = []
    for _ in range(max_length):
        log_probs, states = step(last, states)
        log_probs = np.asarray(log_probs, dtype=np.float64)
        total = np.array([h.log_prob for h in live])[:, None] + log_probs  # (live, V)
        order = np.argsort(-total, axis=None, kind="stable")[: 2 * width]
        rows, cols = np.unravel_index(order, total.shape)
        keep_rows, keep_tokens, next_live = [], [], []
        for r, c in zip(rows, cols, strict=True):
            if len(next_live) == width:  # the rest rank below every live hypothesis
                break
            h = Hypothesis(live[r].tokens + ((int(c),) if c != end else ()), float(total[r, c]), bool(c == end))
            if h.finished:
                finished.append(h)
            else:
                next_live.append(h)
                keep_rows.append(r)
                keep_tokens.append(c)
        if len(finished) >= width or not next_live:
            break
        live, states = next_live, _take(states, np.array(keep_rows))
        last = np.array(keep_tokens, dtype=np.int64)
    else:
        finished += live
    return sorted(finished or live, key=lambda h: -h.score(alpha))
