"""The project's own Keras objects: the recurrent cells the book writes itself (chapters 8-9), the masked mean
over time of chapter 9 and the summed cross-entropy of chapter 8's PTB model.

- :class:`MinimalRNNCell` (book 9.3, lines 4719-4838): ``h_t = x_t W + h_{t-1} U``, no activation, as the
  book's cell; its ``bias`` of shape (4 units,) is created and never used (``unused_bias=True`` keeps it, so
  the parameter count is the book's: 1,312 for ``RNN(MinimalRNNCell(32))`` on 5 input features).
- :class:`PeepholeLSTMCell` (book 9.4, lines 4840-4917): an LSTM whose gates look at the cell state.
  ``peephole="full"`` is the book's cell: one (units, 3 units) peephole matrix, orthogonally initialised;
  the input and forget gates see ``c_{t-1}``, the output gate sees the new ``c_t``, the candidate none.
  ``peephole="diagonal"`` is Gers and Schmidhuber (2000)'s: one weight vector per gate (an elementwise
  product), as the removed ``tf.keras.experimental.PeepholeLSTMCell`` had.

- :class:`MeanOverTime` (book 9.2's ``Lambda(lambda x: K.mean(x, axis=1))``): the mean over the steps; with a
  mask, over the unmasked steps only, and zeros for a row that has none (an all-padding text).
- :func:`summed_over_steps_crossentropy` (book 8.5 after Zaremba et al.): the cross-entropy summed over a
  window's steps.

All are built from ``keras.ops`` only and registered under the package name ``dltm``
(``keras.saving.register_keras_serializable``): importing this module is all that
``keras.saving.load_model`` needs to load any model the project saves (``dltm.training.load_keras_model``
imports it). The cells serialise through ``get_config`` (``keras.layers.Bidirectional`` clones its layer that
way). The equations are checked against NumPy in tests/test_rnn.py.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

PEEPHOLES = ("full", "diagonal")


@keras.saving.register_keras_serializable(package="dltm")
class MinimalRNNCell(keras.layers.Layer):
    """The book's 9.3 cell: ``output = inputs @ kernel + prev_output @ recurrent_kernel``; state = output.

    ``kernel_initializer``/``recurrent_initializer`` default to the book's 'uniform' (tf.keras 2's name for
    RandomUniform(-0.05, 0.05)).
    """

    def __init__(self, units: int, unused_bias: bool = False, kernel_initializer: Any = "random_uniform",
                 recurrent_initializer: Any = "random_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.unused_bias = bool(unused_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                initializer=self.recurrent_initializer, name="recurrent_kernel")
        if self.unused_bias:  # the book creates it and never uses it: it only adds to the parameter count
            self.bias = self.add_weight(shape=(self.units * 4,), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs, states, training=None):
        prev_output = states[0] if isinstance(states, (list, tuple)) else states
        h = ops.matmul(inputs, self.kernel)
        output = h + ops.matmul(prev_output, self.recurrent_kernel)
        return output, [output]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "unused_bias": self.unused_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer)}


@keras.saving.register_keras_serializable(package="dltm")
class PeepholeLSTMCell(keras.layers.Layer):
    """An LSTM cell with peephole connections; gates in Keras' order i, f, c, o.

    ``peephole="full"`` (the book)::

        i = σ(x W_i + h U_i + c_{t-1} P_i + b_i)      f = σ(x W_f + h U_f + c_{t-1} P_f + b_f)
        c_t = f * c_{t-1} + i * tanh(x W_c + h U_c + b_c)
        o = σ(x W_o + h U_o + c_t P_o + b_o)          h_t = o * tanh(c_t)

    with ``P = [P_i | P_f | P_o]`` of shape (units, 3 units). ``peephole="diagonal"`` replaces ``c P_g`` with
    ``c * p_g`` (a vector per gate). ``unit_forget_bias`` starts the forget bias at 1, as Keras' LSTMCell.
    """

    def __init__(self, units: int, peephole: str = "full", activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True, unit_forget_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 peephole_initializer: Any = None, bias_initializer: Any = "zeros", **kwargs):
        kwargs.pop("implementation", None)  # the book passes implementation=1 (tf.keras 2's LSTMCell argument)
        super().__init__(**kwargs)
        if peephole not in PEEPHOLES:
            raise ValueError(f"PeepholeLSTMCell: peephole must be one of {', '.join(PEEPHOLES)}, got {peephole!r}")
        self.units = int(units)
        self.peephole = peephole
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        # the book initialises the peephole matrix as the recurrent kernel (orthogonal); tf.keras 2's diagonal
        # peepholes used glorot_uniform
        if peephole_initializer is None:
            peephole_initializer = recurrent_initializer if peephole == "full" else "glorot_uniform"
        self.peephole_initializer = keras.initializers.get(peephole_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * u), initializer=self.kernel_initializer,
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), initializer=self.recurrent_initializer,
                                                name="recurrent_kernel")
        if self.peephole == "full":
            self.peephole_kernel = self.add_weight(shape=(u, 3 * u), initializer=self.peephole_initializer,
                                                   name="peephole_kernel")
        else:
            self.input_gate_peephole_weights = self.add_weight(shape=(u,), initializer=self.peephole_initializer,
                                                               name="input_gate_peephole_weights")
            self.forget_gate_peephole_weights = self.add_weight(shape=(u,), initializer=self.peephole_initializer,
                                                                name="forget_gate_peephole_weights")
            self.output_gate_peephole_weights = self.add_weight(shape=(u,), initializer=self.peephole_initializer,
                                                                name="output_gate_peephole_weights")
        if self.use_bias:
            if self.unit_forget_bias:
                base = self.bias_initializer

                def bias_initializer(shape, dtype=None):
                    return ops.concatenate([base((u,), dtype=dtype), keras.initializers.get("ones")((u,), dtype=dtype),
                                            base((2 * u,), dtype=dtype)])
            else:
                bias_initializer = self.bias_initializer
            self.bias = self.add_weight(shape=(4 * u,), initializer=bias_initializer, name="bias")
        self.built = True

    def _peep(self, c, gate: int):
        """The peephole term of gate 0 (i), 1 (f) or 2 (o) for cell state ``c``."""
        u = self.units
        if self.peephole == "full":
            return ops.matmul(c, self.peephole_kernel[:, gate * u:(gate + 1) * u])
        weights = (self.input_gate_peephole_weights, self.forget_gate_peephole_weights,
                   self.output_gate_peephole_weights)[gate]
        return c * weights

    def call(self, inputs, states, training=None):
        h_tm1, c_tm1 = states[0], states[1]
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_tm1, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + self._peep(c_tm1, 0))
        f = self.recurrent_activation(z_f + self._peep(c_tm1, 1))
        c = f * c_tm1 + i * self.activation(z_c)
        o = self.recurrent_activation(z_o + self._peep(c, 2))
        h = o * self.activation(c)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self) -> dict[str, Any]:
        ser = keras.initializers.serialize
        return {**super().get_config(), "units": self.units, "peephole": self.peephole,
                "activation": keras.activations.serialize(self.activation),
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "use_bias": self.use_bias, "unit_forget_bias": self.unit_forget_bias,
                "kernel_initializer": ser(self.kernel_initializer),
                "recurrent_initializer": ser(self.recurrent_initializer),
                "peephole_initializer": ser(self.peephole_initializer),
                "bias_initializer": ser(self.bias_initializer)}


@keras.saving.register_keras_serializable(package="dltm")
class MeanOverTime(keras.layers.Layer):
    """The mean over the time axis: (batch, steps, features) -> (batch, features).

    Without a mask, the mean of every step, padding included (the book's ``Lambda(mean)``). With a mask
    (``Embedding(mask_zero=True)`` upstream), the mean of the unmasked steps only; a row with no unmasked step
    (a text whose every word is outside the vocabulary) gives zeros. Keras' ``GlobalAveragePooling1D`` divides
    0 by 0 there, and one such row turns the loss and then every weight into NaN.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        total = ops.sum(ops.where(keep, inputs, ops.zeros_like(inputs)), axis=1)
        count = ops.sum(ops.cast(keep, inputs.dtype), axis=1)
        return total / ops.maximum(count, ops.ones_like(count))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="dltm")
def summed_over_steps_crossentropy(y_true, y_pred):
    """Zaremba's cost: cross-entropy summed over the num_steps of a window (then averaged over the batch by
    Keras), so SGD's learning rate 1 and the clipping norm 5 mean what they meant in his code.

    ``y_true``: (batch, steps) integer targets; ``y_pred``: (batch, steps, vocabulary) logits; returns (batch,).
    """
    return ops.sum(keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True), axis=-1)
