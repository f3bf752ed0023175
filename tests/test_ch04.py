import json
from pathlib import Path

import keras
import numpy as np
import pytest

from dltm.data import MNIST_CLASSES
from dltm.params import ParamError
from dltm.training import ClassifierData, optimizer
from pipelines import ch04_feedforward as ch04

from .conftest import run_task, synthetic_mnist

BOOK = {"hidden_units": [128], "activation": "relu", "dropout": 0.5, "batch_norm": False,
        "kernel_initializer": "glorot_uniform", "l1": 0.0, "l2": 0.0}
DATA = ClassifierData(np.zeros((1, 28, 28)), np.zeros(1), np.zeros((1, 28, 28)), np.zeros(1), MNIST_CLASSES)


def test_cross_entropy_check_value_of_line_1486():
    loss = keras.losses.CategoricalCrossentropy()
    assert float(loss(np.array([[0.0, 1.0, 0.0]]), np.array([[0.228, 0.619, 0.153]]))) == pytest.approx(0.4797,
                                                                                                         abs=1e-4)


def test_book_models_have_the_book_layers_and_sizes():
    softmax = ch04.build_softmax(DATA)
    assert [type(layer).__name__ for layer in softmax.layers] == ["Flatten", "Dense", "Softmax"]
    assert softmax.count_params() == 784 * 10 + 10
    mlp = ch04.mlp_builder(BOOK, "t")(DATA)
    assert [type(layer).__name__ for layer in mlp.layers] == ["Flatten", "Dense", "Dropout", "Dense"]
    assert mlp.count_params() == 784 * 128 + 128 + 128 * 10 + 10
    assert mlp.layers[-1].activation.__name__ == "linear"  # logits: the loss uses from_logits=True


def test_the_book_double_softmax_is_a_different_loss():
    probs = np.array([[0.05, 0.9, 0.05]], np.float32)
    right = float(ch04.loss_fn(from_logits=False)(np.array([1]), probs))
    book = float(ch04.loss_fn(from_logits=True)(np.array([1]), probs))
    assert right == pytest.approx(-np.log(0.9), rel=1e-5) and book > 0.5  # softmax of probabilities is flat


def test_variants_switch_the_layers():
    bn = ch04.mlp_builder(BOOK | {"batch_norm": True, "dropout": 0.0, "hidden_units": [32, 16]}, "t")(DATA)
    assert [type(layer).__name__ for layer in bn.layers] == ["Flatten", "Dense", "BatchNormalization", "Activation",
                                                             "Dense", "BatchNormalization", "Activation", "Dense"]
    reg = ch04.mlp_builder(BOOK | {"l2": 0.01}, "t")(DATA)
    reg(np.ones((1, 28, 28), np.float32))
    assert len(reg.losses) == 2  # one L2 penalty per Dense kernel
    zeros = ch04.mlp_builder(BOOK | {"kernel_initializer": "zeros"}, "t")(DATA)
    assert not np.any(zeros.layers[1].kernel.numpy())
    with pytest.raises(ParamError, match="t.kernel_initializer"):
        ch04.mlp_builder(BOOK | {"kernel_initializer": "nonsense"}, "t")
    with pytest.raises(ParamError, match="t.dropout"):
        ch04.mlp_builder(BOOK | {"dropout": 1.5}, "t")


def test_optimizer_names_of_4_4():
    assert isinstance(optimizer("momentum"), keras.optimizers.SGD) and optimizer("momentum").momentum == 0.9
    assert optimizer("nesterov").nesterov and not optimizer("sgd").nesterov
    assert optimizer("adam", clipnorm=1.0).clipnorm == 1.0
    for name in ("adagrad", "rmsprop", "adam", "nadam", "adadelta", "adamax"):
        assert type(optimizer(name)).__name__.lower() == name
    with pytest.raises(ParamError, match="unknown optimizer 'adamw2'"):
        optimizer("adamw2")


@pytest.fixture
def mnist_dir(tmp_path):
    synthetic_mnist(tmp_path / "data" / "raw" / "mnist", n_train=200, n_test=100)
    return tmp_path


