"""DVC stage ``evaluate@<task>``: score the trained model on the task's test split.

Writes ``metrics/<task>.json`` and ``plots/<task>/eval/`` (the confusion matrix, or the task's own outputs) and
adds them to the same MLflow run that ``train@<task>`` opened. Refuses (one line, exit status 2) a model folder
whose sub-models do not all carry its run.json's training run id, and metrics that are NaN or infinite.

Prints one line, the task's headline metric (``Task.metric``, the one the report shows) and where all of them
went: ``ch07_kim_cnn: test_accuracy 0.7290 (n=1000) -> metrics/ch07_kim_cnn.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dltm import cli, tasks
from dltm.io import read_json
from dltm.tracking import Tracker
from stages.train import provenance_tags, run_name, task_from_argv


def result_line(name: str, metric: str, metrics: dict[str, Any], path: Path) -> str:
    """``<name>: <metric> <value> (n=<examples>) -> <path>``; the value as the report writes it (mean ± std
    for a repeated task), or a note when ``metrics`` lacks ``metric``.

    >>> result_line("ch07_kim_cnn", "test_accuracy", {"test_accuracy": 0.729, "n_examples": 1000},
    ...             Path("metrics/ch07_kim_cnn.json"))
    'ch07_kim_cnn: test_accuracy 0.7290 (n=1000) -> metrics/ch07_kim_cnn.json'
    """
    from dltm.report import ours

    if metric in metrics or f"{metric}_mean" in metrics:
        value = ours(metrics, metric)
    else:
        value = f"not among the {len(metrics)} metrics"
    n = next((metrics[k] for k in ("n_examples", "test_n_examples") if isinstance(metrics.get(k), int)), None)
    shown = f" (n={n})" if n is not None and "(n=" not in value else ""
    return f"{name}: {metric} {value}{shown} -> {path.as_posix()}"


def main(argv: list[str] | None = None) -> int:
    from dltm.runs import RUN_FILE, check_training_run

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
        if task.outputs == "models" and tracker.active:  # the run's model, a version of the model <task>[-<variant>]
            from dltm.mlflow_models import register

            register(tracker, name, task.metric, metrics)
    print(result_line(name, task.metric, metrics, ctx.metrics_file))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
