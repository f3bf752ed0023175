import numpy as np

from dltm.params import RunSettings
from dltm.tasks import Context, get
from dltm.tracking import Tracker
from pipelines import ch05_cnn as ch05


def test_output_length_formulas():
    assert ch05.conv_length(14, 3) == 12 and ch05.conv_length(14, 3, wide=True) == 16
    assert ch05.conv_length(7, 3, s=2) == 3 and ch05.conv_length(6, 3, s=2) == 2


def test_keras_conv1d_with_fixed_weights_equals_numpy():
    f = np.array([0.2, 0.5, 0.3])
    x = np.arange(8, dtype=float)
    np.testing.assert_allclose(ch05.keras_conv1d(x, f[::-1], "valid"), np.convolve(x, f, "valid"), rtol=1e-6)
    np.testing.assert_allclose(ch05.keras_conv1d(x, f[::-1], "wide"), np.convolve(x, f, "full"), rtol=1e-6)


def test_every_worked_example_passes(tmp_path):
    task = get("ch05_conv_numeric")
    ctx = Context(task, {}, RunSettings(), Tracker("x", "y"), root=tmp_path)
    task.train(ctx)
    metrics = task.evaluate(ctx)
    assert metrics["checks_passed"] == 1.0, metrics


def test_mnist_cnn_is_the_books_model():
    from dltm.data import MNIST_CLASSES
    from dltm.training import ClassifierData

    data = ClassifierData(np.zeros((1, 28, 28)), np.zeros(1), np.zeros((1, 28, 28)), np.zeros(1), MNIST_CLASSES)
    model = ch05.build_mnist_cnn(data)
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [
        (28, 28, 1), (28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64), (3136,), (1024,), (1024,), (10,)]
    assert model.count_params() == (5 * 5 * 32 + 32) + (5 * 5 * 32 * 64 + 64) + (3136 * 1024 + 1024) + 10250


def test_har_dropout_placement_switch():
    import pytest

    from dltm.data import HAR_CLASSES
    from dltm.params import ParamError
    from dltm.training import ClassifierData

    data = ClassifierData(np.zeros((1, 128, 9)), np.zeros(1), np.zeros((1, 128, 9)), np.zeros(1), HAR_CLASSES,
                          info={"n_timesteps": 128, "n_features": 9})
    p = {"dropout": 0.5, "dropout_placement": "after_conv"}
    names = lambda m: [type(layer).__name__ for layer in m.layers]  # noqa: E731
    assert names(ch05.har_builder(p, "t")(data)) == ["Conv1D", "Dropout", "MaxPooling1D", "Flatten", "Dense",
                                                     "Dense"]
    assert names(ch05.har_builder(p | {"dropout_placement": "after_dense"}, "t")(data)) == [
        "Conv1D", "MaxPooling1D", "Flatten", "Dense", "Dropout", "Dense"]
    with pytest.raises(ParamError, match="t.dropout_placement"):
        ch05.har_builder(p | {"dropout_placement": "before"}, "t")


def test_mnist_cnn_and_har_repeats_on_real_format_files(tmp_path, monkeypatch):
    import json

    import mlflow

    from .conftest import run_task, synthetic_har, synthetic_mnist

    synthetic_mnist(tmp_path / "data" / "raw" / "mnist", n_train=100, n_test=50)
    m = run_task(tmp_path, monkeypatch, "ch05_mnist_cnn", {"run.max_epochs": 1})
    assert m["n_examples"] == 50 and 0 <= m["test_accuracy"] <= 1
    synthetic_har(tmp_path / "data" / "raw" / "har", n_train=90, n_test=30)
    m = run_task(tmp_path, monkeypatch, "ch05_har_cnn1d", {"run.max_epochs": 3, "ch05_har_cnn1d.repeats": 3})
    assert m["test_accuracy_n"] == 3 and m["n_examples"] == 30
    assert m["test_accuracy_min"] <= m["test_accuracy_mean"] <= m["test_accuracy_max"] and m["test_accuracy_std"] >= 0
    repeats = json.loads((tmp_path / "plots" / "ch05_har_cnn1d" / "eval" / "repeats.json").read_text())
    assert repeats["seeds"] == [1, 2, 3] and np.mean(repeats["accuracy"]) == m["test_accuracy_mean"]
    assert len({round(a, 6) for a in repeats["accuracy"]}) >= 1
    run = json.loads((tmp_path / "models" / "ch05_har_cnn1d" / "run.json").read_text())
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children = client.search_runs([client.get_run(run["mlflow_run_id"]).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{run['mlflow_run_id']}'")
    assert sorted(c.data.tags["seed"] for c in children) == ["1", "2", "3"]
    assert (tmp_path / "plots" / "ch05_har_cnn1d" / "train" / "history.csv").is_file()
    assert (tmp_path / "plots" / "ch05_har_cnn1d" / "train" / "r2" / "history.csv").is_file()
