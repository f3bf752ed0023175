import warnings

import pytest

from dltm import tracking
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
    with pytest.warns(UserWarning, match="nothing was logged") as rec:
        with Tracker("exp", "run") as tr:
            assert not tr.active
            tr.log_params({"a": {"b": 1}})
            for epoch in range(1, 51):
                tr.log_metrics({"loss": 0.5}, step=epoch)
            tr.log_artifact("nothing.txt")
    assert len(rec) == 1
    message = str(rec[0].message)
    assert message.startswith("MLflow: nothing was logged for run (the DVC outputs are complete): "
                              "http://127.0.0.1:9 did not answer (") and len(message) < 200, message
    line = warnings.formatwarning(rec[0].message, rec[0].category, rec[0].filename, rec[0].lineno)
    assert line == f"warning: {message}\n"  # one line, without Python's file:line prefix and source line


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


def test_default_store_keeps_artifacts_at_the_root_even_from_an_experiment_copy(tmp_path, monkeypatch):
    import mlflow

    root = tmp_path / "repo"
    temp_copy = root / ".dvc" / "tmp" / "exps" / "tmpx1"
    temp_copy.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(temp_copy)
    with Tracker("ch99", "task") as tr:
        tr.log_text("hello", "note.txt")
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ch99")
    assert exp.artifact_location == (root / "mlruns").as_uri()
    assert (root / "mlruns").is_dir() and not (temp_copy / "mlruns").exists()
    assert [a.path for a in client.list_artifacts(tr.run_id)] == ["note.txt"]


def test_child_runs_nest_under_the_parent_and_reopen(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with Tracker("exp", "parent") as parent:
        with Tracker("exp", "parent/r0", parent=parent) as child:
            child.log_metrics({"loss": 1.0}, step=0)
        parent.log_metrics({"accuracy_mean": 0.5})
    with Tracker("exp", "parent", run_id=parent.run_id) as again:
        with Tracker("exp", "parent/r0", run_id=child.run_id, parent=again) as child2:
            child2.log_metrics({"test_accuracy": 0.75})
    assert not parent.failures and not child2.failures
    client = mlflow.MlflowClient(uri)
    c = client.get_run(child.run_id)
    assert c.data.tags["mlflow.parentRunId"] == parent.run_id
    assert c.data.metrics == {"loss": 1.0, "test_accuracy": 0.75}
    assert client.get_run(parent.run_id).data.metrics == {"accuracy_mean": 0.5}
    assert client.get_run(parent.run_id).info.status == "FINISHED"


def test_two_stages_describing_one_new_experiment_at_once_both_log(tmp_path, monkeypatch):
    """CI's failure of stop 26: two stages open the same new experiment on a PostgreSQL-backed server; both see
    the experiment untagged, and the store refuses the second insert of ``mlflow.experimentKind``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    set_tag = mlflow.MlflowClient.set_experiment_tag
    refused = []

    def raced(self, experiment_id, key, value):
        set_tag(self, experiment_id, key, value)  # the other stage's insert lands first ...
        refused.append(key)  # ... and this one is refused, as PostgreSQL does
        raise MlflowException(f"duplicate key value violates unique constraint: ({key}, {experiment_id})")

    monkeypatch.setattr(mlflow.MlflowClient, "set_experiment_tag", raced)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with Tracker("ch00", "task", description="Chapter 0") as tr:
            tr.log_metrics({"test_accuracy": 0.5})
    assert refused == ["mlflow.experimentKind", "mlflow.note.content"]
    run = mlflow.MlflowClient(uri).get_run(tr.run_id)
    assert run.data.metrics["test_accuracy"] == 0.5

    monkeypatch.setattr(mlflow.MlflowClient, "set_experiment_tag",
                        lambda *a: (_ for _ in ()).throw(MlflowException("permission denied")))
    with pytest.warns(UserWarning, match="nothing was logged"):  # any other refusal is still reported
        with Tracker("ch01", "task") as other:
            pass
    assert other.run_id is None