def test_softmax_and_mlp_train_on_mnist_format_files(mnist_dir, monkeypatch):
    m = run_task(mnist_dir, monkeypatch, "ch04_mnist_softmax", {"run.max_epochs": 2})
    assert m["n_examples"] == 100 and m["test_accuracy"] > 0.5  # the bars are easy
    m = run_task(mnist_dir, monkeypatch, "ch04_mnist_mlp",
                 {"run.max_epochs": 6, "ch04_mnist_mlp.validation_split": 0.2,
                  "ch04_mnist_mlp.early_stopping_patience": 1, "ch04_mnist_mlp.batch_norm": True})
    run = json.loads((mnist_dir / "models" / "ch04_mnist_mlp" / "run.json").read_text())
    assert run["validation_examples"] == 40 and run["train_examples"] == 160 and 1 <= run["best_epoch"] <= 6
    assert (mnist_dir / "plots" / "ch04_mnist_mlp" / "eval" / "confusion_matrix.png").is_file()


def test_optimizer_comparison_one_child_run_per_optimizer(mnist_dir, monkeypatch):
    import mlflow

    m = run_task(mnist_dir, monkeypatch, "ch04_optimizer_comparison",
                 {"ch04_optimizer_comparison.optimizers": ["sgd", "nesterov", "adam"],
                  "ch04_optimizer_comparison.epochs": 2})
    assert {"test_accuracy_sgd", "test_accuracy_nesterov", "test_accuracy_adam"} <= set(m)
    assert m["test_best_accuracy"] == max(m["test_accuracy_sgd"], m["test_accuracy_nesterov"], m["test_accuracy_adam"])
    losses = (mnist_dir / "plots" / "ch04_optimizer_comparison" / "train" / "losses.csv").read_text().splitlines()
    assert losses[0] == "epoch,sgd,nesterov,adam" and len(losses) == 3
    assert (mnist_dir / "plots" / "ch04_optimizer_comparison" / "train" / "optimizers.png").is_file()
    run = json.loads((mnist_dir / "models" / "ch04_optimizer_comparison" / "run.json").read_text())
    client = mlflow.MlflowClient(f"sqlite:///{mnist_dir / 'mlflow.db'}")
    for name, child_id in run["child_runs"].items():
        child = client.get_run(child_id)
        assert child.data.tags["mlflow.parentRunId"] == run["mlflow_run_id"]
        assert child.data.metrics["test_accuracy"] == pytest.approx(m[f"test_accuracy_{name}"])
        assert len(client.get_metric_history(child_id, "train_loss")) == 2


def test_mnist_without_training_images_says_what_is_missing(tmp_path, monkeypatch):
    files = synthetic_mnist(tmp_path / "data" / "raw" / "mnist", n_train=10, n_test=10)
    files["train-images-idx3-ubyte.gz"].unlink()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz: missing; run `.*download.*mnist`"):
        run_task(tmp_path, monkeypatch, "ch04_mnist_softmax")


def test_fashion_mnist_variant_reads_its_own_files_and_names_its_outputs(tmp_path, monkeypatch):
    """``--variant fashion_mnist``: data/raw/fashion_mnist (no MNIST at all here), Fashion-MNIST's class names,
    outputs named ``<task>-fashion_mnist`` and the stage train_images@ that dvc.yaml gives them."""
    import mlflow

    from stages import train

    synthetic_mnist(tmp_path / "data" / "raw" / "fashion_mnist", n_train=200, n_test=100)
    m = run_task(tmp_path, monkeypatch, "ch04_mnist_softmax", {"run.max_epochs": 2}, variant="fashion_mnist")
    assert m["n_examples"] == 100 and m["test_accuracy"] > 0.5
    assert not (tmp_path / "models" / "ch04_mnist_softmax").exists()
    run = json.loads((tmp_path / "models" / "ch04_mnist_softmax-fashion_mnist" / "run.json").read_text())
    tags = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run["mlflow_run_id"]).data.tags
    assert tags["dataset"] == "fashion_mnist" and tags["variant"] == "fashion_mnist"
    from dltm.tasks import dvc_stage

    repo = Path(__file__).resolve().parents[1]
    stage = dvc_stage("ch04_mnist_softmax", "fashion_mnist", root=repo)
    assert stage == "train_images@ch04_mnist_softmax-fashion_mnist"
    assert ch04.TASKS[0].reference.source_for("fashion_mnist").startswith("Xiao et al. 2017")
    assert ch04.TASKS[0].reference.for_variant("fashion_mnist") != ch04.TASKS[0].reference.for_variant(None)
    # MNIST, the default, is missing here: the run without --variant says so, and a wrong variant is one line
    with pytest.raises(FileNotFoundError, match=r"mnist[/\\]train-images-idx3-ubyte.gz: missing"):
        run_task(tmp_path, monkeypatch, "ch04_mnist_softmax")
    with pytest.raises(SystemExit):
        train.main(["ch04_mnist_softmax", "--variant", "cifar10"])
