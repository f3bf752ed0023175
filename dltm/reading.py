"""Keras layers of chapter 13's readers: the end-to-end memory network (Sukhbaatar et al. 2015) and BiDAF's
attention flow (Seo et al. 2017), in ``keras.ops`` so that they run on every Keras backend, and registered
(package ``dltm``) so that a saved reader loads in a process that never imports ``pipelines.ch13_reading``
(the MLflow pyfunc, ``stages.answer runs:/...``).

Written here because Keras has neither: ``keras.layers.Attention`` scores one query sequence against keys, but
MemN2N's memories are bags of words weighted by position, and BiDAF's similarity ``w . [h; u; h * u]`` with its
two directions (context-to-query, query-to-context) is none of Keras' scores.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from dltm.attention import masked_softmax


def very_negative(x):
    """A tensor like ``x`` of the most negative value its dtype holds comfortably (-1e9; -6e4 in float16, whose
    range ends at -65,504), for masking before a max or a softmax without inf * 0 = NaN."""
    return ops.full_like(x, -6e4 if keras.backend.standardize_dtype(x.dtype) == "float16" else -1e9)


def position_encoding(sentence_length: int, dim: int) -> np.ndarray:
    """Sukhbaatar et al. (2015), section 4.1: l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j = 1..J of a
    sentence and embedding dimension k = 1..d; (J, d) float32. A sentence's vector is sum_j l_j * A x_j, so that
    word order matters (a plain bag of words would not tell "the kitchen is north of the hall" from its
    converse)."""
    j = np.arange(1, sentence_length + 1, dtype=np.float32)[:, None] / sentence_length
    k = np.arange(1, dim + 1, dtype=np.float32)[None, :] / dim
    return ((1 - j) - k * (1 - 2 * j)).astype(np.float32)


@keras.saving.register_keras_serializable(package="dltm")
class PositionEncodedSum(layers.Layer):
    """``call(embedded, ids)``: embedded words (..., J, d) and their ids (..., J) -> (..., d), the sum over the J
    words weighted by :func:`position_encoding`, padding (id 0) left out. ``position_encoding=False``: the plain
    sum (MemN2N's bag of words, "BoW")."""

    def __init__(self, position_encoding: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.position_encoding = position_encoding

    def call(self, embedded, ids):
        keep = ops.expand_dims(ops.cast(ops.not_equal(ids, 0), embedded.dtype), -1)
        x = embedded * keep
        if self.position_encoding:
            length, dim = embedded.shape[-2], embedded.shape[-1]
            x = x * ops.convert_to_tensor(position_encoding(length, dim), dtype=embedded.dtype)
        return ops.sum(x, axis=-2)

    def get_config(self):
        return {**super().get_config(), "position_encoding": self.position_encoding}


@keras.saving.register_keras_serializable(package="dltm")
class StoryAndQuestion(layers.Layer):
    """(batch, slots + 1, words) ids, the memories then the question as the last row -> ``[memories, question]``,
    (batch, slots, words) and (batch, words): chapter 13's bAbI models take one array, so that the project's
    training loop, its caps and its MLflow signature treat them as every other model."""

    def call(self, ids):
        return [ids[:, :-1, :], ids[:, -1, :]]


@keras.saving.register_keras_serializable(package="dltm")
class SplitAt(layers.Layer):
    """(batch, steps) -> ``[x[:, :at], x[:, at:]]``: babi_rnn's one input array, the story then the question."""

    def __init__(self, at: int, **kwargs):
        super().__init__(**kwargs)
        self.at = at

    def call(self, x):
        return [x[:, :self.at], x[:, self.at:]]

    def get_config(self):
        return {**super().get_config(), "at": self.at}


@keras.saving.register_keras_serializable(package="dltm")
class TemporalEncoding(layers.Layer):
    """Adds a learned vector per memory slot: (batch, slots, d) + T (slots, d) (Sukhbaatar et al. 2015, section
    4.1, "temporal encoding": the slots are ordered by time, the latest statement last)."""

    def build(self, input_shape):
        self.table = self.add_weight(shape=(input_shape[-2], input_shape[-1]), name="table",
                                     initializer=keras.initializers.RandomNormal(stddev=0.1))

    def call(self, memories):
        return memories + self.table


@keras.saving.register_keras_serializable(package="dltm")
class MemoryHop(layers.Layer):
    """One hop of a memory network: ``call(u, keys, values, ids)`` with the controller state u (batch, d), the
    input memories m_i = keys (batch, slots, d), the output memories c_i = values (batch, slots, d) and the
    memories' word ids (batch, slots, words) -> ``[u + o, p]``: p = softmax_i(u . m_i) (batch, slots), an empty
    slot (no word) getting weight 0, and o = sum_i p_i c_i (Sukhbaatar et al. 2015, equations 1-2 and the
    layer-wise update u^{k+1} = u^k + o^k)."""

    def call(self, u, keys, values, ids):
        filled = ops.any(ops.not_equal(ids, 0), axis=-1)  # (batch, slots)
        scores = ops.expand_dims(ops.einsum("bd,bsd->bs", u, keys), 1)  # (batch, 1, slots)
        p = ops.squeeze(masked_softmax(scores, filled), 1)
        return [u + ops.einsum("bs,bsd->bd", p, values), p]


@keras.saving.register_keras_serializable(package="dltm")
class AttentionFlow(layers.Layer):
    """BiDAF's attention flow layer (Seo et al. 2017, section 2.4): ``call(h, u, context_mask, query_mask)`` with
    the context's contextual vectors h (batch, T, 2d) and the query's u (batch, J, 2d) -> G (batch, T, 8d) =
    [h; u~; h * u~; h * h~], where u~_t = sum_j a_tj u_j with a_t = softmax_j(S_tj) (context-to-query) and
    h~ = sum_t b_t h_t with b = softmax_t(max_j S_tj) (query-to-context), tiled over T; the similarity is
    S_tj = w . [h_t; u_j; h_t * u_j]. Padded positions (mask False) get weight 0 in both softmaxes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # G keeps the context's mask

    def build(self, h_shape, u_shape=None, context_mask_shape=None, query_mask_shape=None):
        d = h_shape[-1]
        self.w_h = self.add_weight(shape=(d,), name="w_h", initializer="glorot_uniform")
        self.w_u = self.add_weight(shape=(d,), name="w_u", initializer="glorot_uniform")
        self.w_hu = self.add_weight(shape=(d,), name="w_hu", initializer="glorot_uniform")

    def similarity(self, h, u):
        """S (batch, T, J), computed without the (batch, T, J, 6d) concatenation: w.[h;u;h*u] splits into
        w_h.h_t + w_u.u_j + (h_t * w_hu).u_j."""
        return (ops.expand_dims(ops.einsum("btd,d->bt", h, self.w_h), -1)
                + ops.expand_dims(ops.einsum("bjd,d->bj", u, self.w_u), 1)
                + ops.einsum("btd,bjd->btj", h * self.w_hu, u))

    def call(self, h, u, context_mask, query_mask):
        s = self.similarity(h, u)
        a = masked_softmax(s, query_mask)  # (batch, T, J)
        u_tilde = ops.einsum("btj,bjd->btd", a, u)
        real = ops.expand_dims(query_mask, 1)  # (batch, 1, J)
        best = ops.max(ops.where(real, s, very_negative(s)), axis=-1)  # (batch, T): max over the real query words
        b = ops.squeeze(masked_softmax(ops.expand_dims(best, 1), context_mask), 1)  # (batch, T)
        h_tilde = ops.einsum("bt,btd->bd", b, h)[:, None, :]
        return ops.concatenate([h, u_tilde, h * u_tilde, h * h_tilde], axis=-1)


@keras.saving.register_keras_serializable(package="dltm")
class SpanPointers(layers.Layer):
    """BiDAF's output layer (Seo et al. 2017, section 2.6): ``call(g, m, m2, mask)`` with G (batch, T, 8d), M and
    M2 (batch, T, 2d) and the context's mask (batch, T) -> the start and end probabilities (batch, 2, T):
    p1 = softmax(w1 . [G; M]), p2 = softmax(w2 . [G; M2]), each over the context's words, padding 0."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, g_shape, m_shape=None, m2_shape=None, mask_shape=None):
        d = g_shape[-1] + m_shape[-1]
        self.w1 = self.add_weight(shape=(d,), name="w1", initializer="glorot_uniform")
        self.w2 = self.add_weight(shape=(d,), name="w2", initializer="glorot_uniform")

    def call(self, g, m, m2, mask):
        start = ops.einsum("btd,d->bt", ops.concatenate([g, m], axis=-1), self.w1)
        end = ops.einsum("btd,d->bt", ops.concatenate([g, m2], axis=-1), self.w2)
        logits = ops.cast(ops.stack([start, end], axis=1), "float32")  # a float32 softmax under mixed precision
        return ops.softmax(ops.where(ops.expand_dims(mask, 1), logits, very_negative(logits)), axis=-1)

    def compute_mask(self, *args, **kwargs):
        return None


@keras.saving.register_keras_serializable(package="dltm")
class NotPadding(layers.Layer):
    """Ids (batch, T) -> bool (batch, T), True where the id is not 0 (padding)."""

    def call(self, ids):
        return ops.not_equal(ids, 0)


@keras.saving.register_keras_serializable(package="dltm")
class CharacterCNN(layers.Layer):
    """Kim et al. (2016)'s character-level word vectors as BiDAF uses them (Seo et al. 2017, section 2.1): char
    ids (batch, T, W) -> embedded (batch, T, W, e) -> Conv1D of ``filters`` over the W characters, width
    ``width`` -> max over the characters -> (batch, T, filters). Char id 0 pads."""

    def __init__(self, chars: int, embed_dim: int = 16, filters: int = 64, width: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.chars, self.embed_dim, self.filters, self.width = chars, embed_dim, filters, width
        self.embedding = layers.Embedding(chars, embed_dim, name="char_embedding")
        self.conv = layers.Conv1D(filters, width, padding="same", activation="relu", name="char_conv")

    def build(self, input_shape):
        self.embedding.build(input_shape)
        self.conv.build((None, input_shape[-1], self.embed_dim))

    def call(self, ids):
        shape = ops.shape(ids)
        x = self.embedding(ops.reshape(ids, (-1, shape[-1])))  # (batch * T, W, e)
        x = self.conv(x)
        real = ops.expand_dims(ops.not_equal(ops.reshape(ids, (-1, shape[-1])), 0), -1)  # (batch * T, W, 1)
        x = ops.maximum(ops.max(ops.where(real, x, very_negative(x)), axis=1), 0.0)  # no character (padding): 0
        return ops.reshape(x, (shape[0], shape[1], self.filters))

    def get_config(self):
        return {**super().get_config(), "chars": self.chars, "embed_dim": self.embed_dim, "filters": self.filters,
                "width": self.width}
