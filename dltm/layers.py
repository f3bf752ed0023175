"""Small Keras layers that saved models of several chapters contain, registered when ``dltm.inference`` loads a
text classifier (``TextClassifier.model``), so that a model loads without its chapter module (the MLflow pyfunc,
``stages.predict runs:/...``)."""

from __future__ import annotations

import warnings

import keras

# KerasHub's layers handle the padding mask themselves; Keras warns, needlessly, that their inner layers (the
# position embedding, the attention's query/key/value projections) "destroy" it (the mask reaches the attention:
# tests/test_ch12_transformer.py checks it). Here, so that loading a saved model is quiet too.
warnings.filterwarnings("ignore", message="Layer '(position_embedding|query|key|value)' .* does not support masking")


@keras.saving.register_keras_serializable(package="dltm")
class BertInputs(keras.layers.Layer):
    """Ids (batch, steps) int32 -> KerasHub ``BertBackbone``'s inputs: ``token_ids`` (the ids), ``padding_mask``
    (id != 0, bool) and ``segment_ids`` (zeros: one segment), each (batch, steps), so a BERT classifier takes one
    id array as every other classifier of this project (chapter 12.3)."""

    def call(self, ids):
        return {"token_ids": ids, "padding_mask": keras.ops.not_equal(ids, 0),
                "segment_ids": keras.ops.zeros_like(ids)}
