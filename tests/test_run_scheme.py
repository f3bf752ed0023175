"""Issue 12, part 2: runs that tell apart, metrics with one meaning (train_/val_/test_), steps from 1, params as
params.yaml writes them and only those a task reads, the model-training view, system metrics, dataset inputs."""

import json
import time

import mlflow
import pytest

from dltm import tasks
from dltm.data import prepare_imdb
from dltm.evaluation import split_names
from dltm.params import RunSettings
from dltm.tracking import Tracker, curve_name, param_text
from stages.train import run_label

from .conftest import run_task, synthetic_imdb

SMALL = {"ch07_cnn1d_imdb.maxlen": 30, "ch07_cnn1d_imdb.filters": 4, "ch07_cnn1d_imdb.hidden_dims": 4,
         "ch07_cnn1d_imdb.epochs": 3, "ch07_cnn1d_imdb.vocab_size": 60}


def test_curve_and_result_names():
    assert [curve_name(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")] == [
        "train_loss", "train_accuracy", "test_loss", "test_accuracy", "learning_rate"]
    assert curve_name("val_loss", held_out="val") == "val_loss" and curve_name("test_perplexity", "val") == (
        "test_perplexity")
    assert split_names({"accuracy": 0.5, "n_examples": 3, "val_perplexity": 9.0}, keep=["n_examples"]) == {
        "test_accuracy": 0.5, "n_examples": 3, "val_perplexity": 9.0}
    assert split_names({"accuracy": 1.0}, split="train") == {"train_accuracy": 1.0}


def test_every_task_names_its_headline_metric_by_its_split():
    checks = {"matches_book", "checks_passed", "word_index_matches_book"}  # comparisons with the book, no split
    for task in tasks.all_tasks().values():
        assert task.metric in checks or task.metric.startswith(("train_", "val_", "test_")), task.id


def test_params_are_logged_as_params_yaml_writes_them():
    assert [param_text(v) for v in (None, True, False, [3, 4, 5], 0.5, "adam")] == [
        "null", "true", "false", "[3, 4, 5]", "0.5", "adam"]


def test_run_names_tell_repeats_apart(monkeypatch):
    task = tasks.get("ch07_kim_cnn")
    run = RunSettings(seed=2)
    committed = {"ch07_kim_cnn": {"filter_nums": 10, "dropout": 0.5}, "run": {"seed": 1, "max_epochs": 0}}
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert run_label(task, None, run, {"filter_nums": 100, "dropout": 0.5}, committed) == (
        "ch07_kim_cnn · filter_nums=100, seed=2")
    monkeypatch.setenv("DVC_EXP_NAME", "wiser-bass")
    assert run_label(task, None, RunSettings(seed=1), {"filter_nums": 10, "dropout": 0.5}, committed) == (
        "ch07_kim_cnn · wiser-bass")
    kim = tasks.get("ch07_kim2014")
    assert run_label(kim, "rand", run, {}, committed).startswith("ch07_kim2014-rand · wiser-bass · seed=2")


@pytest.fixture
def imdb(tmp_path):
    raw = synthetic_imdb(tmp_path / "data" / "raw" / "imdb", n_per_class=40)
    prepare_imdb(raw, tmp_path / "data" / "prepared" / "imdb", {"shuffle_seed": 10})
    return tmp_path


def test_a_run_has_one_scheme_steps_from_one_only_read_params_and_its_dataset(imdb, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-one")
    m = run_task(imdb, monkeypatch, "ch07_cnn1d_imdb", SMALL)
    assert {"test_accuracy", "test_loss", "test_f1_macro", "n_examples"} <= set(m) and "accuracy" not in m
    history = (imdb / "plots" / "ch07_cnn1d_imdb" / "train" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_accuracy,train_loss,test_accuracy,test_loss"  # no validation split
    client = mlflow.MlflowClient(f"sqlite:///{imdb / 'mlflow.db'}")
    run_id = json.loads((imdb / "models" / "ch07_cnn1d_imdb" / "run.json").read_text())["mlflow_run_id"]
    run = client.get_run(run_id)
    assert run.info.run_name == "ch07_cnn1d_imdb · exp-one"
    assert [h.step for h in client.get_metric_history(run_id, "train_loss")] == [1, 2, 3]
    assert not any(k.startswith("val_") for k in run.data.metrics)  # no validation split, no val_*
    assert run.data.metrics["test_accuracy"] == pytest.approx(m["test_accuracy"])
    params = run.data.params
    assert params["ch07_cnn1d_imdb.learning_rate"] == "null" and params["run.mixed_precision"] == "false"
    assert "run.text_data" not in params  # ch07_cnn1d_imdb reads IMDB, never run.text_data
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.note.content"].startswith("Chapter 7: CNN text classification")
    inputs = run.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["imdb"] and inputs[0].dataset.source_type == "http"
    assert "ai.stanford.edu" in inputs[0].dataset.source

    monkeypatch.setenv("DVC_EXP_NAME", "exp-two")  # a second experiment: a second, distinct name
    run_task(imdb, monkeypatch, "ch07_cnn1d_imdb", {**SMALL, "ch07_cnn1d_imdb.validation_split": 0.25})
    history = (imdb / "plots" / "ch07_cnn1d_imdb" / "train" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_accuracy,train_loss,val_accuracy,val_loss"  # a real validation split
    names = {r.info.run_name for r in client.search_runs([run.info.experiment_id])}
    assert names == {"ch07_cnn1d_imdb · exp-one", "ch07_cnn1d_imdb · exp-two"}


def test_numpy_tasks_log_only_what_they_read(tmp_path, monkeypatch):
    run_task(tmp_path, monkeypatch, "ch02_xor")
    run_task(tmp_path, monkeypatch, "ch02_backprop", {"ch02_backprop.epochs": 50})
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ch02_basics")
    runs = {r.data.tags["task"]: r for r in client.search_runs([exp.experiment_id])}
    assert not any(k.startswith("run.") for k in runs["ch02_xor"].data.params)  # hand-set weights: no seed
    assert {k for k in runs["ch02_backprop"].data.params if k.startswith("run.")} == {"run.seed"}
    assert runs["ch02_xor"].data.metrics["train_accuracy"] == 1.0


def test_system_metrics_are_sampled_in_a_short_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'm.db'}")
    with Tracker("sys", "short", system_metrics=True) as tr:
        time.sleep(3 * 2.0)
    metrics = mlflow.MlflowClient().get_run(tr.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics and "system/system_memory_usage_megabytes" in metrics
