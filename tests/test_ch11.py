"""Chapter 11: the book's custom regulariser, loss and penalty (11.3), each term checked against a hand computation,
and the task end to end."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipelines import ch11_attention as ch11

from .conftest import run_task

X = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
Y = (X[:, 0] > 0).astype("float32")[:, None]


def loss_of(model: keras.Model) -> float:
    """The loss Keras minimises on (X, Y) in one batch: the custom BCE plus every added term."""
    model.compile(optimizer="adam", loss=ch11.custom_loss())
    return float(model.evaluate(X, Y, batch_size=len(X), verbose=0))


def hidden(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    probe = keras.Model(model.inputs, [model.get_layer("layer1").output, model.get_layer("layer2").output])
    return tuple(np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64) for t in probe.predict_on_batch(X))


@pytest.mark.parametrize("l2,gram", [(0.0, 0.0), (0.05, 0.0), (0.0, 0.03), (0.01, 0.01)])
def test_each_term_adds_to_the_loss_what_a_hand_computation_gives(l2, gram):
    keras.utils.set_random_seed(3)
    book = ch11.build_custom_losses_mlp(6, l2=l2, gram=gram)
    plain = ch11.build_custom_losses_mlp(6, book=False)
    for name in ("layer1", "layer2", "output"):  # the same weights: the difference is the added terms alone
        plain.get_layer(name).set_weights(book.get_layer(name).get_weights())
    h1, h2 = hidden(book)
    n = len(X)
    by_hand = 0.01 * np.abs(h1).sum() / n + l2 * (h2 @ h2.T).sum() / n + gram * (h2.T @ h2).sum()
    assert loss_of(book) - loss_of(plain) == pytest.approx(by_hand, rel=1e-4, abs=1e-6)
    terms = ch11.penalty_terms(book, X)
    assert sum(terms.values()) == pytest.approx(by_hand, rel=1e-6)


def test_the_l2regularizer_is_the_squared_norm_of_the_summed_activations():
    x = np.array([[1.0, 2.0], [3.0, -1.0]], dtype="float32")
    got = float(keras.ops.convert_to_numpy(ch11.L2Regularizer(0.5)(x)))
    assert got == pytest.approx(0.5 * np.linalg.norm(x.sum(axis=0)) ** 2)  # 0.5 * |(4, 1)|^2 = 8.5
    assert ch11.L2Regularizer.from_config(ch11.L2Regularizer(0.5).get_config()).l2 == 0.5


def test_the_custom_loss_is_binary_cross_entropy():
    y_pred = np.array([[0.9], [0.2]], dtype="float32")
    y_true = np.array([[1.0], [0.0]], dtype="float32")
    got = keras.ops.convert_to_numpy(ch11.custom_loss()(y_true, y_pred))
    np.testing.assert_allclose(got, [-np.log(0.9), -np.log(0.8)], rtol=1e-5)


def test_the_model_with_every_term_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(1)
    model = ch11.build_custom_losses_mlp(6, l2=0.02, gram=0.03)
    before = loss_of(model)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert again.get_layer("layer2").activity_regularizer.l2 == 0.02 and again.get_layer("gram_penalty").coef == 0.03
    assert again.get_layer("layer1").activity_regularizer is ch11.l1_reg
    assert loss_of(again) == pytest.approx(before, rel=1e-6)


def test_custom_losses_task_trains_both_models_and_reports_the_terms(tmp_path, monkeypatch):
    m = run_task(tmp_path, monkeypatch, "ch11_custom_losses", {"ch11_custom_losses.epochs": 20,
                                                                "ch11_custom_losses.n_samples": 400})
    assert m["test_accuracy_without_penalties"] > 0.65, m  # chance: 0.5
    assert 0.0 <= m["test_accuracy"] <= 1.0  # the book's penalties outweigh the cross-entropy: it may not learn
    assert m["l1_reg_term"] > 0 and m["l2_regularizer_term"] >= 0 and m["gram_penalty_term"] >= 0
    history = np.loadtxt(tmp_path / "plots" / "ch11_custom_losses" / "train" / "history.csv", delimiter=",",
                         skiprows=1)
    assert history[-1, 2] < history[0, 2] / 2  # train_loss, penalties included, falls
    assert (tmp_path / "models" / "ch11_custom_losses" / "plain" / "model.keras").is_file()
