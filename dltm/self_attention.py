"""Sentence embeddings by structured self-attention (Lin et al. 2017; book 11.4), and max pooling over time.

Lin, Feng, dos Santos, Yu, Xiang, Zhou, Bengio, "A Structured Self-attentive Sentence Embedding", ICLR 2017:
for the hidden states ``H`` (batch, T, 2u) of a BiLSTM,

    A = softmax(W_s2 tanh(W_s1 H^T))      (batch, r, T): r "hops", each a distribution over the T tokens
    M = A H                                (batch, r, 2u): the sentence embedding matrix
    P = ||A A^T - I||_F^2                  the penalty that pushes the hops to attend to different tokens

with ``W_s1`` (d_a, 2u) and ``W_s2`` (r, d_a), no biases. The book's listing softmaxes over the hops instead of
the tokens, adds the unsquared norm ``tf.norm(A^T A - I)`` through ``model.add_loss`` on symbolic tensors
(refused by Keras 3), and attends to padding; :class:`StructuredSelfAttention` fixes the three: the softmax is
over the real tokens (``dltm.attention.masked_softmax``: padding gets weight 0), and the squared penalty,
averaged over the batch and times ``penalty``, is added in ``call`` (Keras 3's ``self.add_loss``).

:class:`MaskedMaxPooling` is Lin et al.'s baseline read-out (a BiLSTM's states, max over time) with padding left
out: Keras' ``GlobalMaxPooling1D`` ignores the mask.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from dltm.attention import masked_softmax


@keras.saving.register_keras_serializable(package="dltm")
class StructuredSelfAttention(layers.Layer):
    """Lin et al. (2017)'s self-attention: ``call(H, mask=None)`` -> ``(M, A)``, M (batch, r, d) and A (batch, r,
    T) for H (batch, T, d) and a mask (batch, T), True for a real token (taken from the input's Keras mask).

    ``d_a``: the width of ``W_s1``; ``r``: the number of hops; ``penalty``: the coefficient of
    ``mean over the batch of ||A A^T - I||_F^2``, added to the model's loss while training (0: none). A text with
    no real token gets all-zero weights (M = 0), never NaN."""

    def __init__(self, d_a: int, r: int, penalty: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.d_a, self.r, self.penalty = int(d_a), int(r), float(penalty)
        self.supports_masking = True
        self.ws1 = layers.Dense(self.d_a, activation="tanh", use_bias=False, name="ws1")
        self.ws2 = layers.Dense(self.r, use_bias=False, name="ws2")

    def build(self, input_shape):
        self.ws1.build(input_shape)
        self.ws2.build((*input_shape[:-1], self.d_a))

    def call(self, inputs, mask=None, training=None):
        scores = ops.transpose(self.ws2(self.ws1(inputs)), (0, 2, 1))  # (batch, r, T)
        a = masked_softmax(scores, mask)
        m = ops.matmul(a, inputs)
        if self.penalty and training:
            self.add_loss(self.penalty * ops.mean(redundancy(a)))
        return m, a

    def compute_mask(self, inputs, mask=None):
        return None  # M is over hops, not tokens

    def compute_output_shape(self, input_shape):
        batch, steps, d = input_shape
        return (batch, self.r, d), (batch, self.r, steps)

    def get_config(self):
        return {**super().get_config(), "d_a": self.d_a, "r": self.r, "penalty": self.penalty}


def redundancy(a):
    """``||A A^T - I||_F^2`` of each attention matrix A (batch, r, T) -> (batch,): 0 when the r hops are one-hot
    on r different tokens, about r (r (1 - 1/T)^2 + (r^2 - r) / T^2) when every hop is uniform over the T tokens,
    r^2 - r when they all attend to one token (Lin et al.'s penalty P)."""
    gram = ops.matmul(a, ops.transpose(a, (0, 2, 1)))
    eye = ops.eye(ops.shape(a)[1], dtype=a.dtype)
    return ops.sum(ops.square(gram - eye), axis=(1, 2))


@keras.saving.register_keras_serializable(package="dltm")
class MaskedMaxPooling(layers.Layer):
    """Max over time of (batch, T, d) -> (batch, d), over the real steps of the input's mask only (all steps
    without one); a text with no real step gives zeros."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        low = ops.full_like(inputs, -1e9)
        best = ops.max(ops.where(keep, inputs, low), axis=1)
        return ops.where(ops.any(keep, axis=1), best, ops.zeros_like(best))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
