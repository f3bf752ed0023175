"""MLflow tracking that never costs a result.

One MLflow run per task, in an experiment named after the book chapter's module (``ch07_text_cnn``). The
``train`` stage opens it, the ``evaluate`` stage reopens it by id (saved in ``models/<task>/run.json``).

The store defaults to SQLite at the repository root, as an absolute URI, so runs of ``dvc exp run --temp``
or queued experiments (which run in a copy under ``.dvc/tmp/exps/``) land in the same ``mlflow.db``, with
their artifacts in ``<root>/mlruns/``. ``MLFLOW_TRACKING_URI`` overrides it; a relative local store in it
(``sqlite:///runs.db``, ``file:mlruns``, ``mlruns``) is taken relative to the repository root by the same rule,
and a local SQLite store keeps its artifacts in ``mlruns/`` beside the database file.

DVC's files are the source of truth: stages write them first, and every MLflow call here is guarded, so an
unreachable server or a full disk ends in one warning that says what was not logged, never in a lost training
result. What MLflow would refuse is made acceptable before it is sent (keys, value lengths), a call that fails
costs only itself (a refused batch is retried item by item), a local store is created under a lock (parallel
stages on a fresh ``mlflow.db``), and a run whose process is killed does not stay ``RUNNING``: SIGTERM, SIGINT
and SIGHUP end it as ``KILLED`` before the process dies as it would have, and after a SIGKILL the next run of
the same stage on the same host ends it (its process is gone).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import numbers
import os
import re
import signal
import socket
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from dltm.cli import OneLineWarning

log = logging.getLogger("dltm.tracking")
_EXP_MARKER = (".dvc", "tmp", "exps")

# MLflow's rules (mlflow/utils/validation.py): a param, metric or tag key holds only these characters (no colon
# on Windows), is no path that normalises to another, and has at most 250 characters; values at most 6000
# (params) and 8000 (tags) characters; a batch at most 100 params or tags and 1000 metrics.
_KEY_BAD_CHAR = re.compile(r"[^/\w.\- ]" if os.name == "nt" else r"[^/\w.\- :]")
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
_BATCH = {"params": 100, "tags": 100, "metrics": 1000}
HOST_TAG, PID_TAG = "dltm.host", "dltm.pid"
STORE_LOCK_TIMEOUT_S = 120


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root, seen through DVC's temporary experiment copies."""
    path = Path(start or os.getcwd()).resolve()
    parts = path.parts
    for i in range(len(parts) - len(_EXP_MARKER) + 1):
        if parts[i : i + len(_EXP_MARKER)] == _EXP_MARKER:
            return Path(*parts[:i])
    for p in (path, *path.parents):
        if (p / ".dvc").is_dir() or (p / ".git").exists():
            return p
    return path


def default_tracking_uri() -> str:
    return f"sqlite:///{repo_root() / 'mlflow.db'}"


