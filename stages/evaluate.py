"""DVC stage ``evaluate@<task>``: score the trained model on the task's test split.

Writes ``metrics/<task>.json`` and ``plots/<task>/eval/`` (the confusion matrix, or the task's own outputs) and
adds them to the same MLflow run that ``train@<task>`` opened. Refuses (one line, exit status 2) a model folder
whose sub-models do not all carry its run.json's training run id, and metrics that are NaN or infinite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dltm import cli, tasks
from dltm.io import read_json
from dltm.tracking import Tracker
from dltm.training import RUN_FILE, check_training_run
from stages.train import provenance_tags, run_name, task_from_argv


def main(argv: list[str] | None = None) -> int:
    task, run, task_params, variant = task_from_argv(argv, __doc__)
    name = run_name(task, variant)
    model_dir = Path(task.outputs) / name
    # before the MLflow run is touched: models from one training run, or a one-line error
    check_training_run(model_dir, f"run `dvc repro {tasks.dvc_stage(task.id, variant)}` first")
    run_info = read_json(model_dir / RUN_FILE)
    stage = "evaluate_embedding" if task.outputs != "models" else "evaluate"
    with Tracker(task.experiment, name, run_id=run_info.get("mlflow_run_id"),
                 tags=provenance_tags(task, run, stage, variant)) as tracker:
        ctx = tasks.Context(task, task_params, run, tracker, variant=variant)
        metrics = task.evaluate(ctx)
        if task.outputs == "models":  # the run's model as a version of the registered model <task>[-<variant>]
            from dltm.mlflow_models import register

            register(tracker, name, task.metric, metrics)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
