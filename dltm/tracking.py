"""MLflow tracking that never costs a result.

One MLflow run per task, in an experiment named after the book chapter's module (``ch07_text_cnn``). The
``train`` stage opens it, the ``evaluate`` stage reopens it by id (saved in ``models/<task>/run.json``).

The store defaults to SQLite at the repository root, as an absolute URI, so runs of ``dvc exp run --temp``
or queued experiments (which run in a copy under ``.dvc/tmp/exps/``) land in the same ``mlflow.db``, with
their artifacts in ``<root>/mlruns/``.
``MLFLOW_TRACKING_URI`` overrides it. DVC's files are the source of truth: stages write them first, and
every MLflow call here is guarded, so an unreachable server or a full disk ends in a warning that says
what was not logged, never in a lost training result.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger("dltm.tracking")
_EXP_MARKER = (".dvc", "tmp", "exps")


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


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Tracker:
    """An MLflow run whose calls cannot fail the stage.

    >>> with Tracker("ch07_text_cnn", "ch07_kim_cnn", tags={"seed": "1"}) as tr:
    ...     tr.log_params({"ch07_kim_cnn": {"filter_nums": 10}})
    """

    def __init__(self, experiment: str, run_name: str, run_id: str | None = None,
                 tags: dict[str, str] | None = None, parent: Tracker | None = None):
        """``parent``: open this run as a child of the parent's (open) run, e.g. one per repeat or fold."""
        self.parent = parent
        self.experiment = experiment
        self.run_name = run_name
        self.requested_run_id = run_id
        self.tags = tags or {}
        self.run_id: str | None = None
        self.failures: list[str] = []
        self._mlflow = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Tracker:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        uri = tracking_uri()
        try:
            import mlflow

            logging.getLogger("alembic").setLevel(logging.WARNING)
            mlflow.set_tracking_uri(uri)
            client = mlflow.MlflowClient(uri)
            if uri == default_tracking_uri() and client.get_experiment_by_name(self.experiment) is None:
                # pin artifacts to <root>/mlruns: a first run inside a `dvc exp --temp` copy must not put them in
                # a folder DVC deletes afterwards
                client.create_experiment(self.experiment, artifact_location=(repo_root() / "mlruns").as_uri())
            mlflow.set_experiment(self.experiment)
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
                                       parent_run_id=self.parent.run_id if nested else None)
            self.run_id = run.info.run_id
            self._mlflow = mlflow
            mlflow.set_tags(self.tags)
        except Exception as e:
            self._mlflow = None
            self._fail(f"connecting to the tracking store {uri} ({type(e).__name__}: {e})")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._mlflow is not None:
            try:
                self._mlflow.end_run(status="FAILED" if exc_type else "FINISHED")
            except Exception as e:
                self._fail(f"ending the run ({e})")
        if self.failures:
            msg = (f"MLflow: not everything was logged for {self.run_name} "
                   f"(the DVC outputs are complete): " + "; ".join(self.failures))
            warnings.warn(msg, stacklevel=2)
            log.warning(msg)

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

    def log_params(self, params: dict[str, Any]) -> None:
        flat = {k: (str(v)[:6000] if v is not None else "None") for k, v in flatten(params).items()}
        if self._mlflow is None:
            self._fail("params")
            return
        # reopening a run with a param of the same value is fine; skip params already logged (immutable)
        try:
            existing = self._mlflow.get_run(self.run_id).data.params
        except Exception:
            existing = {}
        new = {k: v for k, v in flat.items() if k not in existing}
        self._call("params", self._mlflow.log_params, new)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        numeric = {k: float(v) for k, v in flatten(metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._mlflow is None:
            self._fail(f"metrics{'' if step is None else f' (step {step})'}")
            return
        self._call(f"metrics{'' if step is None else f' (step {step})'}", self._mlflow.log_metrics, numeric,
                   step=step)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        if self._mlflow is None:
            self._fail(f"artifact {path}")
            return
        self._call(f"artifact {path}", self._mlflow.log_artifact, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        if self._mlflow is None:
            self._fail(f"text {artifact_file}")
            return
        self._call(f"text {artifact_file}", self._mlflow.log_text, text, artifact_file)

    def set_tags(self, tags: dict[str, str]) -> None:
        if self._mlflow is None:
            self._fail("tags")
            return
        self._call("tags", self._mlflow.set_tags, tags)


def epoch_logger(tracker: Tracker):
    """A Keras callback that sends each epoch's logs to the run as step-indexed metrics."""
    import keras

    class _EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            tracker.log_metrics(dict(logs or {}), step=epoch)

    return _EpochLogger()
