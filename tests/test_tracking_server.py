"""The team setup and the UI: a real PostgreSQL-backed ``mlflow server`` with proxied artifacts that two stages log
to at once, ``make ui`` on the project's store, and what a stage prints when the server cannot be reached.

Everything listens on 127.0.0.1 on free ports; every wait is bounded; each test stops what it starts (by the
process ids it started). The PostgreSQL test skips, with the reason, where PostgreSQL's server binaries are absent
(``.ci/run`` installs them from the system packages).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MLFLOW = Path(sys.executable).parent / "mlflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of the processes a test starts; servers without MLflow's GenAI job workers (7 processes)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **extra}


def wait_until(ready: Callable[[], bool], what: str, procs: list[subprocess.Popen], logs: list[Path],
               timeout: float = 60) -> None:
    """Poll ``ready`` until it holds; fail (with the logs' tails) on the timeout or when a process exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        exited = [p for p in procs if p.poll() is not None]
        if exited or time.monotonic() > deadline:
            tails = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists())
            why = f"exited with {exited[0].returncode}" if exited else f"not ready after {timeout:.0f} s"
            pytest.fail(f"{what}: {why}\n{tails}")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, group: bool = False) -> None:
    """Stop a process we started (and its process group when it leads one); SIGKILL after 20 s."""
    if proc.poll() is None:
        (os.killpg if group else os.kill)(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    elif group:
        with contextlib.suppress(ProcessLookupError):  # the leader is gone; its children may not be
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def serving(cmd: list[str], port: int, cwd: Path, log: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> Iterator[str]:
    """Run ``cmd`` (an MLflow server on ``port``) in its own process group until /health answers; yield its URL."""
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env or child_env(), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: answers(f"{url}/health"), f"{' '.join(cmd[:3])} on {url}", [proc], [log], timeout)
        yield url
    finally:
        stop(proc, group=True)


# -- PostgreSQL --------------------------------------------------------------------------------------------------

def postgres_bin() -> Path | None:
    """The bin folder of the newest PostgreSQL server on this machine (Debian: /usr/lib/postgresql/<ver>/bin)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if found:
        return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_user() -> str | None:
    """Whom PostgreSQL runs as: it refuses root, so as root the system's ``postgres`` user, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")


@pytest.fixture
def postgres(tmp_path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port of 127.0.0.1 with a database ``mlflow``; yields its URI."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries (initdb, postgres) are not installed: apt-get install postgresql")
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install -e '.[postgres]'")
    user = postgres_user()
    # not under tmp_path: pytest's base folder is private to us, and as root the cluster belongs to 'postgres'
    base = Path(tempfile.mkdtemp(prefix="dltm-pg-"))
    data = base / "data"
    try:
        if user:
            shutil.chown(base, user)
        init = subprocess.run([bin_dir / "initdb", "-D", data, "-U", "mlflow", "--auth=trust", "--encoding=UTF8",
                               "--locale=C", "--no-sync", "--no-instructions"], cwd=base, user=user,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert init.returncode == 0, f"initdb failed: {init.stdout}{init.stderr}"
        port = free_port()
        log = tmp_path / "postgres.log"
        with open(log, "w") as out:
            proc = subprocess.Popen([bin_dir / "postgres", "-D", data, "-p", str(port), "-k", base,
                                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], cwd=base, user=user,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            def accepts() -> bool:
                try:
                    with psycopg.connect(f"postgresql://mlflow@127.0.0.1:{port}/postgres", connect_timeout=2,
                                         autocommit=True) as conn:
                        conn.execute("CREATE DATABASE mlflow")
                    return True
                except psycopg.OperationalError:
                    return False

            wait_until(accepts, f"postgres on 127.0.0.1:{port}", [proc], [log], timeout=30)
            yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
        finally:
            stop(proc, signal.SIGINT)  # PostgreSQL's fast shutdown
    finally:
        shutil.rmtree(base, ignore_errors=True)


STAGE = """
import json, sys, time
from pathlib import Path
import mlflow  # the slow import happens before the barrier
from dltm.tracking import Tracker
i, folder = int(sys.argv[1]), Path(sys.argv[2])
model = folder / f"model{i}.bin"
model.write_bytes(bytes(range(256)) * (i + 1))
(folder / f"ready{i}").touch()
deadline = time.monotonic() + 120
while not (folder / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.005)
with Tracker("ch07_text_cnn", f"stage{i}", tags={"dvc_stage.train": f"train@stage{i}"}) as tr:
    tr.log_params({"run": {"seed": i}, f"stage{i}": {"epochs": 20}})
    for step in range(1, 21):
        tr.log_metrics({"train_loss": 1.0 / (step + i), "train_accuracy": step / 20}, step=step)
    tr.log_text(f"summary of stage {i}\\n", "model_summary.txt")
    tr.log_artifact(model, "model")
print(json.dumps({"run_id": tr.run_id, "failures": tr.failures}))
"""


def test_two_stages_log_at_once_to_a_postgresql_backed_server_with_proxied_artifacts(postgres, tmp_path):
    """The team setup as the README gives it: `mlflow server --backend-store-uri postgresql://...
    --artifacts-destination ...`, users set MLFLOW_TRACKING_URI=http://...; runs land in PostgreSQL, artifacts in
    the server's destination, nothing in the checkout."""
    artifacts, checkout, server_dir = tmp_path / "artifacts", tmp_path / "checkout", tmp_path / "server"
    for d in (checkout / ".dvc", server_dir):
        d.mkdir(parents=True)
    port = free_port()
    cmd = [str(MLFLOW), "server", "--backend-store-uri", postgres, "--artifacts-destination", str(artifacts),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    # the stages start (and import MLflow) while the server starts; they wait at a barrier for both to be ready
    logs = [tmp_path / f"stage{i}.log" for i in range(2)]
    procs = []
    for i, log in enumerate(logs):
        with open(log, "w") as err:
            procs.append(subprocess.Popen([sys.executable, "-c", STAGE, str(i), str(checkout)], cwd=checkout,
                                          env=child_env(MLFLOW_TRACKING_URI=url), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=err, text=True))
    try:
        with serving(cmd, port, server_dir, tmp_path / "server.log", timeout=90):
            wait_until(lambda: all((checkout / f"ready{i}").exists() for i in range(2)), "the stages", procs, logs,
                       timeout=60)
            (checkout / "go").touch()  # the barrier: both create the experiment and log at once
            outs = [p.communicate(timeout=120)[0] for p in procs]
            results = [(out, log.read_text(), p.returncode) for out, log, p in zip(outs, logs, procs, strict=True)]
            _check_runs(url, results, artifacts, tmp_path)
    finally:
        for p in procs:
            stop(p)
    _check_store(postgres, checkout, server_dir)


def _check_runs(url: str, results: list[tuple[str, str, int]], artifacts: Path, tmp_path: Path) -> None:
    import mlflow

    run_ids = {}
    for i, (out, err, rc) in enumerate(results):
        assert rc == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result["failures"] == [], err[-3000:]
        run_ids[i] = result["run_id"]

    client = mlflow.MlflowClient(url)
    exp = client.get_experiment_by_name("ch07_text_cnn")
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # proxied: the server stores them
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert sorted(runs) == ["stage0", "stage1"]
    for i in range(2):
        run = runs[f"stage{i}"]
        assert run.info.run_id == run_ids[i] and run.info.status == "FINISHED"
        assert run.data.params == {"run.seed": str(i), f"stage{i}.epochs": "20"}
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + i)) for s in range(1, 21)]
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"model", "model_summary.txt"}
        # the files are in the server's destination, under the run, and come back through the server
        stored = list(artifacts.rglob(f"model{i}.bin"))
        assert len(stored) == 1 and run.info.run_id in stored[0].parts
        assert stored[0].read_bytes() == bytes(range(256)) * (i + 1)
        text = (stored[0].parent.parent / "model_summary.txt").read_text()
        assert text == f"summary of stage {i}\n"
        got = client.download_artifacts(run.info.run_id, "model_summary.txt", str(tmp_path / f"dl{i}"))
        assert Path(got).read_text() == text


