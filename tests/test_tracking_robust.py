"""dltm.tracking under what users met: keys MLflow refuses, failing calls, parallel first opens of a fresh store,
killed processes, relative store URIs. The races and kills use real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from dltm import tracking
from dltm.tracking import Tracker, mlflow_key, resolve_store_uri

REPO = Path(__file__).resolve().parents[1]


def _not_logged(records) -> list[str]:
    return [str(w.message) for w in records if "not everything was logged" in str(w.message)]


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


# -- 4. keys and values MLflow refuses; one failed call costs only itself ---------------------------------------

REFUSED_KEYS = [
    "dataset_sha256.reviews (2024).csv", "a//b", "./lead", "trail/", "/abs", "..up", "a/../b", "a/./b", ".", "",
    "semi;colon", "tab\tkey", "new\nline", "per%cent", "q?uery", "quote'\"", "x" * 300, "y" * 299 + "!",
]


@pytest.mark.parametrize("key", REFUSED_KEYS)
def test_mlflow_key_makes_every_key_acceptable_to_mlflow(key):
    from mlflow.utils.validation import (
        MAX_ENTITY_KEY_LENGTH,
        _validate_length_limit,
        _validate_metric_name,
        _validate_param_name,
        _validate_tag_name,
    )

    safe = mlflow_key(key)
    _validate_param_name(safe)
    _validate_tag_name(safe)
    _validate_metric_name(safe)
    assert _validate_length_limit("key", MAX_ENTITY_KEY_LENGTH, safe) == safe


def test_mlflow_key_keeps_good_keys_and_long_keys_apart():
    for good in ("run.seed", "ch07_kim2014.filter_sizes", "a/b c-d", "dataset_sha256.rt-polarity.pos", "中文 é"):
        assert mlflow_key(good) == good
    assert mlflow_key("dataset_sha256.reviews (2024).csv") == "dataset_sha256.reviews _2024_.csv"
    assert mlflow_key("a//b") == "a/_/b" and mlflow_key("..up") == "_..up"
    long_a, long_b = "x" * 300, "x" * 299 + "y"
    assert len(mlflow_key(long_a)) == 250 and mlflow_key(long_a) != mlflow_key(long_b)


def test_keys_mlflow_refuses_land_as_params_metrics_and_tags(store):
    import mlflow

    tags = {"dataset_sha256.reviews (2024).csv": "abc123", "seed": "1", "long": "t" * 9000}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing may be lost, so no warning
        with Tracker("ch00", "task", tags=tags) as tr:
            tr.log_params({"prepare": {"file": "reviews (2024).csv", "odd//key": 1}, "p(1)": "first",
                           "p_1_": "second", "long": "v" * 7000})
            tr.log_metrics({"acc@1": 0.5, "f1 (macro)": np.float32(0.25), "k" * 300: 2, "epochs": np.int64(3)},
                           step=0)
    assert tr.failures == []
    run = mlflow.MlflowClient(store).get_run(tr.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dataset_sha256.reviews _2024_.csv"] == "abc123" and run.data.tags["seed"] == "1"
    assert run.data.tags["long"] == "t" * 8000
    params = run.data.params
    assert params["prepare.file"] == "reviews (2024).csv" and params["prepare.odd/_/key"] == "1"
    assert params["long"] == "v" * 6000
    assert sorted(v for k, v in params.items() if k.startswith("p_1_")) == ["first", "second"]  # kept apart
    metrics = run.data.metrics
    assert metrics["acc_1"] == 0.5 and metrics["f1 _macro_"] == 0.25 and metrics["epochs"] == 3.0
    assert metrics[mlflow_key("k" * 300)] == 2.0


def test_one_failed_call_costs_only_that_call(store, tmp_path, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    real_log_batch = mlflow.MlflowClient.log_batch

    def refusing(self, run_id, metrics=(), params=(), tags=(), **kw):  # a store that refuses some items
        if any(x.key.startswith("refused") for x in (*metrics, *params, *tags)):
            raise MlflowException("refused by the store", error_code=INVALID_PARAMETER_VALUE)
        return real_log_batch(self, run_id, metrics=metrics, params=params, tags=tags, **kw)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", refusing)
    model = tmp_path / "model.txt"
    model.write_text("weights")
    with pytest.warns(UserWarning) as rec:
        with Tracker("ch00", "task", tags={"refused_tag": "x", "seed": "1"}) as tr:  # refused while opening
            assert tr.active
            tr.log_params({"a": 1, "refused_param": 2, "b": 3})
            with monkeypatch.context() as m:
                m.setattr(tr._client, "log_artifact", disk_full)
                tr.log_artifact(model)
            tr.log_metrics({"loss": 0.5, "refused_metric": 1.0}, step=0)
            tr.log_metrics({"loss": 0.25}, step=1)
            tr.log_text("hello", "note.txt")
    client = mlflow.MlflowClient(store)
    run = client.get_run(tr.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["seed"] == "1" and "refused_tag" not in run.data.tags
    assert run.data.params == {"a": "1", "b": "3"}
    assert [m.value for m in client.get_metric_history(tr.run_id, "loss")] == [0.5, 0.25]
    assert [a.path for a in client.list_artifacts(tr.run_id)] == ["note.txt"]
    messages = _not_logged(rec)
    assert len(messages) == 1  # one warning for the whole run, naming each thing lost
    for lost in ("refused_tag", "refused_param", "refused_metric", "model.txt", "No space left"):
        assert lost in messages[0]
    assert len(tr.failures) == 4


def test_a_store_that_stops_answering_is_not_asked_item_by_item(store, monkeypatch):
    import mlflow

    calls = []

    def down(self, run_id, metrics=(), params=(), tags=(), **kw):
        calls.append(len(params))
        raise ConnectionError("connection refused")

    with pytest.warns(UserWarning, match="not everything was logged"):
        with Tracker("ch00", "task") as tr:
            with monkeypatch.context() as m:
                m.setattr(mlflow.MlflowClient, "log_batch", down)
                tr.log_params({f"p{i}": i for i in range(50)})
    assert calls == [50, 1]  # the batch, then one item; the other 49 are reported, not tried
    assert tr.failures[0].startswith("param p0 (ConnectionError") and "p49 (not tried" in tr.failures[1]


def test_an_unreachable_store_gives_one_warning_for_many_calls(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.warns(UserWarning) as rec:
        with Tracker("exp", "run") as tr:
            for epoch in range(20):
                tr.log_metrics({"loss": 1.0 / (epoch + 1)}, step=epoch)
    messages = [str(w.message) for w in rec if "was logged" in str(w.message)]
    assert len(messages) == 1 and "nothing was logged for run" in messages[0] and "127.0.0.1:9" in messages[0]


# -- subprocesses ------------------------------------------------------------------------------------------------

def _spawn(code: str, *args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(paths: list[Path], procs: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"a child exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the children did not get ready")
        time.sleep(0.05)


# -- 5. a fresh store opened by several processes at once -------------------------------------------------------

RACE_CHILD = """
import json, sys, time
from pathlib import Path
import mlflow  # the slow import happens before the barrier
from dltm.tracking import Tracker
i, folder = int(sys.argv[1]), Path(sys.argv[2])
(folder / f"ready{i}").touch()
while not (folder / "go").exists():
    time.sleep(0.002)
