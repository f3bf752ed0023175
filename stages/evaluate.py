"""DVC stage ``evaluate@<task>``: score the trained model on the task's test split.

Writes ``metrics/<task>.json`` and ``plots/<task>/eval/`` (the confusion matrix, or the task's own outputs) and
adds them to the same MLflow run that ``train@<task>`` opened.
"""

from __future__ import annotations

import json
import sys

from dltm import tasks
from dltm.io import read_json
from dltm.tracking import Tracker
from stages.train import provenance_tags, task_from_argv


def main(argv: list[str] | None = None) -> int:
    task, run, task_params = task_from_argv(argv, __doc__)
    run_info = read_json(f"models/{task.id}/run.json")
    with Tracker(task.experiment, task.id, run_id=run_info.get("mlflow_run_id"),
                 tags=provenance_tags(task, run, "evaluate")) as tracker:
        ctx = tasks.Context(task, task_params, run, tracker)
        metrics = task.evaluate(ctx)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
