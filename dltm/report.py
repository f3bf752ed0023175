"""reports/results.md: each task's number beside the book's or the published one, with where it came from.

A chapter module may add sections of its own (``REPORT_SECTIONS``: functions of the repository root that return
markdown lines), e.g. chapter 7's MR table beside Kim (2014)'s."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from dltm.tasks import Task

SPEED_KEYS = ("words_per_second", "examples_per_second", "seconds_per_epoch", "cooccurrence_seconds")


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def ours(metrics: dict[str, Any], key: str) -> str:
    """The value, or mean ± std (n=..) when the task was repeated."""
    if f"{key}_mean" in metrics:
        n = metrics.get(f"{key}_n", metrics.get("repeats"))
        return f"{metrics[f'{key}_mean']:.4f} ± {metrics.get(f'{key}_std', 0.0):.4f}" + (f" (n={n})" if n else "")
    return fmt(metrics.get(key))


def caps(run: dict[str, Any]) -> str:
    c = run.get("caps", {})
    parts = [f"{k}={v}" for k, v in c.items() if v]
    return ", ".join(parts) or "none"


def why_not_run(task: Task, root: Path, variant: str | None = None) -> str:
    """The reason a task has no metrics file, as far as the workspace shows it."""
    dataset = task.dataset_of(variant)
    if dataset:
        from dltm import datasets

        try:
            datasets.require(dataset, root / "data" / "raw")
        except FileNotFoundError as e:
            notes = datasets.get(dataset).notes
            return f"its data is missing ({str(e).rstrip('.')})" + (f"; {notes.rstrip('.')}" if notes else "")
    name = f"{task.id}-{variant}" if variant else task.id
    return f"its stages for {name} have not run in this workspace"


def backend_label(machine: dict[str, Any]) -> str:
    """'TF 2.21.0', 'JAX 0.10.2', 'PyTorch 2.11.0' or 'NumPy', from a run.json's machine record (records made
    before ``run.backend`` existed are TensorFlow's)."""
    backend = machine.get("backend", "tensorflow")
    names = {"tensorflow": "TF", "jax": "JAX", "torch": "PyTorch"}
    return f"{names[backend]} {machine.get(backend, '?')}" if backend in names else "NumPy"


def backends_section(root: Path) -> list[str]:
    """"Backends": benchmarks/results/backends.json (``python -m benchmarks.backends``), if it exists."""
    path = root / "benchmarks" / "results" / "backends.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    lines = ["## Backends", "",
             f"The same stages on each Keras backend of this CPU, one after the other in one run of "
             f"`python -m benchmarks.backends` ({data.get('date')}; {data.get('host_cpu')}; Keras "
             f"{data.get('keras')}; `{data.get('settings')}`: a slice of the training data, so the metrics are "
             f"below the full runs'). Throughput counts training examples (MR sentences, PTB words) per second, "
             f"first epoch's compilation included; the ratio is to TensorFlow's in the same run.", "",
             "| Task | Backend | Test metric | Value | Throughput (/s) | s/epoch | Ratio to TF |",
             "|---|---|---|---|---|---|---|"]
    for r in data.get("rows", []):
        lines.append(f"| {r['task']} | {r['backend']} {data.get('versions', {}).get(r['backend'], '')} | "
                     f"{r['metric']} | {fmt(r['value'])} | "
                     f"{'-' if r['throughput'] is None else format(r['throughput'], ',.0f')} | "
                     f"{r['seconds_per_epoch']:.1f} | "
                     f"{fmt(r['ratio_to_tensorflow'])} |")
    return lines


