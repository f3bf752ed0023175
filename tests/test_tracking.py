import warnings
from pathlib import Path

import numpy as np
import pytest

from dltm import tracking
from dltm.params import RunSettings
from dltm.tasks import Context, get
from dltm.tracking import Tracker, repo_root


def test_repo_root_sees_through_dvc_experiment_copies(tmp_path):
    (tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpab12" / "stages").mkdir(parents=True)
    assert repo_root(tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpab12" / "stages") == tmp_path / "repo"
    (tmp_path / "plain" / ".dvc").mkdir(parents=True)
    (tmp_path / "plain" / "sub").mkdir()
    assert repo_root(tmp_path / "plain" / "sub") == tmp_path / "plain"


def test_default_uri_is_absolute_sqlite_at_the_root(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking.tracking_uri()
    assert uri.startswith("sqlite:////") and uri.endswith("/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert tracking.tracking_uri() == "http://example:5000"


def test_unreachable_server_warns_and_never_raises(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.warns(UserWarning, match="not everything was logged") as rec:
        with Tracker("exp", "run") as tr:
            assert not tr.active
            tr.log_params({"a": {"b": 1}})
            tr.log_metrics({"loss": 0.5}, step=0)
            tr.log_artifact("nothing.txt")
    assert "127.0.0.1:9" in str(rec[0].message)


def test_sqlite_run_gets_params_metrics_and_is_reopened(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with Tracker("ch00", "task", tags={"seed": "3"}) as tr:
            tr.log_params({"run": {"seed": 3}, "task": {"filters": [3, 4]}})
            tr.log_metrics({"loss": 1.0}, step=0)
            tr.log_metrics({"loss": 0.5}, step=1)
        with Tracker("ch00", "task", run_id=tr.run_id) as again:
            again.log_params({"run": {"seed": 3}})  # same value again is fine
            again.log_metrics({"test_accuracy": 0.75})
    assert again.run_id == tr.run_id
    client = mlflow.MlflowClient(uri)
    run = client.get_run(tr.run_id)
    assert run.data.params == {"run.seed": "3", "task.filters": "[3, 4]"}
    assert run.data.metrics["test_accuracy"] == 0.75 and run.data.tags["seed"] == "3"
    assert [m.value for m in client.get_metric_history(tr.run_id, "loss")] == [1.0, 0.5]


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
    assert np.isfinite(m1["loss"])
