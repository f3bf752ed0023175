"""dltm.attention: each alignment score against NumPy on a hand-checkable input, masks honoured, the layer saved
and reloaded."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from dltm.attention import (
    AlignmentAttention,
    additive_score,
    content_score,
    dot_score,
    general_score,
    location_score,
    masked_softmax,
    scaled_dot_score,
)

Q = np.array([[[1.0, 0.0], [0.0, 2.0]]], dtype="float32")  # (1, T=2, d=2)
K = np.array([[[1.0, 1.0], [2.0, 0.0], [0.0, -1.0]]], dtype="float32")  # (1, S=3, d=2)


def np_(x):
    return ops.convert_to_numpy(x)


def test_dot_and_scaled_dot_by_hand():
    # q1 = (1, 0): k . q1 = 1, 2, 0; q2 = (0, 2): 2, 0, -2
    assert np.allclose(np_(dot_score(Q, K)), [[[1, 2, 0], [2, 0, -2]]])
    assert np.allclose(np_(scaled_dot_score(Q, K)), np.array([[[1, 2, 0], [2, 0, -2]]]) / np.sqrt(2))


def test_content_and_location_by_hand():
    # cos((1, 0), (1, 1)) = 1/sqrt(2); cos((1, 0), (2, 0)) = 1; cos((0, 2), (0, -1)) = -1
    got = np_(content_score(Q, K))
    assert np.allclose(got, [[[1 / np.sqrt(2), 1, 0], [1 / np.sqrt(2), 0, -1]]], atol=1e-6)
    w = np.arange(8, dtype="float32").reshape(2, 4)  # max_keys 4; 3 keys scored
    assert np.allclose(np_(location_score(Q, K, w)), (Q @ w)[..., :3])
    assert np.allclose(np_(location_score(Q, K * 5, w)), np_(location_score(Q, K, w)))  # positions, not values


def test_general_and_additive_against_numpy():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 2)).astype("float32")
    assert np.allclose(np_(general_score(Q, K, w)), Q @ w @ K.transpose(0, 2, 1), atol=1e-6)
    w_q, w_k, v = (rng.normal(size=s).astype("float32") for s in ((2, 4), (2, 4), (4,)))
    expected = np.array([[[v @ np.tanh(q @ w_q + k @ w_k) for k in K[0]] for q in Q[0]]])
    assert np.allclose(np_(additive_score(Q, K, w_q, w_k, v)), expected, atol=1e-5)


def test_masked_softmax_gives_padding_zero_weight_and_an_all_padding_row_zeros():
    scores = np.array([[[1.0, 2.0, 50.0]], [[0.0, 0.0, 0.0]]], dtype="float32")  # (2, 1, 3)
    mask = np.array([[True, True, False], [False, False, False]])
    got = np_(masked_softmax(scores, mask))
    e = np.exp([1.0, 2.0])
    assert np.allclose(got[0, 0], [*(e / e.sum()), 0.0], atol=1e-6)  # the padded key's 50 counts for nothing
    assert np.array_equal(got[1], np.zeros((1, 3)))
    assert np.allclose(np_(masked_softmax(scores[:1])).sum(-1), 1.0)


@pytest.mark.parametrize("score", ["content", "location", "dot", "scaled_dot", "general", "additive"])
def test_layer_context_is_the_weighted_values_and_survives_a_keras_file(tmp_path, score):
    keras.utils.set_random_seed(1)
    query = keras.Input((None, 2))
    keys = keras.Input((None, 2))
    mask = keras.Input((None,), dtype="bool")
    context, weights = AlignmentAttention(score, units=3, max_keys=5, name="att")(query, keys, key_mask=mask)
    model = keras.Model([query, keys, mask], [context, weights])
    m = np.array([[True, True, False]])
    c, w = (np_(x) for x in model.predict_on_batch([Q, K, m]))
    assert w.shape == (1, 2, 3) and np.allclose(w.sum(-1), 1.0, atol=1e-6) and np.all(w[..., 2] == 0)
    assert np.allclose(c, w @ K, atol=1e-6)
    if score == "dot":
        e = np.exp([[1, 2], [2, 0]])
        assert np.allclose(w[0, :, :2], e / e.sum(-1, keepdims=True), atol=1e-6)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert np.allclose(np_(again.predict_on_batch([Q, K, m])[1]), w, atol=1e-6)


def test_unknown_score_and_mismatched_widths_are_refused():
    with pytest.raises(ValueError, match="score must be one of"):
        AlignmentAttention("cosine")
    with pytest.raises(ValueError, match="needs max_keys"):
        AlignmentAttention("location")
    with pytest.raises(ValueError, match="one width"):
        AlignmentAttention("dot")(np.zeros((1, 2, 3), "float32"), np.zeros((1, 4, 2), "float32"))
