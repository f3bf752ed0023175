"""Attention: alignment scores between a query and a sequence of keys, and the weighted context they give.

The book's 11.1.2 (lines 5188-5260) lists the alignment score functions ``score(s_t, h_i)`` of a decoder state
``s_t`` (the query) against each encoder state ``h_i`` (the keys), one function each here:

========== =================================== =====================================================
name       score(q, k)                          source
========== =================================== =====================================================
content    cos(q, k)                            Graves et al. (2014), content-based addressing
location   (W_a q)_s, the key's position s only Luong et al. (2015), "location"
dot        q . k                                Luong et al. (2015), "dot"
scaled_dot q . k / sqrt(d)                      Vaswani et al. (2017)
general    q W k                                Luong et al. (2015), "general" (multiplicative)
additive   v . tanh(W_q q + W_k k)              Bahdanau et al. (2015), Luong's "concat"
========== =================================== =====================================================

Shapes: queries ``(batch, T, d_q)``, keys ``(batch, S, d_k)`` give scores ``(batch, T, S)``; content, dot and
scaled dot need ``d_q == d_k``; location scores positions up to a fixed ``max_keys`` and ignores the keys'
values. :func:`masked_softmax` turns scores into weights over the S keys, a padded key (``mask`` False) getting
weight exactly 0; :class:`AlignmentAttention` is the Keras layer that holds ``W`` and ``v`` and returns the
context ``weights @ values`` with the weights. Everything is ``keras.ops``, so it runs on every Keras backend.

Written here rather than taken from Keras: ``keras.layers.Attention`` (dot / scaled dot) and
``AdditiveAttention`` give one score each, without the "general" form, and chapter 11 sets the score
functions side by side, each tested against NumPy (tests/test_attention.py).
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

SCORES = ("content", "location", "dot", "scaled_dot", "general", "additive")
"""The score functions :class:`AlignmentAttention` takes, by name."""


def content_score(query, keys, eps: float = 1e-8):
    """``cos(q, k) = q . k / (|q| |k|)`` (content-based addressing, Graves et al. 2014): (batch, T, d),
    (batch, S, d) -> (batch, T, S), in [-1, 1]; a zero vector scores 0 (``eps`` guards the division)."""
    qn = ops.sqrt(ops.sum(ops.square(query), axis=-1, keepdims=True))  # (batch, T, 1)
    kn = ops.sqrt(ops.sum(ops.square(keys), axis=-1, keepdims=True))  # (batch, S, 1)
    return dot_score(query, keys) / ops.maximum(ops.matmul(qn, ops.transpose(kn, (0, 2, 1))), eps)


def location_score(query, keys, w):
    """``W_a q`` (Luong et al. 2015, "location"): the score of key position s is the s-th output of a linear map
    of the query alone, ``w`` (d_q, max_keys); (batch, T, d_q), keys (batch, S, d_k) with S <= max_keys ->
    (batch, T, S)."""
    return ops.matmul(query, w)[..., :ops.shape(keys)[1]]


def dot_score(query, keys):
    """``q . k`` for every query and key: (batch, T, d), (batch, S, d) -> (batch, T, S)."""
    return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))


def scaled_dot_score(query, keys):
    """``q . k / sqrt(d)`` (Vaswani et al. 2017): (batch, T, d), (batch, S, d) -> (batch, T, S)."""
    return dot_score(query, keys) / math.sqrt(int(keys.shape[-1]))


def general_score(query, keys, w):
    """``q W k`` (Luong et al. 2015): ``w`` (d_q, d_k); (batch, T, d_q), (batch, S, d_k) -> (batch, T, S)."""
    return dot_score(ops.matmul(query, w), keys)


def additive_score(query, keys, w_q, w_k, v):
    """``v . tanh(W_q q + W_k k)`` (Bahdanau et al. 2015): ``w_q`` (d_q, a), ``w_k`` (d_k, a), ``v`` (a,);
    (batch, T, d_q), (batch, S, d_k) -> (batch, T, S)."""
    hidden = ops.tanh(ops.expand_dims(ops.matmul(query, w_q), 2) + ops.expand_dims(ops.matmul(keys, w_k), 1))
    return ops.tensordot(hidden, v, axes=1)


def masked_softmax(scores, mask=None):
    """Softmax over the last axis (the keys) of ``scores`` (batch, T, S); where ``mask`` (batch, S), True for a
    real key, is False the weight is exactly 0. A row with no real key gets all-zero weights (no NaN)."""
    if mask is None:
        return ops.softmax(scores, axis=-1)
    keep = ops.expand_dims(ops.cast(mask, scores.dtype), 1)  # (batch, 1, S)
    shifted = scores - ops.max(ops.where(keep > 0, scores, ops.full_like(scores, -1e9)), axis=-1, keepdims=True)
    e = ops.exp(ops.minimum(shifted, 0.0)) * keep
    return e / ops.maximum(ops.sum(e, axis=-1, keepdims=True), 1e-9)


@keras.saving.register_keras_serializable(package="dltm")
class AlignmentAttention(layers.Layer):
    """Attention of queries over keys with one of :data:`SCORES`: ``call(query, keys, values=None,
    key_mask=None)`` -> ``(context, weights)``, context ``(batch, T, d_v)`` = weights ``(batch, T, S)`` @ values
    (the keys where no values are given). ``key_mask`` (batch, S) is True for a real key; padded keys get
    weight 0. ``units``: the width ``a`` of the additive score's hidden layer; ``max_keys``: the longest key
    sequence the location score scores (the others ignore both).

    Raises ValueError for an unknown score."""

    def __init__(self, score: str = "general", units: int | None = None, max_keys: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if score not in SCORES:
            raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
        if score == "location" and not max_keys:
            raise ValueError("the location score needs max_keys, the longest key sequence it scores")
        self.score, self.units, self.max_keys = score, units, max_keys
        self.supports_masking = True  # the outputs keep the queries' mask (a decoder's padded steps)

    def build(self, query_shape, keys_shape, values_shape=None, key_mask_shape=None):
        d_q, d_k = int(query_shape[-1]), int(keys_shape[-1])
        if self.score == "general":
            self.w = self.add_weight(shape=(d_q, d_k), initializer="glorot_uniform", name="w")
        elif self.score == "location":
            self.w = self.add_weight(shape=(d_q, int(self.max_keys)), initializer="glorot_uniform", name="w")
        elif self.score == "additive":
            a = int(self.units or d_k)
            self.w_q = self.add_weight(shape=(d_q, a), initializer="glorot_uniform", name="w_q")
            self.w_k = self.add_weight(shape=(d_k, a), initializer="glorot_uniform", name="w_k")
            self.v = self.add_weight(shape=(a,), initializer="glorot_uniform", name="v")
        elif d_q != d_k:
            raise ValueError(f"the {self.score} score needs queries and keys of one width, got {d_q} and {d_k}")

    def scores(self, query, keys):
        """The alignment scores (batch, T, S), before the softmax."""
        if self.score == "content":
            return content_score(query, keys)
        if self.score == "location":
            return location_score(query, keys, self.w)
        if self.score == "dot":
            return dot_score(query, keys)
        if self.score == "scaled_dot":
            return scaled_dot_score(query, keys)
        if self.score == "general":
            return general_score(query, keys, self.w)
        return additive_score(query, keys, self.w_q, self.w_k, self.v)

    def call(self, query, keys, values=None, key_mask=None):
        weights = masked_softmax(self.scores(query, keys), key_mask)
        return ops.matmul(weights, keys if values is None else values), weights

    def compute_output_shape(self, query_shape, keys_shape, values_shape=None, key_mask_shape=None):
        d_v = (values_shape or keys_shape)[-1]
        return (*query_shape[:-1], d_v), (*query_shape[:-1], keys_shape[1])

    def get_config(self):
        return {**super().get_config(), "score": self.score, "units": self.units, "max_keys": self.max_keys}
