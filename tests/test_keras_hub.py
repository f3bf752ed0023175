"""Chapter 12's libraries (issue 17): KerasHub and TensorFlow Text import beside Keras 3 and TensorFlow 2.21 with
no Keras 2 pulled back in, and what chapter 12 builds from them works offline: a BERT built from a config (never a
preset, which downloads weights), a Transformer encoder that ignores padding, a WordPiece vocabulary learned here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import keras
import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_keras_hub_and_tensorflow_text_sit_on_keras_3_without_keras_2():
    import keras_hub
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 -- the WordPiece ops keras-hub's tokenizers run on

    assert keras.__version__.startswith("3.") and keras_hub.__version__.startswith("0.32.")
    assert tf.__version__.startswith("2.21.") and importlib.metadata.version("tensorflow-text").startswith("2.21.")
    assert importlib.util.find_spec("tf_keras") is None  # Keras 2 (tf-keras) is not installed
    requires = " ".join(importlib.metadata.requires("keras-hub") or [])
    assert "tf-keras" not in requires and "tf_keras" not in requires


def test_a_bert_built_from_a_config_runs_offline():
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=16)
    x = {"token_ids": np.array([[2, 5, 6, 3, 0, 0]]), "segment_ids": np.zeros((1, 6), "int32"),
         "padding_mask": np.array([[1, 1, 1, 1, 0, 0]])}
    out = backbone(x)
    assert tuple(out["sequence_output"].shape) == (1, 6, 8) and tuple(out["pooled_output"].shape) == (1, 8)
    assert backbone.count_params() > 0


def test_the_transformer_encoder_ignores_padded_positions():
    import keras_hub

    keras.utils.set_random_seed(0)
    encoder = keras_hub.layers.TransformerEncoder(intermediate_dim=16, num_heads=2)
    h = np.random.default_rng(0).normal(size=(1, 6, 8)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0]], dtype=bool)
    changed = h.copy()
    changed[0, 4:] = 99.0  # what sits in the padding must not reach the real tokens
    a, b = (keras.ops.convert_to_numpy(encoder(v, padding_mask=mask)) for v in (h, changed))
    np.testing.assert_allclose(a[0, :4], b[0, :4], atol=1e-5)
    unmasked = keras.ops.convert_to_numpy(encoder(changed))
    assert not np.allclose(unmasked[0, :4], a[0, :4], atol=1e-3)  # without the mask, it does


def test_a_wordpiece_vocabulary_is_learned_from_text_here():
    import keras_hub
    import tensorflow as tf

    texts = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 50  # words seen often enough
    vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(tf.data.Dataset.from_tensor_slices(texts),
                                                               vocabulary_size=40, reserved_tokens=SPECIALS)
    assert vocab[:5] == SPECIALS and "the" in vocab and len(vocab) <= 40
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocab)
    assert [vocab[i] for i in keras.ops.convert_to_numpy(tokenizer("the cat"))] == ["the", "cat"]
    assert [vocab[i] for i in keras.ops.convert_to_numpy(tokenizer("cats"))] == ["cat", "##s"]  # a word piece
