"""dltm.rnn: the book's cells against NumPy, their parameter counts, serialisation and Bidirectional."""

import keras
import numpy as np
import pytest

from dltm.rnn import MeanOverTime, MinimalRNNCell, PeepholeLSTMCell


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def minimal_rnn_numpy(x, W, U):
    """Book 9.3: h_t = x_t W + h_{t-1} U, h_0 = 0; returns every h_t."""
    h = np.zeros((x.shape[0], W.shape[1]))
    out = []
    for t in range(x.shape[1]):
        h = x[:, t] @ W + h @ U
        out.append(h)
    return np.stack(out, axis=1)


def peephole_lstm_numpy(x, W, U, b, peephole, P=None, p=None):
    """Book 9.4 (``P``: the (u, 3u) matrix) or Gers-Schmidhuber (``p``: three (u,) vectors); gates i, f, c, o."""
    n, u = x.shape[0], U.shape[0]
    h, c = np.zeros((n, u)), np.zeros((n, u))
    out = []

    def peep(state, g):
        return state @ P[:, g * u:(g + 1) * u] if peephole == "full" else state * p[g]

    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ U + b
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        i = sigmoid(zi + peep(c, 0))
        f = sigmoid(zf + peep(c, 1))
        c = f * c + i * np.tanh(zc)
        o = sigmoid(zo + peep(c, 2))
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def test_minimal_cell_has_the_books_1312_parameters():
    # book 9.3: cell = MinimalRNNCell(32); x = Input((None, 5)); RNN(cell)(x): 5*32 + 32*32 + the unused 4*32
    x = keras.Input((None, 5))
    model = keras.Model(x, keras.layers.RNN(MinimalRNNCell(32, unused_bias=True))(x))
    assert model.count_params() == 1312
    x = keras.Input((None, 5))
    assert keras.Model(x, keras.layers.RNN(MinimalRNNCell(32))(x)).count_params() == 1312 - 128


def test_minimal_cell_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    layer = keras.layers.RNN(MinimalRNNCell(5), return_sequences=True)
    layer.build((None, 6, 4))
    W, U = rng.normal(size=(4, 5)) * 0.3, rng.normal(size=(5, 5)) * 0.3
    layer.cell.kernel.assign(W.astype("float32"))
    layer.cell.recurrent_kernel.assign(U.astype("float32"))
    np.testing.assert_allclose(np.asarray(layer(x)), minimal_rnn_numpy(x, W, U), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("peephole", ["full", "diagonal"])
def test_peephole_cell_matches_numpy(peephole):
    rng = np.random.default_rng(1)
    n, steps, d, u = 3, 7, 4, 5
    x = rng.normal(size=(n, steps, d)).astype("float32")
    layer = keras.layers.RNN(PeepholeLSTMCell(u, peephole=peephole), return_sequences=True)
    layer.build((None, steps, d))
    cell = layer.cell
    W, U, b = rng.normal(size=(d, 4 * u)) * 0.5, rng.normal(size=(u, 4 * u)) * 0.5, rng.normal(size=4 * u) * 0.5
    cell.kernel.assign(W.astype("float32"))
    cell.recurrent_kernel.assign(U.astype("float32"))
    cell.bias.assign(b.astype("float32"))
    P = p = None
    if peephole == "full":
        P = rng.normal(size=(u, 3 * u)) * 0.5
        cell.peephole_kernel.assign(P.astype("float32"))
    else:
        p = rng.normal(size=(3, u)) * 0.5
        for g, var in enumerate((cell.input_gate_peephole_weights, cell.forget_gate_peephole_weights,
                                 cell.output_gate_peephole_weights)):
            var.assign(p[g].astype("float32"))
    want = peephole_lstm_numpy(x, W, U, b, peephole, P, p)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-4, atol=1e-5)
    # the peepholes matter: with them zeroed the cell is a plain LSTM, and the outputs differ
    assert np.abs(want - peephole_lstm_numpy(x, W, U, b, "full", np.zeros((u, 3 * u)))).max() > 1e-2