with Tracker("race", f"run{i}") as tr:
    tr.log_params({"i": i})
    tr.log_metrics({"m": float(i)})
print(json.dumps({"run_id": tr.run_id, "failures": tr.failures}))
"""


def test_parallel_first_opens_of_a_fresh_sqlite_store_lose_no_run(store, tmp_path):
    import mlflow

    n = 4
    procs = [_spawn(RACE_CHILD, str(i), str(tmp_path), cwd=tmp_path) for i in range(n)]
    try:
        _wait_for([tmp_path / f"ready{i}" for i in range(n)], procs)
        assert not (tmp_path / "m.db").exists()
        (tmp_path / "go").touch()  # the barrier: all open the store at once
        results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for (out, err), rc in results:
        assert rc == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["failures"] == [], err[-3000:]
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("race").experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"run{i}" for i in range(n)]
    for r in runs:
        i = int(r.info.run_name[3:])
        assert r.info.status == "FINISHED" and r.data.params == {"i": str(i)} and r.data.metrics == {"m": float(i)}


# -- 6. runs of killed processes ---------------------------------------------------------------------------------

HOLD_CHILD = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever started the tests
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
from dltm.tracking import Tracker
name, ready = sys.argv[1], Path(sys.argv[2])
with Tracker("held", name, tags={"dvc_stage.train": "train@" + name}) as parent:
    with Tracker("held", name + "/r0", parent=parent) as child:
        ready.with_suffix(".tmp").write_text(parent.run_id + " " + child.run_id)
        ready.with_suffix(".tmp").rename(ready)
        time.sleep(300)
"""


