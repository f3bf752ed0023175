"""DVC stage ``evaluate@<task>``: score the trained model on the task's test split.

Writes ``metrics/<task>.json`` and ``plots/<task>/eval/`` (the confusion matrix, or the task's own outputs) and
adds them to the same MLflow run that ``train@<task>`` opened.
"""

from __future__ import annotations

import json
import sys

from dltm import cli, tasks
from dltm.io import read_json
from dltm.tracking import Tracker
from stages.train import provenance_tags, run_name, task_from_argv


def main(argv: list[str] | None = None) -> int:
    task, run, task_params, variant = task_from_argv(argv, __doc__)
    name = run_name(task, variant)
    run_info = read_json(f"{task.outputs}/{name}/run.json")
    stage = "evaluate_embedding" if task.outputs != "models" else "evaluate"
    with Tracker(task.experiment, name, run_id=run_info.get("mlflow_run_id"),
                 tags=provenance_tags(task, run, stage, variant)) as tracker:
        ctx = tasks.Context(task, task_params, run, tracker, variant=variant)
        metrics = task.evaluate(ctx)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