def gpu_section(root: Path) -> list[str]:
    """"On a GPU": every reports/gpu/*.json that ``benchmarks/gpu_check.py`` wrote on a GPU machine."""
    reports = sorted((root / "reports" / "gpu").glob("*.json"))
    if not reports:
        return []
    lines = ["## On a GPU", "", "`benchmarks/gpu_check.py` on a GPU machine (JAX or PyTorch, no TensorFlow):", "",
             "| Run | Task | Device | Backend | Date | Commit | Epochs | s/epoch | Test metric | Reference |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in reports:
        data = json.loads(path.read_text(encoding="utf-8"))
        m = data.get("machine", {})
        for name, r in data.get("runs", {}).items():
            metric = "test_perplexity" if "test_perplexity" in r["metrics"] else "test_accuracy"
            lines.append(f"| {name} | {r['task']}{'-' + r['variant'] if r.get('variant') else ''} | "
                         f"{m.get('gpu', '?')} | {backend_label(m)} | {data.get('date')} | {data.get('commit')} | "
                         f"{r['run'].get('epochs', '-')} | {r['seconds_per_epoch']:.1f} | "
                         f"{metric} {fmt(r['metrics'].get(metric))} | {fmt(r.get('reference'))} "
                         f"({r.get('reference_is', '')}) |")
        for name, why in data.get("skipped", {}).items():
            lines.append(f"| {name} | skipped: {why} | | | | | | | | |")
    return lines


def build(tasks: list[Task], root: Path = Path(".")) -> str:
    lines = [
        "# Results",
        "",
        "Generated by `dvc repro report` from `metrics/<task>.json` and each task's `run.json`; do not edit.",
        "Each row is one task of the book (task ids as in TASKS.md). *Reference* is the book's number where it",
        "prints one, otherwise the published number the task is measured against.",
        "",
        "| Task | Book section | Dataset | Metric | Ours | Reference | Source | MLflow run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    provenance = [
        "",
        "## Where each number came from",
        "",
        "| Task | Seed | Caps | Train examples | Epochs | Train time (s) | Machine | Git commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = ["", "## Notes", ""]
    throughput = ["", "## Training speed", "", "From each run's `run.json`, on the machine of the table above.", "",
                  "| Run | " + " | ".join(k.replace("_", " ") for k in SPEED_KEYS) + " |",
                  "|---|" + "---|" * len(SPEED_KEYS)]
    pictures = ["", "## Pictures", ""]
    for task in tasks:
        for variant in task.variants or (None,):
            name = f"{task.id}-{variant}" if variant else task.id
            dataset = task.dataset_of(variant) or "in the code"
            mfile = root / "metrics" / f"{name}.json"
            rfile = root / task.outputs / name / "run.json"
            if not mfile.is_file():
                lines.append(f"| {name} | {task.section} | {dataset} | {task.metric} | "
                             f"not run | {fmt(task.reference.for_variant(variant)) if task.reference else '-'} | "
                             f"{task.reference.source_for(variant) if task.reference else ''} | |")
                notes.append(f"- **{name}**: not run here: {why_not_run(task, root, variant).rstrip('.')}.")
                continue
            metrics = json.loads(mfile.read_text(encoding="utf-8"))
            run = json.loads(rfile.read_text(encoding="utf-8")) if rfile.is_file() else {}
            ref = task.reference
            run_id = run.get("mlflow_run_id")
            lines.append(
                f"| {name} | {task.section} | {dataset} | {task.metric} | "
                f"{ours(metrics, task.metric)} | {fmt(ref.for_variant(variant)) if ref else '-'} | "
                f"{ref.source_for(variant) if ref else ''} | "
                f"{f'`{run_id[:12]}`' if run_id else 'not logged'} |"
            )
            m = run.get("machine", {})
            device = m.get("gpu") if m.get("gpu") not in (None, "none") else m.get("host_cpu", "?")
            provenance.append(
                f"| {name} | {run.get('seed', '-')} | {caps(run)} | {run.get('train_examples', '-')} | "
                f"{run.get('epochs', '-')} | {fmt(run.get('train_seconds'))} | {device}; "
                f"{backend_label(m)} | {str(run.get('git_commit', '?'))[:10]} |"
            )
            if task.notes or task.also:
                extra = "; ".join(f"{k} = {ours(metrics, k)}" for k in task.also if k in metrics
                                  or f"{k}_mean" in metrics)
                notes.append(f"- **{name}**: {task.notes}" + (f" ({extra})" if extra else "") + ".")
            if isinstance(metrics.get("note"), str):  # e.g. why a metric is null (dltm.embeddings.null_metrics_note)
                notes.append(f"- **{name}**: {metrics['note'].rstrip('.')}.")
            speed = {k: run[k] for k in SPEED_KEYS if k in run}
            if speed:
                throughput.append(f"| {name} | " + " | ".join(fmt(speed.get(k)) if k in speed else "-"
                                                            for k in SPEED_KEYS) + " |")
            pngs = sorted((root / "plots" / name).glob("*/*.png"))
            if pngs:
                links = ", ".join(f"[{p.stem.replace('_', ' ')}](../{p.relative_to(root).as_posix()})"
                                  for p in pngs)
                pictures.append(f"- **{name}**: {links}")
    sections: list[str] = []
    for module in dict.fromkeys(task.chapter for task in tasks):  # the book's order: the chapters, then appendices
        for section in getattr(importlib.import_module(module), "REPORT_SECTIONS", ()):
            sections += ["", *section(root)]
    for section in (backends_section, gpu_section):
        lines_ = section(root)
        sections += ["", *lines_] if lines_ else []
    return "\n".join(lines + sections + provenance + (throughput if len(throughput) > 6 else []) + notes
                     + (pictures if len(pictures) > 3 else [])) + "\n"