def _hold(name: str, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    ready = tmp_path / f"{name}-{len(list(tmp_path.glob('*.ready')))}-{time.monotonic_ns()}.ready"
    return _spawn(HOLD_CHILD, name, str(ready), cwd=tmp_path), ready


def test_a_run_whose_process_gets_sigterm_sigint_or_sighup_ends_killed(store, tmp_path):
    import mlflow

    sigs = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
    held = [_hold(f"task{int(s)}", tmp_path) for s in sigs]
    procs = [p for p, _ in held]
    try:
        _wait_for([r for _, r in held], procs)
        for sig, (proc, _) in zip(sigs, held, strict=True):
            proc.send_signal(sig)
        for proc in procs:
            proc.communicate(timeout=120)
    finally:
        for p in procs:
            p.kill()
    client = mlflow.MlflowClient(store)
    for sig, (proc, ready) in zip(sigs, held, strict=True):
        assert proc.returncode == -sig  # the process still dies of the signal
        for run_id in ready.read_text().split():
            info = client.get_run(run_id).info
            assert (info.status, info.end_time is not None) == ("KILLED", True), sig.name


def test_the_run_of_a_sigkilled_process_is_ended_by_the_next_run_of_its_stage(store, tmp_path):
    import mlflow

    (dead, dead_ready), (live, live_ready) = _hold("task", tmp_path), _hold("task", tmp_path)
    try:
        _wait_for([dead_ready, live_ready], [dead, live])
        dead.kill()
        dead.wait(timeout=60)
        client = mlflow.MlflowClient(store)
        exp_id = client.get_experiment_by_name("held").experiment_id
        host, pid = tracking.host_id(), str(dead.pid)
        other_stage = client.create_run(exp_id, run_name="other", tags={"dltm.host": host, "dltm.pid": pid}).info
        other_host = client.create_run(exp_id, run_name="task", tags={"dltm.host": "elsewhere", "dltm.pid": pid}).info
        with Tracker("held", "task", tags={"dvc_stage.train": "train@task"}) as tr:
            pass
        status = {run_id: client.get_run(run_id).info.status for run_id in
                  [*dead_ready.read_text().split(), *live_ready.read_text().split(),
                   other_stage.run_id, other_host.run_id, tr.run_id]}
        dead_ids, live_ids = dead_ready.read_text().split(), live_ready.read_text().split()
        assert [status[i] for i in dead_ids] == ["KILLED", "KILLED"]  # the run and its child run
        assert [status[i] for i in live_ids] == ["RUNNING", "RUNNING"]  # a live process's run is never touched
        assert status[other_stage.run_id] == "RUNNING" and status[other_host.run_id] == "RUNNING"
        assert status[tr.run_id] == "FINISHED" and tr.failures == []
    finally:
        dead.kill()
        live.kill()


# -- 7. relative store URIs ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "expected"), [
    ("sqlite:///mlflow_rel.db", "sqlite:///{root}/mlflow_rel.db"),
    ("sqlite:///runs/m.db?timeout=20", "sqlite:///{root}/runs/m.db?timeout=20"),
    ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("file:mlruns_rel", "{root_uri}/mlruns_rel"),
    ("file:./mlruns_rel", "{root_uri}/mlruns_rel"),
    ("file:///abs/mlruns", "file:///abs/mlruns"),
    ("mlruns_rel", "{root}/mlruns_rel"),
    ("./mlruns_rel", "{root}/mlruns_rel"),
    ("/abs/mlruns", "/abs/mlruns"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("databricks", "databricks"),
    ("postgresql://u@host/db", "postgresql://u@host/db"),
])
def test_relative_local_store_uri_resolves_against_the_repository_root(tmp_path, monkeypatch, uri, expected):
    root = (tmp_path / "repo").resolve()
    temp_copy = root / ".dvc" / "tmp" / "exps" / "xyz"
    temp_copy.mkdir(parents=True)
    monkeypatch.chdir(temp_copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.tracking_uri() == expected.format(root=root, root_uri=root.as_uri())


def test_relative_sqlite_store_from_an_experiment_copy_lands_at_the_root(tmp_path, monkeypatch):
    import mlflow

    root = (tmp_path / "repo").resolve()
    temp_copy = root / ".dvc" / "tmp" / "exps" / "xyz"
    temp_copy.mkdir(parents=True)
    monkeypatch.chdir(temp_copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow_rel.db")
    with Tracker("ch99", "task") as tr:
        tr.log_text("hello", "note.txt")
    assert tr.failures == []
    assert (root / "mlflow_rel.db").is_file() and not (temp_copy / "mlflow_rel.db").exists()
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow_rel.db'}")
    assert client.get_experiment_by_name("ch99").artifact_location == (root / "mlruns").as_uri()
    assert [a.path for a in client.list_artifacts(tr.run_id)] == ["note.txt"]
    assert not (temp_copy / "mlruns").exists()
    assert resolve_store_uri("sqlite:///x.db", root="/r") == "sqlite:////r/x.db"
