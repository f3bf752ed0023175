from pathlib import Path

import keras
import numpy as np
import pytest

from dltm.params import ParamError, RunSettings
from dltm.tasks import Context, get
from dltm.tracking import Tracker
from dltm.training import ClassifierData, FitSettings, train_classifier
from pipelines.ch07_text_cnn import build_kim_cnn


def _train_simple(tmp_path: Path, seed: int):
    run = RunSettings(seed=seed, max_epochs=5)
    task = get("ch07_simple_classifier")
    params = {"max_length": 4, "embed_size": 8, "epochs": 50, "batch_size": 32, "optimizer": "adam"}
    ctx = Context(task, params, run, Tracker("x", "y"), root=tmp_path)  # an inactive tracker: logs nothing
    info = task.train(ctx)
    metrics = task.evaluate(ctx)
    return info, metrics, (tmp_path / "plots" / task.id / "train" / "history.csv").read_text()


def test_same_seed_same_numbers_on_cpu(tmp_path):
    _, m1, h1 = _train_simple(tmp_path / "a", seed=7)
    info, m2, h2 = _train_simple(tmp_path / "b", seed=7)
    _, m3, _ = _train_simple(tmp_path / "c", seed=8)
    assert info["epochs"] == 5  # run.max_epochs caps the book's 50
    assert m1 == m2 and h1 == h2
    assert m1["p_weak_poor_situation"] != m3["p_weak_poor_situation"]
    assert np.isfinite(m1["train_loss"])  # the book scores its ten training documents


def test_validation_split_early_stopping_and_max_norm(tmp_path):
    rng = np.random.RandomState(0)
    x = rng.randint(1, 40, size=(200, 12)).astype("int32")
    y = (x[:, 0] > 20).astype("int32")
    data = ClassifierData(x[:160], y[:160], x[160:], y[160:], ["neg", "pos"], info={"doc_length": 12})
    task = get("ch07_kim_cnn")
    ctx = Context(task, {}, RunSettings(seed=3), Tracker("x", "y"), root=tmp_path)
    fit = FitSettings(epochs=30, batch_size=16, validation_split=0.25, early_stopping_patience=2)
    info = train_classifier(ctx, data, lambda d: build_kim_cnn(12, 40, 8, (2, 3), 4, 0.5, max_norm=0.5), fit)
    assert info["train_examples"] == 120 and info["validation_examples"] == 40
    assert info["best_epoch"] <= info["epochs"] <= 30
    history = (tmp_path / "plots" / task.id / "train" / "history.csv").read_text().splitlines()
    assert len(history) == info["epochs"] + 1 and "val_accuracy" in history[0]
    model = keras.models.load_model(tmp_path / "models" / task.id / "model.keras")
    kernel = model.get_layer("output").kernel.numpy()
    assert np.linalg.norm(kernel, axis=0).max() <= 0.5 + 1e-5


@pytest.mark.parametrize("bad, match", [({"early_stopping_patience": 2}, "needs ch07_x.validation_split"),
                                        ({"validation_split": 1.5}, "validation_split must be in"),
                                        ({"epochs": 0}, "must be >= 1")])
def test_fit_settings_are_checked(bad, match):
    p = {"epochs": 2, "batch_size": 4, "optimizer": "adam", **bad}
    with pytest.raises(ParamError, match=match):
        FitSettings.from_params(p, "ch07_x")


def test_an_unreadable_keras_file_is_a_user_error_naming_it(tmp_path):
    """A missing file, one that is not a zip (a truncated copy) and a zip without Keras' config.json: each a
    one-line error naming the file and the hint, never Keras' ValueError ("File not found") or a KeyError."""
    import zipfile

    from dltm.cli import MissingOutputError, UserError
    from dltm.training import load_keras_model

    path = tmp_path / "model.keras"
    with pytest.raises(MissingOutputError, match=r"model.keras: missing; run it"):
        load_keras_model(path, "run it")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(path)
    assert load_keras_model(path).output_shape == (None, 2)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserError, match=r"model.keras: not a readable .keras file \(not a zip archive\); run it"):
        load_keras_model(path, "run it")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(UserError, match=r"model.keras: not a readable .keras file \(KeyError"):
        load_keras_model(path, "run it")
