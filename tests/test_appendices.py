"""Appendices A and B (issue 19): the appendix's values against Keras 3, the smooth approximations against the
book's check values, and smooth F1 as a training loss through the stages."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from dltm.data import prepare_mr
from pipelines import appendices as A

from .conftest import run_task, synthetic_mr

MR_PARAMS = {"encoding": "cp1252", "split_seed": 10, "dev_size": 40, "cv_folds": 3, "cv_seed": 10}


@pytest.fixture(scope="module")
def appendix_a():
    return json.loads(json.dumps(A.compute_appendix_a(seed=3)))  # as outputs.json holds it


def test_every_statement_of_appendix_a_holds_on_keras_3(appendix_a):
    checks = A.appendix_a_checks(appendix_a)
    assert len(checks) >= 30 and [k for k, v in checks.items() if not v] == []
    losses = appendix_a["losses"]
    assert losses["categorical_crossentropy"] == pytest.approx(-np.log([0.9, 0.89, 0.94]).mean(), abs=1e-6)
    assert losses["crossentropy_4_4_1"] == pytest.approx(-np.log(0.619), abs=1e-6)  # 4.4.1: 0.479
    assert appendix_a["layers"]["merge"]["dot"] == [130.0]
    assert appendix_a["layers"]["flatten_channels_last"] == [3 * 32 * 64]  # Keras 3's default data format
    assert A.changed_defaults(appendix_a["optimizers"]) == {("Adadelta", "epsilon"), ("Adamax", "learning_rate"),
                                                          ("Nadam", "learning_rate")}


def test_a_wrong_value_fails_its_check(appendix_a):
    broken = json.loads(json.dumps(appendix_a))
    broken["layers"]["merge"]["dot"] = [131.0]
    broken["losses"]["mean_squared_error"] = 0.76
    broken["activations"]["hard_sigmoid_vs_book"] = 0.0  # as if Keras had kept the book's formula
    broken["optimizers"][0]["keras3"] = 0.01  # Adadelta's learning rate changed: an unknown change
    failed = {k for k, v in A.appendix_a_checks(broken).items() if not v}
    assert failed == {"merge_dot_130", "loss_mean_squared_error", "activation_hard_sigmoid_changed_from_book",
                      "optimizer_defaults_changed_where_known"}


def test_the_smooth_approximations_give_the_books_values_and_converge():
    v = A.smooth_values()
    assert np.allclose(v["softmax"], A.BOOK_SOFTMAX, atol=5e-5)
    assert v["soft_argmax"] == pytest.approx(A.BOOK_SOFT_ARGMAX, abs=1e-3)
    assert v["logsumexp"] == pytest.approx(A.BOOK_LOGSUMEXP, abs=1e-4)
    assert v["smooth_max_by_K"][-1] == pytest.approx(5.0, abs=1e-4) and v["soft_argmax_by_K"][-1] == pytest.approx(4)
    assert all(a >= b for a, b in zip(v["smooth_max_by_K"], v["smooth_max_by_K"][1:], strict=False))  # falls to max


def test_smooth_f1_and_accuracy_are_the_books_formulas_and_differentiable():
    t = np.array([1, 0, 1, 1, 0], "float32")
    p = np.array([[0.9], [0.2], [0.4], [0.7], [0.6]], "float32")
    f1 = 2 * (t * p[:, 0]).sum() / (t + p[:, 0]).sum()
    assert float(A.smooth_f1_loss(t, ops.convert_to_tensor(p))) == pytest.approx(1 - f1, abs=1e-6)
    assert float(A.smooth_accuracy(t, ops.convert_to_tensor(p))) == pytest.approx(
        np.mean(t * p[:, 0] + (1 - t) * (1 - p[:, 0])), abs=1e-6)
    assert float(A.smooth_f1_loss(t, ops.convert_to_tensor(t[:, None]))) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(float(A.smooth_f1_loss(np.zeros(4), ops.zeros((4, 1)))))  # no positives, none predicted
    model = A.build_mean_embedding(20, 4)
    model.compile(keras.optimizers.Adam(0.05), loss=A.smooth_f1_loss)
    rng = np.random.RandomState(0)
    y = (rng.rand(32) < 0.3).astype("int32")  # positives use words 1-9, negatives 10-19
    x = np.where(y[:, None] == 1, rng.randint(1, 10, (32, 6)), rng.randint(10, 20, (32, 6)))
    before = model.evaluate(x, y, verbose=0, batch_size=32)
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0, batch_size=32) < before - 0.1  # the loss trains the model
    x[0] = 0  # a sentence without a word of the vocabulary: a finite loss and prediction (the e2e's NaN)
    assert np.isfinite(model.evaluate(x, y, verbose=0, batch_size=32))
    assert np.isfinite(model.predict(x[:1], verbose=0)).all()


def test_appendix_stages_write_checks_f1_by_seed_and_the_report_section(tmp_path, monkeypatch):
    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=120)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr", MR_PARAMS)
    a = run_task(tmp_path, monkeypatch, "appA_checks")
    assert a["checks_passed"] == 1.0 and a["merge_dot_130"] == 1.0
    assert (tmp_path / "plots" / "appA_checks" / "train" / "activations.png").is_file()
    m = run_task(tmp_path, monkeypatch, "appB_smooth", {"appB_smooth.seeds": [1, 2], "appB_smooth.epochs": 3,
                                                        "appB_smooth.positive_fraction": 0.3})
    assert {"test_f1", "test_f1_std", "test_f1_bce", "test_f1_bce_std", "softmax_matches_book"} <= set(m)
    assert m["softmax_matches_book"] == m["soft_argmax_matches_book"] == m["logsumexp_matches_book"] == 1.0
    by_seed = json.loads((tmp_path / "plots" / "appB_smooth" / "eval" / "f1_by_seed.json").read_text())
    assert len(by_seed["bce"]) == len(by_seed["smooth_f1"]) == 2
    assert m["test_f1"] == pytest.approx(np.mean(by_seed["smooth_f1"]))
    assert 0 < m["test_positives"] < m["n_examples"] / 3  # a minority class
    lines = A.appendix_table(tmp_path)
    assert "| Nadam | learning_rate | 0.002 | 0.001 **(changed)** |" in lines
    assert any(line.startswith("| 1 - smooth F1 (B.4) |") for line in lines)
    assert keras.saving.get_registered_object("dltm>smooth_f1_loss") is A.smooth_f1_loss
    from dltm.inference import TextClassifier  # each seed's model classifies raw text (its MLflow text_model)

    found = TextClassifier(tmp_path / "models" / "appB_smooth" / "smooth_f1-s1").predict(["a great film"])[0]
    assert found.label in ("neg", "pos") and 0 <= found.probability <= 1