def resolve_store_uri(uri: str, root: str | os.PathLike | None = None) -> str:
    """``uri`` with a relative local store made absolute against ``root`` (default: :func:`repo_root`).

    Relative means ``sqlite:///runs.db`` (SQLAlchemy's three slashes; ``sqlite:////abs/runs.db`` is absolute),
    ``file:mlruns`` or a plain path such as ``mlruns``. Inside ``dvc exp run --temp`` the working directory is a
    copy that DVC deletes, so a store taken relative to it would vanish with it. Servers, in-memory SQLite and
    absolute paths are returned unchanged.
    """
    root = Path(root) if root is not None else repo_root()
    if m := re.match(r"(sqlite(?:\+\w+)?):///(.*)$", uri, re.DOTALL):
        path, q, query = m.group(2).partition("?")
        if path and path != ":memory:" and not path.startswith("file:") and not Path(path).is_absolute():
            return f"{m.group(1)}:///{root / path}{q}{query}"
        return uri
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
        if not parsed.netloc and path and not Path(path).is_absolute():
            return (root / path).as_uri()
        return uri
    if not parsed.scheme and uri not in ("databricks", "databricks-uc", "uc") and not Path(uri).is_absolute():
        return str(root / uri)
    return uri


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` (a relative local store resolved by :func:`resolve_store_uri`), else the default."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return resolve_store_uri(uri) if uri else default_tracking_uri()


def local_store_path(uri: str) -> Path | None:
    """The SQLite file or file-store folder of an absolute local store URI; None for any other store."""
    if m := re.match(r"sqlite(?:\+\w+)?:///(/[^?]*)", uri):
        return Path(m.group(1))
    parsed = urlparse(uri)
    if parsed.scheme == "file" and not parsed.netloc:
        return Path(unquote(parsed.path))
    if not parsed.scheme and Path(uri).is_absolute():
        return Path(uri)
    return None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def mlflow_key(key: Any) -> str:
    """``key`` as a param, metric or tag key that MLflow accepts, as close to the original as it can be.

    Characters MLflow refuses become ``_`` (``dataset_sha256.reviews (2024).csv`` ->
    ``dataset_sha256.reviews _2024_.csv``); empty, ``.`` and ``..`` path segments become ``_`` (MLflow refuses a
    key that normalises to another path: ``a//b``, ``./a``, ``a/``, ``/a``, ``..a``); a key over 250 characters
    is cut and ends in ``-`` and a hash of the whole key, so two long keys stay apart.
    """
    text = str(key)
    safe = "/".join("_" if seg in ("", ".", "..") else seg for seg in _KEY_BAD_CHAR.sub("_", text).split("/"))
    if safe.startswith(".."):
        safe = "_" + safe
    if len(safe) > MAX_KEY_LENGTH:
        safe = f"{safe[: MAX_KEY_LENGTH - 9]}-{_short_hash(text)}"
    return safe


def _is_metric_value(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def host_id() -> str:
    """This host as the ``dltm.host`` tag names it: the host name, and the PID namespace where there is one.

    Two processes with the same host id see each other's pids (a container with the host's name does not).
    """
    try:
        return f"{socket.gethostname()} {os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this host (a zombie does not); True when that cannot be known."""
    if os.name == "nt" or pid <= 0:  # os.kill(pid, 0) would signal a Windows process; never guess there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@contextlib.contextmanager
def _store_lock(uri: str):
    """Hold a file lock beside a local store (``mlflow.db.lock``) while it is created or migrated.

    MLflow creates the tables of a new SQLite store, and migrates an old one, in whichever process opens it
    first; two processes doing it at once fail (``table ... already exists``). Servers need no lock.
    Raises ``filelock.Timeout`` after ``STORE_LOCK_TIMEOUT_S`` seconds, and OSError if the folder is missing.
    """
    path = local_store_path(uri)
    if path is None:
        yield
        return
    import filelock

    with filelock.FileLock(f"{path}.lock", timeout=STORE_LOCK_TIMEOUT_S):
        yield


# -- signals ----------------------------------------------------------------------------------------------------
# Open trackers, outermost first, and the signal handlers that were in place before the first of them opened.
_open: list[Tracker] = []
_previous_handlers: dict[int, Any] = {}
_signalled: list[int] = []
_SIGNALS = [getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n)]


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _SIGNALS:
        if sig in _previous_handlers:
            continue
        previous = signal.getsignal(sig)
        if previous in (signal.SIG_IGN, None):  # ignored (nohup), or set outside Python: leave it alone
            continue
        signal.signal(sig, _on_signal)
        _previous_handlers[sig] = previous


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, previous in list(_previous_handlers.items()):
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, previous)
        del _previous_handlers[sig]


def _on_signal(signum: int, frame) -> None:
    """End the open runs as KILLED, then do what the signal did before (die of it, or Python's own handler)."""
    _signalled.append(signum)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        # e.g. SIGINT's KeyboardInterrupt: the exception passes through each Tracker.__exit__, which ends its run
        # as KILLED; a handler that returns lets the stage go on
        previous(signum, frame)
        return
    for tracker in reversed(_open):
        tracker._terminate("KILLED")
    _restore_signal_handlers()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


class Tracker:
    """An MLflow run whose calls cannot fail the stage.

    >>> with Tracker("ch07_text_cnn", "ch07_kim_cnn", tags={"seed": "1"}) as tr:
    ...     tr.log_params({"ch07_kim_cnn": {"filter_nums": 10}})

    No method raises: what MLflow refuses or cannot store is collected in ``failures`` and reported in one warning
    when the run ends. Keys are sent as :func:`mlflow_key` makes them, values cut to MLflow's lengths.
    The run is tagged with the host and pid that log it (``dltm.host``, ``dltm.pid``).
    """

    def __init__(self, experiment: str, run_name: str, run_id: str | None = None,
                 tags: dict[str, str] | None = None, parent: Tracker | None = None,
                 description: str | None = None, system_metrics: bool = False):
        """``parent``: open this run as a child of the parent's (open) run, e.g. one per repeat or fold.
        ``description``: the experiment's description (set once, when the experiment has none).
        ``system_metrics``: sample CPU, memory (and GPU, where pynvml finds one) every
        :data:`SYSTEM_METRICS_INTERVAL` seconds while the run is open."""
        self.parent = parent
        self.description = description
        self.system_metrics = system_metrics
        self.experiment = experiment
        self.run_name = run_name
        self.requested_run_id = run_id
        self.tags = tags or {}
        self.run_id: str | None = None
        self.failures: list[str] = []
        self._mlflow = None
        self._client = None
        self._keys: dict[str, dict[str, str]] = {"params": {}, "metrics": {}, "tags": {}}  # sent key -> original

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Tracker:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        uri = tracking_uri()
        try:
            import mlflow

            logging.getLogger("alembic").setLevel(logging.WARNING)
            with _store_lock(uri):  # the first MlflowClient call creates (or migrates) a local store
                client = mlflow.MlflowClient(uri)
                experiment_id = self._experiment_id(client, uri)
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment(experiment_id=experiment_id)
            self._describe_experiment(client, experiment_id)
            run = None
            nested = self.parent is not None
            if nested and not self.parent.active:
                raise RuntimeError(f"the parent run of {self.run_name} is not open")
            if self.requested_run_id:
                try:
                    run = mlflow.start_run(run_id=self.requested_run_id, nested=nested)
                except Exception as e:  # the run was logged to another store, or deleted
                    self._fail(f"reopening run {self.requested_run_id} ({e}); starting a new run")
            if run is None:
                run = mlflow.start_run(run_name=self.run_name, nested=nested,
                                       parent_run_id=self.parent.run_id if nested else None,
                                       log_system_metrics=self._start_system_metrics(mlflow))
            self.run_id = run.info.run_id
            self._mlflow, self._client = mlflow, client
        except Exception as e:
            self._mlflow = self._client = None
            self._fail(f"connecting to the tracking store {uri} ({type(e).__name__}: {e})")
            return self
        _open.append(self)
        _install_signal_handlers()
        self.set_tags({**self.tags, HOST_TAG: host_id(), PID_TAG: str(os.getpid())})
        self._end_runs_of_dead_processes(experiment_id)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._mlflow is not None:
            if exc_type is None:
                status = "FINISHED"
            elif issubclass(exc_type, KeyboardInterrupt) or _signalled:
                status = "KILLED"
            else:
                status = "FAILED"
            self._terminate(status)
        if self in _open:
            _open.remove(self)
        if not _open:
            _restore_signal_handlers()
            _signalled.clear()
        if self.failures:
            warnings.warn(TrackingWarning(self._failure_summary()), stacklevel=2)  # one short line, once

    def _terminate(self, status: str) -> None:
        """End the run with ``status``; the fluent API's run stack too when this run is on top of it."""
        mlflow, self._mlflow = self._mlflow, None
        if mlflow is None:
            return
        try:
            active = mlflow.active_run()
            if active is not None and active.info.run_id == self.run_id:
                mlflow.end_run(status=status)
            else:
                self._client.set_terminated(self.run_id, status)
        except Exception as e:
            self._fail(f"ending the run as {status} ({type(e).__name__}: {e})")

    def _failure_summary(self, limit: int = 4) -> str:
        """One short line on what MLflow did not get: the store that did not answer and why, or the first
        ``limit`` kinds of lost items (artifacts by file name, repeats counted) and how many more."""
        uri = tracking_uri()
        if self.run_id is None:
            reason = _short_reason(self.failures[0])
            return (f"MLflow: nothing was logged for {self.run_name} (the DVC outputs are complete): {uri} did not "
                    f"answer ({reason})")
        counts = Counter(_short_failure(f) for f in self.failures)
        items = [f if n == 1 else f"{f} (x{n})" for f, n in counts.items()]
        more = f" and {len(items) - limit} more" if len(items) > limit else ""
        return (f"MLflow: not everything was logged for {self.run_name} (the DVC outputs are complete): "
                + "; ".join(items[:limit]) + more)

    def _describe_experiment(self, client, experiment_id: str) -> None:
        """Open the experiment in MLflow 3's model-training view (not the GenAI one) and give it a description,
        unless the experiment already has them (a user's own edits in the UI win)."""
        tags = client.get_experiment(experiment_id).tags
        wanted = {EXPERIMENT_KIND_TAG: "custom_model_development", NOTE_TAG: self.description}
        for key, value in wanted.items():
            if value and key not in tags:
                try:
                    client.set_experiment_tag(experiment_id, key, value)
                except Exception:  # two stages starting at once: a PostgreSQL store refuses the second insert
                    if key not in client.get_experiment(experiment_id).tags:
                        raise

    def _start_system_metrics(self, mlflow) -> bool:
        """Whether to sample system metrics for the run about to start (psutil needed), at an interval that
        short runs still sample."""
        if not self.system_metrics:
            return False
        try:
            import psutil  # noqa: F401

            logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # its start/stop INFO lines
            mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL)
            mlflow.set_system_metrics_samples_before_logging(1)
        except Exception as e:  # no psutil: the run goes on without them
            self._fail(f"system metrics ({type(e).__name__}: {e})")
            return False
        return True

    def log_dataset(self, name: str, digest: str, source: str | None, context: str = "training") -> None:
        """Record a dataset the run reads as an MLflow dataset input: its registry id, a digest (the start of
        its sha256) and where it comes from (the canonical URL, or the file)."""
        if self._mlflow is None:
            self._fail(f"dataset {name}")
            return

        def log() -> None:
            from mlflow.data.http_dataset_source import HTTPDatasetSource
            from mlflow.data.meta_dataset import MetaDataset

            if source and source.startswith(("http://", "https://")):
                src = HTTPDatasetSource(url=source)
            else:
                from mlflow.data.filesystem_dataset_source import FileSystemDatasetSource

                src = FileSystemDatasetSource(uri=source or name)
            self._mlflow.log_input(MetaDataset(source=src, name=name, digest=digest[:36]), context=context)

        self._call(f"dataset {name}", log)

    def _experiment_id(self, client, uri: str) -> str:
        """The id of the experiment, created if missing (artifacts beside a local SQLite store).

        Raises MlflowException when the store refuses, and RuntimeError for a deleted experiment.
        """
        exp = client.get_experiment_by_name(self.experiment)
        if exp is None:
            db = local_store_path(uri) if uri.startswith("sqlite") else None
            # pin artifacts beside the database: MLflow's default, ./mlruns, would land in the working directory,
            # which under `dvc exp run --temp` is a copy DVC deletes afterwards. A database URI without a server
            # (postgresql://...) gets the repository's mlruns/ for the same reason (README: use a server instead);
            # a server (http://) decides itself (proxied artifacts)
            if db is not None:
                location = (db.parent / "mlruns").as_uri()
            elif uri.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "mssql"):
                location = (repo_root() / "mlruns").as_uri()
            else:
                location = None
            try:
                return client.create_experiment(self.experiment, artifact_location=location)
            except Exception:  # another process made it first (a server store has no lock)
                exp = client.get_experiment_by_name(self.experiment)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            raise RuntimeError(f"experiment {self.experiment} is deleted (restore it: mlflow experiments restore)")
        return exp.experiment_id

    def _end_runs_of_dead_processes(self, experiment_id: str) -> None:
        """Mark KILLED the RUNNING runs of this run's name or DVC stage whose process on this host is gone.

        A process killed by SIGKILL cannot end its run; the next run of the same stage does it. A run of a live
        process (two experiments may run the same stage at once) or of another host is never touched.
        """
        stages = {(k, v) for k, v in self.tags.items() if str(k).startswith("dvc_stage.")}
        host = host_id()
        try:
            runs = self._client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
        except Exception as e:
            self._fail(f"looking for runs of killed processes ({type(e).__name__}: {e})")
            return
        dead = {}
        for r in runs:
            tags = r.data.tags
            if r.info.run_id == self.run_id or tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
                continue
            if not _pid_alive(int(tags[PID_TAG])):
                dead[r.info.run_id] = r
        ours = {i for i, r in dead.items()
                if r.info.run_name == self.run_name or stages & set(r.data.tags.items())}
        ours |= {i for i, r in dead.items() if r.data.tags.get("mlflow.parentRunId") in ours}  # their children
        for run_id in sorted(ours):
            try:
                self._client.set_terminated(run_id, "KILLED")
                log.info("MLflow run %s: its process is gone; marked KILLED", run_id)
            except Exception as e:
                self._fail(f"marking run {run_id} KILLED ({type(e).__name__}: {e})")

    @property
    def active(self) -> bool:
        return self._mlflow is not None

    def _fail(self, what: str) -> None:
        self.failures.append(what)

    def _call(self, what: str, fn, *args, **kwargs) -> None:
        if self._mlflow is None:
            self._fail(what)
            return
        try:
            fn(*args, **kwargs)
        except Exception as e:
            self._fail(f"{what} ({type(e).__name__}: {e})")

    # -- logging --------------------------------------------------------------------------------------

    def _safe_keys(self, kind: str, items: dict[str, Any]) -> dict[str, Any]:
        """``items`` under keys MLflow accepts; two keys that would become one stay apart (hash suffix)."""
        sent = self._keys[kind]
        out = {}
        for key, value in items.items():
            safe = mlflow_key(key)
            if sent.get(safe, key) != key:
                safe = mlflow_key(f"{safe}-{_short_hash(str(key))}")
            sent[safe] = key
            out[safe] = value
        return out

    def _log(self, kind: str, entities: list, what: str) -> None:
        """Send ``entities`` (Param, Metric or RunTag) in batches; a refused batch is retried one by one."""
        size = _BATCH[kind]
        for start in range(0, len(entities), size):
            batch = entities[start : start + size]
            try:
                self._client.log_batch(self.run_id, **{kind: batch})
                continue
            except Exception as e:
                if len(batch) == 1:
                    self._fail(f"{what} {batch[0].key} ({type(e).__name__}: {e})")
                    continue
            for i, entity in enumerate(batch):
                try:
                    self._client.log_batch(self.run_id, **{kind: [entity]})
                except Exception as e:
                    self._fail(f"{what} {entity.key} ({type(e).__name__}: {e})")
                    if not _refused(e):  # the store is down, not this item: do not try the rest one by one
                        rest = [x.key for x in batch[i + 1 :]]
                        if rest:
                            self._fail(f"{what} {', '.join(rest)} (not tried after that)")
                        break

    def log_params(self, params: dict[str, Any]) -> None:
        """Log params (nested dicts flattened to ``a.b``); values over 6000 characters are cut.

        A param already logged with the same value (a reopened run) is skipped; a new value for it is refused
        by MLflow (params are immutable) and reported.
        """
        if self._mlflow is None:
            self._fail("params")
            return
        from mlflow.entities import Param

        flat = self._safe_keys("params", flatten(params))
        flat = {k: param_text(v)[:MAX_PARAM_VALUE_LENGTH] for k, v in flat.items()}
        try:  # skip params already logged with the same value
            existing = self._client.get_run(self.run_id).data.params
        except Exception:
            existing = {}
        self._log("params", [Param(k, v) for k, v in flat.items() if existing.get(k) != v], "param")

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log the numeric values of ``metrics`` (nested dicts flattened); other values are ignored."""
        what = "metric" if step is None else f"metric (step {step})"
        if self._mlflow is None:
            self._fail("metrics")
            return
        from mlflow.entities import Metric

        numeric = self._safe_keys("metrics", {k: v for k, v in flatten(metrics).items() if _is_metric_value(v)})
        now = int(time.time() * 1000)
        self._log("metrics", [Metric(k, float(v), now, int(step or 0)) for k, v in numeric.items()], what)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set tags (values as strings, cut to 8000 characters)."""
        if self._mlflow is None:
            self._fail("tags")
            return
        from mlflow.entities import RunTag

        safe = self._safe_keys("tags", tags)
        self._log("tags", [RunTag(k, str(v)[:MAX_TAG_VALUE_LENGTH]) for k, v in safe.items()], "tag")

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        if self._mlflow is None:
            self._fail(f"artifact {path}")
            return
        self._call(f"artifact {path}", self._client.log_artifact, self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        if self._mlflow is None:
            self._fail(f"text {artifact_file}")
            return
        self._call(f"text {artifact_file}", self._client.log_text, self.run_id, text, artifact_file)


def _refused(e: Exception) -> bool:
    """Whether the store refused what was sent (an invalid value), rather than failing to answer."""
    return getattr(e, "error_code", None) in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS")


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
NOTE_TAG = "mlflow.note.content"
SYSTEM_METRICS_INTERVAL = 2.0
"""Seconds between samples of CPU, memory and GPU use; MLflow's default of 10 s misses short runs."""
SPLITS = ("train_", "val_", "test_")
NO_SPLIT = ("learning_rate", "lr", "epoch_seconds")
"""Per-epoch values that are no measurement on a split: kept as they are."""


def curve_name(key: str, held_out: str = "test") -> str:
    """The project's name for a Keras per-epoch log key: ``train_<m>`` for the training split, ``val_<m>`` for a
    validation split held out of the training data, ``test_<m>`` for the test split watched each epoch.

    Keras calls whatever ``validation_data`` it was given ``val_*``; ``held_out`` says what that was
    (``"val"`` or ``"test"``). Keys that already name their split are kept.

    >>> curve_name("loss"), curve_name("val_accuracy"), curve_name("val_loss", "val"), curve_name("test_ce")
    ('train_loss', 'test_accuracy', 'val_loss', 'test_ce')
    """
    if key in NO_SPLIT:
        return key
    if key.startswith(SPLITS):
        return key if not key.startswith("val_") else f"{held_out}_{key[4:]}"
    return f"train_{key}"


def curve_names(history: dict[str, list[float]], held_out: str = "test") -> dict[str, list[float]]:
    """A Keras ``History.history`` with the keys of :func:`curve_name`."""
    return {curve_name(k, held_out): v for k, v in history.items()}


class TrackingWarning(OneLineWarning):
    """What MLflow did not get; printed as one line, ``warning: MLflow: ...`` (never with a source line)."""


def _short_reason(failure: str) -> str:
    """'Connection refused' out of a requests/urllib3 error text, else the exception's name."""
    m = re.search(r"\[Errno -?\d+\] ([^\"')\]]+)", failure)
    if m:
        return m.group(1).strip()
    m = re.search(r"\((\w+(?:Error|Exception))", failure)
    return m.group(1) if m else failure[:80]


def _short_failure(failure: str, width: int = 90) -> str:
    """A lost item in a few words: file paths by their names, long error texts cut."""
    text = re.sub(r"(?:[\w.+-]*/)+([\w.+-]+)", r"\1", failure)
    return text if len(text) <= width else text[: width - 1] + "…"


def param_text(value: Any) -> str:
    """A param as params.yaml writes it (YAML): ``null``, ``true``/``false``, ``[3, 4, 5]``, ``0.001``.

    >>> [param_text(v) for v in (None, False, [3, 4, 5], ["a", "b"], 0.001, "adam")]
    ['null', 'false', '[3, 4, 5]', '["a", "b"]', '0.001', 'adam']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


def epoch_logger(tracker: Tracker, held_out: str = "test", epochs: int | None = None, echo: bool = True):
    """A Keras callback that logs each epoch to the run as metrics named by :func:`curve_name`, at step = the
    epoch counted from 1 (as ``history.csv``), and prints one line per epoch when ``echo`` (fit with
    ``verbose=0``): ``epoch 3/10  train_loss 0.4123  train_accuracy 0.8120  test_loss 0.5011 ... (2.1 s)``."""
    import time

    import keras

    class _EpochLogger(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            named = {curve_name(k, held_out): v for k, v in (logs or {}).items()}
            tracker.log_metrics(named, step=epoch + 1)
            if echo:
                values = "  ".join(f"{k} {float(v):.4f}" for k, v in named.items()
                                   if isinstance(v, (int, float)) or hasattr(v, "__float__"))
                of = f"/{epochs}" if epochs else ""
                print(f"epoch {epoch + 1}{of}  {values}  ({time.perf_counter() - self.start:.1f} s)", flush=True)

    return _EpochLogger()
