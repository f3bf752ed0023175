"""DVC stage ``train@<task>``: train one task with its ``params.yaml`` section and the ``run`` settings.

Writes ``models/<task>/`` (the ``.keras`` model, its tokenizer, ``run.json``) and ``plots/<task>/train/``
(``history.csv`` and pictures), and opens the task's MLflow run (experiment = the chapter module).

Both outputs are written into a scratch folder and moved into place whole when training succeeds: a killed or
failed run leaves the previous outputs as they were, never a mix (``dltm.io.staged``). Every model of the run
carries the run's ``training_run_id`` so that ``evaluate`` can refuse a folder that mixes two runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from dltm import cli, datasets, runtime, tasks
from dltm import params as P
from dltm.io import write_json
from dltm.tracking import Tracker, param_text, tracking_uri


def datasets_info_files(prepared: str) -> dict[str, str]:
    """{file: sha256} of the source files a prepared dataset recorded (your own data's)."""
    info = Path("data/prepared") / prepared / "info.json"
    return json.loads(info.read_text(encoding="utf-8")).get("files", {}) if info.is_file() else {}


def provenance_tags(task: tasks.Task, run: P.RunSettings, stage: str, variant: str | None = None
                    ) -> dict[str, str]:
    git = runtime.git_info()
    tags = {
        "task": task.id, "book_section": task.section,
        f"dvc_stage.{stage}": tasks.dvc_stage(task.id, variant, "evaluate" if stage.startswith("evaluate")
                                              else "train"),
        "git_commit": git["commit"], "git_dirty": git["dirty"], "seed": str(run.seed),
        "machine": runtime.machine_summary(),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    dataset = task.dataset_of(variant)
    if dataset == "mr" and run.text_data == "custom":  # your own data (prepare.custom) in place of MR
        tags["dataset"] = "custom"
        for name, sha in datasets_info_files("custom").items():
            tags[f"dataset_sha256.{name}"] = sha
        dataset = None
    if variant:
        tags["variant"] = variant
    if dataset:
        tags["dataset"] = dataset
        for name, sha in datasets.checksums(dataset).items():
            tags[f"dataset_sha256.{name}"] = sha
    return tags


def task_from_argv(argv: list[str] | None, doc: str) -> tuple[tasks.Task, P.RunSettings, dict, str | None]:
    """Parse ``<task id> [--variant V]`` and read the task's params section and the run settings."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("task", help="a task id of TASKS.md, e.g. ch07_kim_cnn")
    ap.add_argument("--variant", help="for tasks with variants (chapter 6: the corpus, e.g. ptb; ch07_kim2014: "
                                      "rand, static, non-static or multichannel; chapters 4-5's MNIST tasks: "
                                      "fashion_mnist)")
    args = ap.parse_args(argv)
    params = P.load()
    run = P.RunSettings.from_params(params)
    runtime.select_backend(run.backend)  # before the chapter module imports Keras
    task = tasks.get(args.task)
    if task.variants and args.variant not in task.variants:
        named = ", ".join(v for v in task.variants if v)
        ap.error(f"{task.id} takes no --variant (its own data) or one of {named}" if None in task.variants
                 else f"{task.id} needs --variant, one of {named}")
    if not task.variants and args.variant:
        ap.error(f"{task.id} has no variants")
    task_params = P.validate(task.id, P.section(params, task.id), task.params)
    return task, run, task_params, args.variant


def run_name(task: tasks.Task, variant: str | None) -> str:
    """The name of the task's outputs (``models/<name>``, ``metrics/<name>.json``): the task id and variant."""
    return f"{task.id}-{variant}" if variant else task.id


def committed_params() -> dict:
    """params.yaml as the current commit holds it ({} outside git or before the first commit)."""
    import subprocess

    try:
        text = subprocess.run(["git", "show", "HEAD:params.yaml"], capture_output=True, text=True,
                              check=True).stdout
        from ruamel.yaml import YAML

        return YAML(typ="safe").load(text) or {}
    except Exception:
        return {}


def run_label(task: tasks.Task, variant: str | None, run: P.RunSettings, task_params: dict,
              committed: dict | None = None) -> str:
    """The MLflow run name, so that repeats of a task tell apart in the runs table, the compare view and chart
    legends: the outputs' name, then the DVC experiment (``dvc exp run``) and the params that differ from the
    committed params.yaml (those the task reads), else the commit:
    ``ch07_kim_cnn · exp-3f2a1 · filter_nums=100, seed=2`` or ``ch07_kim_cnn · 5bd4546``."""
    committed = committed_params() if committed is None else committed
    base = committed.get(task.id) or {}
    base_run = committed.get("run") or {}
    changed = [f"{k}={param_text(v)}" for k, v in task_params.items() if k in base and base[k] != v]
    changed += [f"{k}={param_text(getattr(run, k))}" for k in task.run_params
                if k in base_run and base_run[k] != getattr(run, k)]
    parts = [run_name(task, variant)]
    if os.environ.get("DVC_EXP_NAME"):
        parts.append(os.environ["DVC_EXP_NAME"])
    if changed:
        parts.append(", ".join(changed[:4]) + (f" (+{len(changed) - 4})" if len(changed) > 4 else ""))
    if len(parts) == 1:
        parts.append(runtime.git_info()["commit"][:7])
    return " · ".join(parts)


def log_inputs(tracker: Tracker, task: tasks.Task, run: P.RunSettings, variant: str | None) -> None:
    """The datasets the run reads, as MLflow dataset inputs: registry id, sha256 digest, canonical URL."""
    dataset = task.dataset_of(variant)
    if dataset == "mr" and run.text_data == "custom":
        for name, sha in datasets_info_files("custom").items():
            tracker.log_dataset(f"custom/{name}", sha, name)
        return
    if not dataset:
        return
    entry = datasets.get(dataset)
    sums = datasets.checksums(dataset)
    digest = sums[next(iter(sums))] if len(sums) == 1 else hashlib.sha256(
        "".join(f"{k}:{v}" for k, v in sorted(sums.items())).encode()).hexdigest()  # one digest for the files
    tracker.log_dataset(dataset, digest, entry.sources[0].url if entry.sources else None)


def chapter_description(task: tasks.Task) -> str:
    """The chapter module's first docstring line: the chapter's title and its lines in the book."""
    import importlib

    doc = importlib.import_module(task.chapter).__doc__ or task.chapter
    return doc.strip().splitlines()[0]


def main(argv: list[str] | None = None, stage: str = "train") -> int:
    import dataclasses
    import uuid

    from dltm.io import staged
    from dltm.runs import RUN_FILE, TRAINING_RUN_KEY, stamp_training_run

    task, run, task_params, variant = task_from_argv(argv, __doc__)
    tags = provenance_tags(task, run, stage, variant)
    with Tracker(task.experiment, run_label(task, variant, run, task_params), tags=tags,
                 description=chapter_description(task), system_metrics=True) as tracker:
        # what the task reads, as params.yaml writes it: its section and the run settings it uses
        tracker.log_params({"run": {k: getattr(run, k) for k in task.run_params}, task.id: task_params})
        log_inputs(tracker, task, run, variant)
        final = tasks.Context(task, task_params, run, tracker, variant=variant)
        training_run_id = uuid.uuid4().hex
        # models/<task>/ and plots/<task>/train/ are written aside and each moved into place whole at the end:
        # a failed or killed run leaves the previous ones untouched, never a mix of two runs
        with staged(final.root, [final.train_dir.relative_to(final.root),
                                 final.model_dir.relative_to(final.root)]) as area:
            ctx = dataclasses.replace(final, staging=area)
            info = task.train(ctx)
            ctx.model_dir.mkdir(parents=True, exist_ok=True)
            stamp_training_run(ctx.model_dir, training_run_id)
            write_json(ctx.model_dir / RUN_FILE, {
                "task": task.id,
                "variant": variant,
                TRAINING_RUN_KEY: training_run_id,
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
    sys.exit(cli.run(main))
