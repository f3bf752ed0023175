"""DVC stage ``evaluate@<task>``: score the trained model on the task's test split.

Writes ``metrics/<task>.json`` and ``plots/<task>/confusion_matrix.png`` (or the task's own outputs) and
adds them to the same MLflow run that ``train@<task>`` opened.
"""

from __future__ import annotations

import argparse
import json
import sys

from dltm import params as P
from dltm import tasks
from dltm.io import read_json
from dltm.tracking import Tracker
from stages.train import provenance_tags


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("task")
    args = ap.parse_args(argv)
    params = P.load()
    run = P.RunSettings.from_params(params)
    task = tasks.get(args.task)
    task_params = P.section(params, task.id)
    run_info = read_json(f"models/{task.id}/run.json")
    with Tracker(task.experiment, task.id, run_id=run_info.get("mlflow_run_id"),
                 tags=provenance_tags(task, run, "evaluate")) as tracker:
        ctx = tasks.Context(task, task_params, run, tracker)
        metrics = task.evaluate(ctx)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
