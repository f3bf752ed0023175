"""DVC stage ``train@<task>``: train one task with its ``params.yaml`` section and the ``run`` settings.

Writes ``models/<task>/`` (the ``.keras`` model, its tokenizer, ``run.json``) and ``plots/<task>/history.*``,
and opens the task's MLflow run (experiment = the chapter module).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict

from dltm import datasets, runtime, tasks
from dltm import params as P
from dltm.io import write_json
from dltm.tracking import Tracker, tracking_uri


def provenance_tags(task: tasks.Task, run: P.RunSettings, stage: str) -> dict[str, str]:
    git = runtime.git_info()
    tags = {
        "task": task.id, "book_section": task.section, f"dvc_stage.{stage}": f"{stage}@{task.id}",
        "git_commit": git["commit"], "git_dirty": git["dirty"], "seed": str(run.seed),
        "machine": runtime.machine_summary(),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    if task.dataset:
        tags["dataset"] = task.dataset
        for name, sha in datasets.checksums(task.dataset).items():
            tags[f"dataset_sha256.{name}"] = sha
    return tags


def task_from_argv(argv: list[str] | None, doc: str) -> tuple[tasks.Task, P.RunSettings, dict]:
    """Parse ``<task id>`` and read its params section and the run settings."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("task", help="a task id of TASKS.md, e.g. ch07_kim_cnn")
    args = ap.parse_args(argv)
    params = P.load()
    task = tasks.get(args.task)
    return task, P.RunSettings.from_params(params), P.section(params, task.id)


def main(argv: list[str] | None = None) -> int:
    task, run, task_params = task_from_argv(argv, __doc__)
    with Tracker(task.experiment, task.id, tags=provenance_tags(task, run, "train")) as tracker:
        tracker.log_params({"run": asdict(run), task.id: task_params})
        ctx = tasks.Context(task, task_params, run, tracker)
        info = task.train(ctx)
        write_json(ctx.model_dir / "run.json", {
            "task": task.id,
            "mlflow_run_id": tracker.run_id,
            "mlflow_tracking_uri": tracking_uri() if tracker.active else None,
            "seed": run.seed,
            "caps": {"max_train_examples": run.max_train_examples, "max_eval_examples": run.max_eval_examples,
                     "max_epochs": run.max_epochs},
            "mixed_precision": run.mixed_precision,
            "distribution": run.distribution,
            "machine": runtime.machine(),
            "git_commit": runtime.git_info()["commit"],
            **info,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
