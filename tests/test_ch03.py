import json

import keras
import numpy as np
import pytest

from dltm.params import ParamError

from .conftest import MIRROR, needs_mirror, run_task, synthetic_tables

FAST = {"run.max_epochs": 3}


def test_functional_api_snippet_of_3_2_shapes():
    """Lines 640-659: a 784 -> 64 -> 64 -> 10 model with the functional API, and its layer output shapes."""
    inputs = keras.Input(shape=(784,))
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    assert [tuple(layer.output.shape) for layer in model.layers[1:]] == [(None, 64), (None, 64), (None, 10)]
    assert model.count_params() == 784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10


def test_breakfast_keras_learns_the_prices(tmp_path, monkeypatch):
    m = run_task(tmp_path, monkeypatch, "ch03_breakfast_keras")
    assert abs(m["test_prediction"] - 300) < 5, m
    assert abs(m["weight_side_dish"] - 150) < 2 and abs(m["weight_bun"] - 50) < 2 and abs(m["weight_drink"] - 100) < 2
    saved = json.loads((tmp_path / "plots" / "ch03_breakfast_keras" / "eval" / "weights.json").read_text())
    assert saved["prediction"] == pytest.approx(m["test_prediction"])


@pytest.fixture
def tables(tmp_path):
    files = synthetic_tables(tmp_path / "src")
    for name, path in files.items():
        dest = tmp_path / "data" / "raw" / name.removesuffix(".txt")
        dest.mkdir(parents=True)
        (dest / name).write_bytes(path.read_bytes())
    return tmp_path


def test_ionosphere_and_iris_mlps_on_synthetic_tables(tables, monkeypatch):
    m = run_task(tables, monkeypatch, "ch03_ionosphere_mlp", {"run.max_epochs": 30})
    assert m["n_examples"] == 30 and {"test_precision_g", "test_recall_b"} <= set(m)  # 33% of 90
    assert m["test_accuracy"] > 0.7  # two well separated classes
    m = run_task(tables, monkeypatch, "ch03_iris_mlp", FAST)
    assert m["n_examples"] == 20 and m["flower_class"] in (0.0, 1.0, 2.0) and 0 < m["flower_probability"] <= 1
    flower = json.loads((tables / "plots" / "ch03_iris_mlp" / "eval" / "flower.json").read_text())
    assert flower["row"] == [5.1, 3.5, 1.4, 0.2] and set(flower["probabilities"]) == {
        "Iris-setosa", "Iris-versicolor", "Iris-virginica"}


def test_boston_compares_six_models_and_draws_both_pictures(tables, monkeypatch):
    m = run_task(tables, monkeypatch, "ch03_boston_regression",
                 FAST | {"ch03_boston_regression.svr_grid": {"C": [1, 10], "gamma": [0.1], "epsilon": [0.1]}})
    assert set(m) == {"test_mse_nn", "test_mse_svr", "test_mse_lr", "test_mse_nn_scaled", "test_mse_svr_scaled",
                      "test_mse_lr_scaled", "n_examples"}
    assert m["test_mse_lr"] == pytest.approx(m["test_mse_lr_scaled"], rel=1e-3)  # scaling cannot change least squares
    assert m["test_mse_lr"] < 1.0  # the synthetic target is linear plus N(0, 0.5) noise
    for png in ("predicted_vs_actual.png", "predicted_vs_actual_scaled.png"):
        assert (tables / "plots" / "ch03_boston_regression" / "eval" / png).read_bytes()[:4] == b"\x89PNG"
    assert (tables / "models" / "ch03_boston_regression" / "nn_scaled" / "model.keras").is_file()


def test_sine_fit_picture_and_metrics(tmp_path, monkeypatch):
    m = run_task(tmp_path, monkeypatch, "ch03_sine_fit", FAST)
    assert m["noise_variance"] == pytest.approx(0.01, rel=0.5)
    assert (tmp_path / "plots" / "ch03_sine_fit" / "eval" / "sine_fit.png").is_file()
    history = (tmp_path / "plots" / "ch03_sine_fit" / "train" / "history.csv").read_text().splitlines()
    assert len(history) == 4


def test_bad_table_names_the_file_and_line(tmp_path):
    from dltm.data import load_table

    p = tmp_path / "iris.txt"
    p.write_text("5.1,3.5,1.4,0.2,Iris-setosa\n4.9,x,1.4,0.2,Iris-setosa\n")
    with pytest.raises(ValueError, match=r"iris.txt:2: column 2 is 'x'"):
        load_table(p, 4)
    with pytest.raises(ValueError, match="expected 35 comma-separated columns, found 5"):
        load_table(p, 34)


def test_bad_split_param_is_named(tables, monkeypatch):
    with pytest.raises(ParamError, match="ch03_iris_mlp.test_size"):
        run_task(tables, monkeypatch, "ch03_iris_mlp", {"ch03_iris_mlp.test_size": "a third"})


@needs_mirror
@pytest.mark.realdata
def test_the_book_tables_from_the_mirror_load_as_described():
    from dltm.data import load_table

    X, y = load_table(MIRROR / "book" / "ionosphere.txt", 34)
    assert X.shape == (351, 34) and set(y) == {"g", "b"} and (y == "g").sum() == 225
    X, y = load_table(MIRROR / "book" / "iris.txt", 4)
    assert X.shape == (150, 4) and {n: (y == n).sum() for n in set(y)} == {
        "Iris-setosa": 50, "Iris-versicolor": 50, "Iris-virginica": 50}
    X, medv = load_table(MIRROR / "book" / "housing.txt", 13)
    assert X.shape == (506, 13) and np.isclose(medv.astype(float).mean(), 22.5328, atol=1e-3)