def _check_store(postgres: str, checkout: Path, server_dir: Path) -> None:
    """The backend store is PostgreSQL itself; the checkout and the server's folder hold no store or artifacts."""
    import psycopg

    with psycopg.connect(postgres, connect_timeout=5) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM runs WHERE status = 'FINISHED'")}
    assert names == {"stage0", "stage1"}
    for folder in (checkout, server_dir):
        assert not {"mlruns", "mlartifacts", "mlflow.db"} & {p.name for p in folder.iterdir()}


# -- make ui -----------------------------------------------------------------------------------------------------

def make_ui(venv: Path, port: int | None = None) -> list[str]:
    """`make ui` with the Python environment ``venv``, whose installation make takes as done (-o)."""
    return ["make", "--no-print-directory", "-C", str(REPO), "-o", f"{venv}/.installed", f"VENV={venv}",
            *([f"UI_PORT={port}"] if port else []), "ui"]


FAKE_MLFLOW = """#!{python}
import json, sys
print(json.dumps(sys.argv[1:]))
"""


@pytest.mark.parametrize("uri, store, artifacts", [
    (None, "sqlite:///{root}/mlflow.db", "{root}/mlruns"),  # the default store
    ("sqlite:///runs/team.db", "sqlite:///{root}/runs/team.db", "{root}/runs/mlruns"),  # relative: to the root
    ("sqlite:////srv/ml/x.db", "sqlite:////srv/ml/x.db", "/srv/ml/mlruns"),
])
def test_make_ui_serves_the_store_the_stages_log_to(tmp_path, uri, store, artifacts):
    """What `make ui` runs: `mlflow server` on 127.0.0.1:5000 with the stages' store and its artifacts folder
    (a stand-in `mlflow` prints its arguments)."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "mlflow").write_text(FAKE_MLFLOW.format(python=sys.executable))
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    env = child_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    r = subprocess.run(make_ui(tmp_path / "venv"), env=env | ({"MLFLOW_TRACKING_URI": uri} if uri else {}),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    banner, hint, args = r.stdout.strip().splitlines()
    assert "Model training" in hint and "?workflowType=machine_learning" in hint  # MLflow 3's GenAI view otherwise
    root = str(REPO)
    assert banner.startswith(f"MLflow UI of {store.format(root=root)} ") and "http://127.0.0.1:5000" in banner
    assert json.loads(args) == ["server", "--host", "127.0.0.1", "--port", "5000", "--workers", "1",
                                "--backend-store-uri", store.format(root=root),
                                "--artifacts-destination", artifacts.format(root=root)]


def test_make_ui_points_at_the_server_when_the_store_is_one(tmp_path):
    r = subprocess.run(make_ui(Path(sys.prefix)), env=child_env(MLFLOW_TRACKING_URI="http://10.1.2.3:5000"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "MLFLOW_TRACKING_URI is a tracking server: its UI is " \
                                                      "http://10.1.2.3:5000", r.stdout + r.stderr


def test_make_ui_answers_with_the_runs_and_artifacts_of_the_store(tmp_path, monkeypatch):
    import mlflow

    from dltm.tracking import Tracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with Tracker("ch07_text_cnn", "ch07_cnn1d") as tr:
        tr.log_params({"run": {"seed": 1}})
        tr.log_text("summary\n", "model_summary.txt")
    assert tr.failures == []
    port = free_port()
    with serving(make_ui(Path(sys.prefix), port), port, tmp_path, tmp_path / "ui.log", env=child_env()) as url:
        exp = json.loads(get(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=ch07_text_cnn"))
        run = json.loads(get(f"{url}/api/2.0/mlflow/runs/get?run_id={tr.run_id}"))["run"]
        assert run["info"]["experiment_id"] == exp["experiment"]["experiment_id"]
        assert run["data"]["params"] == [{"key": "run.seed", "value": "1"}]
        # the artifact the stage logged, as the UI fetches it
        assert get(f"{url}/get-artifact?path=model_summary.txt&run_uuid={tr.run_id}") == b"summary\n"
        # an experiment made in the UI keeps its artifacts beside the store too
        client = mlflow.MlflowClient(url)
        run_id = client.create_run(client.create_experiment("made_in_the_ui")).info.run_id
        client.log_text(run_id, "from the ui\n", "note.txt")
        assert [p.read_text() for p in (tmp_path / "mlruns").rglob("note.txt")] == ["from the ui\n"]
    assert (tmp_path / "ui.log").read_text().startswith(f"MLflow UI of sqlite:///{tmp_path / 'mlflow.db'} ")


# -- an unreachable server ---------------------------------------------------------------------------------------

def test_a_stage_that_cannot_reach_the_server_says_so_in_one_short_line(tmp_path):
    """ch07_simple_classifier trains 50 epochs; all that MLflow did not get is said once, in one short line."""
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    port = free_port()  # nothing listens there
    r = subprocess.run([sys.executable, "-m", "stages.train", "ch07_simple_classifier"], cwd=tmp_path,
                       env=child_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}"), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "models" / "ch07_simple_classifier" / "model.keras").is_file()
    said = [line for line in r.stderr.splitlines() if "MLflow" in line or "Tracker" in line]
    assert len(said) == 1, "\n".join(said)
    assert f"127.0.0.1:{port}" in said[0] and "ch07_simple_classifier" in said[0] and len(said[0]) <= 300, said[0]