def test_peephole_with_zero_peepholes_is_keras_lstm():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    lstm = keras.layers.LSTM(4, return_sequences=True)
    lstm.build((None, 5, 3))
    ours = keras.layers.RNN(PeepholeLSTMCell(4, peephole_initializer="zeros"), return_sequences=True)
    ours.build((None, 5, 3))
    ours.cell.kernel.assign(lstm.cell.kernel)
    ours.cell.recurrent_kernel.assign(lstm.cell.recurrent_kernel)
    ours.cell.bias.assign(lstm.cell.bias)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(lstm(x)), rtol=1e-5, atol=1e-6)


def test_peephole_parameter_counts_and_initial_values():
    x = keras.Input((None, 3))
    full = keras.layers.RNN(PeepholeLSTMCell(4))
    keras.Model(x, full(x))
    assert full.count_params() == 3 * 16 + 4 * 16 + 16 + 4 * 12  # W, U, b, the (u, 3u) peephole matrix
    P = np.asarray(full.cell.peephole_kernel)
    np.testing.assert_allclose(P @ P.T, np.eye(4), atol=1e-5)  # orthogonal rows, as the recurrent kernel
    np.testing.assert_array_equal(np.asarray(full.cell.bias)[4:8], 1.0)  # unit forget bias
    diag = keras.layers.RNN(PeepholeLSTMCell(4, peephole="diagonal"))
    keras.Model(x, diag(x))
    assert diag.count_params() == 3 * 16 + 4 * 16 + 16 + 3 * 4
    with pytest.raises(ValueError, match="peephole must be one of full, diagonal"):
        PeepholeLSTMCell(4, peephole="none")


@pytest.mark.parametrize("cell", [lambda: MinimalRNNCell(6, unused_bias=True),
                                  lambda: PeepholeLSTMCell(6, implementation=1),
                                  lambda: PeepholeLSTMCell(6, peephole="diagonal")])
def test_cells_in_bidirectional_save_and_load(tmp_path, cell):
    inputs = keras.Input((7, 3))
    outputs = keras.layers.Bidirectional(keras.layers.RNN(cell(), return_sequences=True))(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(outputs))
    x = np.random.default_rng(3).normal(size=(2, 7, 3)).astype("float32")
    before = np.asarray(model(x))
    assert before.shape == (2, 12)
    # Bidirectional cloned the cell through get_config: the backward copy has the same class and settings
    bi = model.layers[1]
    assert type(bi.backward_layer.cell) is type(bi.forward_layer.cell)
    assert bi.backward_layer.cell.get_config()["units"] == 6 and bi.backward_layer.go_backwards
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), before, rtol=1e-6)
    assert loaded.layers[1].forward_layer.cell.get_config() == bi.forward_layer.cell.get_config()


def test_cells_train():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    y = (x[:, :, 0].sum(axis=1) > 0).astype("float32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 3))
    h = keras.layers.RNN(PeepholeLSTMCell(8))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=32, verbose=0).history
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]


def test_mean_over_time_of_an_all_padding_row_is_zeros_not_nan():
    """A text with no word in the vocabulary is all padding: masked, it has no step to average. Keras'
    GlobalAveragePooling1D gives 0/0 = NaN there (and one such row makes the loss NaN); MeanOverTime gives 0."""
    x = np.arange(12, dtype="float32").reshape(2, 3, 2)
    mask = np.array([[True, True, False], [False, False, False]])
    out = np.asarray(MeanOverTime()(x, mask=mask))
    np.testing.assert_allclose(out[0], x[0, :2].mean(axis=0))  # the unmasked steps only
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(np.asarray(MeanOverTime()(x)), x.mean(axis=1))  # no mask: every step, as the book
    assert np.isnan(np.asarray(keras.layers.GlobalAveragePooling1D()(x, mask=mask))[1]).all()
    # and no NaN flows back either: the gradient at the all-padding row is zero (by the backend's autodiff)
    if keras.backend.backend() == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda v: MeanOverTime()(v, mask=mask).sum())(x))
    elif keras.backend.backend() == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        MeanOverTime()(xt, mask=torch.tensor(mask)).sum().backward()
        grad = xt.grad.numpy()
    else:
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = tf.reduce_sum(MeanOverTime()(xt, mask=tf.constant(mask)))
        grad = tape.gradient(y, xt).numpy()
    np.testing.assert_allclose(grad[0], [[0.5, 0.5], [0.5, 0.5], [0, 0]])
    np.testing.assert_array_equal(grad[1], 0.0)

