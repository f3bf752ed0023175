"""reports/results.md: each task's number beside the book's or the published one, with where it came from.

The page opens with a summary by chapter, then gives one section per chapter: its results table, its own
sections, its notes and its pictures inline. A chapter module may add sections of its own (``REPORT_SECTIONS``:
functions of the repository root that return markdown lines, e.g. chapter 7's MR table beside Kim (2014)'s) and
name the result its summary leads with (``HEADLINE``: a task id, or ``<task>-<variant>``)."""

from __future__ import annotations

import hashlib
import importlib
import json
import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltm.tasks import Task, lower_is_better

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


CHECK_METRICS = ("checks_passed", "matches_book", "word_index_matches_book")
"""Metrics that check a worked example of the book rather than measure a model: headlines only when nothing else
of the chapter ran."""


@dataclass
class Row:
    """One result line of the report: a task, or one of its variants, and what its stages wrote."""

    task: Task
    variant: str | None
    metrics: dict[str, Any] | None
    run: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.task.id}-{self.variant}" if self.variant else self.task.id

    @property
    def reference(self) -> float | None:
        return self.task.reference.for_variant(self.variant) if self.task.reference else None

    @property
    def value(self) -> float | None:
        """The headline metric (its mean over repeats where the task repeats), or None."""
        m = self.metrics or {}
        v = m.get(f"{self.task.metric}_mean", m.get(self.task.metric))
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    def short_by(self) -> float | None:
        """How far the result is on the wrong side of its reference (> 0: short of it), or None."""
        if self.value is None or self.reference is None:
            return None
        gap = self.value - self.reference
        return gap if lower_is_better(self.task.metric) else -gap


def chapter_title(module: str) -> str:
    """'Chapter 4: deep feed-forward networks', from the first line of the chapter module's docstring."""
    doc = (importlib.import_module(module).__doc__ or module).strip().split("\n")[0]
    return doc.split(" (")[0].rstrip(".")


def anchor(heading: str) -> str:
    """The link target GitHub and GitLab give a heading: lower case, punctuation dropped, spaces to hyphens."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def cpu_caps(section: str, params_file: Path) -> list[str]:
    """The params of ``section`` that params.yaml marks as set for this CPU (a comment naming the CPU beside the
    book's or the paper's value), as 'key = value (the comment)'. Raises nothing: no file, no caps."""
    if not params_file.is_file():
        return []
    from ruamel.yaml import YAML

    data = YAML().load(params_file.read_text(encoding="utf-8"))
    block = data.get(section) if hasattr(data, "get") else None
    if not hasattr(block, "ca"):
        return []
    found = []
    for key, value in block.items():
        token = block.ca.items.get(key, [None] * 3)[2]
        if token is None:
            continue
        comment = []  # the key's own comment lines: up to a blank line or a comment at column 0
        for i, line in enumerate(token.value.split("\n")):
            if not line.strip() or (i and not line.startswith(" ")):
                break
            comment.append(line.strip().lstrip("#").strip())
        text = " ".join(comment)
        if "CPU" in text:
            found.append(f"{key} = {value} ({text})")
    return found


def summary_section(rows: list[Row], modules: list[str], root: Path) -> list[str]:
    """'Summary by chapter': what ran of each chapter, its headline number beside the reference, and the results
    short of their references with the params capped for this CPU."""
    lines = ["## Summary by chapter", "",
             "What runs here, each chapter's headline number beside the book's or the paper's, and where we fall "
             "short and why (the params set for this CPU, from params.yaml beside the book's or the paper's "
             "value; a result not run names its reason in the chapter's notes).", "",
             "| Chapter | Results here | Headline | Ours | Reference | Short of the reference, and why |",
             "|---|---|---|---|---|---|"]
    for module in modules:
        mine = [r for r in rows if r.task.chapter == module]
        ran = [r for r in mine if r.metrics is not None]
        not_run = list(dict.fromkeys(r.task.dataset_of(r.variant) or r.name for r in mine if r.metrics is None))
        scored = [r for r in ran if r.value is not None]
        measured = [r for r in scored if r.task.metric not in CHECK_METRICS]
        override = getattr(importlib.import_module(module), "HEADLINE", None)
        head = (next((r for r in scored if r.name == override), None)
                or next((r for r in measured if r.reference is not None), None)
                or (measured or scored or [None])[0])
        short = []
        for r in scored:
            gap = r.short_by()
            if gap is not None and gap > 1e-9:
                caps_ = cpu_caps(r.task.id, root / "params.yaml") + [
                    f"run.{k} = {v}" for k, v in r.run.get("caps", {}).items() if v]
                short.append(f"{r.name}: {fmt(r.value)} vs {fmt(r.reference)}"
                             + (f"; {'; '.join(caps_)}" if caps_ else ""))
        here = f"{len(ran)} of {len(mine)}" + (f" (not run: {', '.join(not_run)})" if not_run else "")
        title = chapter_title(module)
        headline = (f"{head.name} {head.task.metric} | {ours(head.metrics or {}, head.task.metric)} | "
                    f"{fmt(head.reference)}") if head else "- | - | -"
        lines.append(f"| [{title}](#{anchor(title)}) | {here} | {headline} | "
                     f"{'<br>'.join(short) if short else ('none' if scored else '-')} |")
    return lines


def override(value: Any) -> str:
    """A params value as ``dvc exp run -S`` takes it (Hydra's override grammar): null, true, 0.5, [1,2]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(override(v) for v in value) + "]"
    return str(value)


def full_size_section(rows: list[Row], root: Path) -> list[str]:
    """"At the book's or the paper's size": for each task of params.yaml's ``full_size`` block, its results here,
    the values this CPU ran with, and the ``dvc exp run -S`` line that runs it at the book's or the paper's size
    (each argument quoted for a POSIX shell). No params file or no block: no section."""
    from ruamel.yaml import YAML

    path = root / "params.yaml"
    params = YAML(typ="safe").load(path.read_text(encoding="utf-8")) if path.is_file() else None
    full = (params or {}).get("full_size") or {}
    if not full:
        return []
    lines = ["## At the book's or the paper's size", "",
             "The results above ran at the sizes params.yaml sets for this 2-core CPU. Each line below runs a task "
             "at the book's or the paper's size instead (a GPU's work), as an experiment beside the committed "
             "run (`dvc exp show` compares them); the values are params.yaml's `full_size` block.", "",
             "| Task | Ours here | Reference | Set for this CPU | At full size |", "|---|---|---|---|---|"]
    for task_id, values in full.items():
        mine = [r for r in rows if r.task.id == task_id]
        here = [f"{r.name if r.variant else r.task.metric}: {ours(r.metrics, r.task.metric)}"
                for r in mine if r.metrics is not None]
        ran = [r for r in mine if r.metrics is not None] or mine
        reference = "<br>".join(dict.fromkeys(fmt(r.reference) for r in ran)) or "-"
        capped = ", ".join(f"{k} = {override(params.get(task_id, {}).get(k))}" for k in values)
        line = " ".join(f"-S {shlex.quote(f'{task_id}.{k}={override(v)}')}" for k, v in values.items())
        lines.append(f"| {task_id} | {'<br>'.join(here) or 'not run'} | {reference} | {capped} | "
                     f"`dvc exp run {line}` |")
    return lines


RESULTS_HEADER = ["| Task | Book section | Dataset | Metric | Ours | Reference | Source | MLflow run |",
                  "|---|---|---|---|---|---|---|---|"]


def result_line(row: Row) -> str:
    """The row of a chapter's results table."""
    task, ref = row.task, row.task.reference
    dataset = task.dataset_of(row.variant) or "in the code"
    if row.metrics is None:
        return (f"| {row.name} | {task.section} | {dataset} | {task.metric} | not run | "
                f"{fmt(row.reference)} | {ref.source_for(row.variant) if ref else ''} | |")
    run_id = row.run.get("mlflow_run_id")
    return (f"| {row.name} | {task.section} | {dataset} | {task.metric} | {ours(row.metrics, task.metric)} | "
            f"{fmt(row.reference)} | {ref.source_for(row.variant) if ref else ''} | "
            f"{f'`{run_id[:12]}`' if run_id else 'not logged'} |")


def notes_of(row: Row, root: Path) -> list[str]:
    """The bullets of a result's notes: why it did not run, the task's notes and its ``also`` metrics, and the
    metrics file's own note (e.g. why a metric is null: dltm.embeddings.null_metrics_note)."""
    if row.metrics is None:
        return [f"- **{row.name}**: not run here: {why_not_run(row.task, root, row.variant).rstrip('.')}."]
    out = []
    task, metrics = row.task, row.metrics
    if task.notes or task.also:
        extra = "; ".join(f"{k} = {ours(metrics, k)}" for k in task.also if k in metrics or f"{k}_mean" in metrics)
        out.append(f"- **{row.name}**: {task.notes}" + (f" ({extra})" if extra else "") + ".")
    if isinstance(metrics.get("note"), str):
        out.append(f"- **{row.name}**: {metrics['note'].rstrip('.')}.")
    return out


FIGURES = "figures"
"""reports/figures/<result>/{train,eval}/: the files of plots/<result>/ that :data:`KEPT_FILES` names (its pictures,
and the sample tables a chapter's section reads, e.g. appendix A's optimizer_defaults.md), which reports/results.md
shows. plots/ is DVC's (cached, not in git); the report and its figures are committed together, as keras-io keeps
each example's output beside it."""

RUNS = "runs"
"""reports/runs/<result>.json: the run record (``<outputs>/<result>/run.json``: seed, caps, epochs, train time,
machine, commit, MLflow run) each result of the report was made with, the md5 of the metrics file it was recorded
beside, and its source. Committed with the report, so that ``dvc repro report`` regenerates it in a checkout that
lacks models/ and plots/ (a fresh clone, a lost DVC cache): see :func:`write_report`."""

KEPT_FILES = ("*.png", "*.md")
"""What of plots/<result>/{train,eval}/ is kept in reports/figures/: pictures and sample tables."""

REPORT = "results.md"


def md5(path: Path) -> str:
    """The md5 hex digest of a file's bytes (as DVC hashes files), which ties a run record to its metrics file."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def result_names(tasks: list[Task]) -> dict[str, str]:
    """{result name: its run.json's path relative to the repository root} for every task and variant, in the
    report's order."""
    return {(name := f"{t.id}-{v}" if v else t.id): f"{t.outputs}/{name}/run.json"
            for t in tasks for v in t.variants or (None,)}


def read_record(path: Path) -> dict[str, Any]:
    """A run record of reports/runs/. Raises :class:`dltm.cli.UserError` naming the file when it is not JSON (a
    merge conflict, say) or lacks ``metrics_md5``, ``source`` or a ``run`` mapping."""
    from dltm.cli import UserError
    from dltm.io import read_json

    try:
        record = read_json(path)
    except ValueError as e:  # read_json's message names the file
        raise UserError(f"{e} (fix it, or delete it to drop the record)") from None
    if not (isinstance(record, dict) and isinstance(record.get("metrics_md5"), str)
            and isinstance(record.get("source"), str) and isinstance(record.get("run"), dict)):
        raise UserError(f"{path}: not a run record (a mapping with metrics_md5, source and run): fix it, or delete "
                        "it to drop the record")
    return record


def collect_records(tasks: list[Task], root: Path, into: Path) -> dict[str, str]:
    """Write into ``into``/runs/ and ``into``/figures/ the record and the figures of every result with a metrics
    file (metrics/<name>.json), and return {name: where they came from}:

    - "workspace": the workspace has its run.json (its stages ran here, or ``dvc pull`` brought them); the record
      is made from it and the figures from plots/<name>/. The workspace is taken to match the checkout, as
      ``dvc repro`` keeps it (after ``git pull``, ``dvc checkout``).
    - "kept": no run.json here, and its record in reports/runs/ was made beside this very metrics file (same
      md5); the record and its figures are kept.
    - "missing": neither; the result's provenance shows '-' and it has no pictures.

    Results without a metrics file have no record. Raises UserError (:func:`read_record`) for a bad record."""
    from dltm.io import read_json, write_json

    reports, sources = root / "reports", {}
    (into / RUNS).mkdir(parents=True)
    (into / FIGURES).mkdir(parents=True)
    for name, run_path in result_names(tasks).items():
        mfile, run, record = root / "metrics" / f"{name}.json", root / run_path, reports / RUNS / f"{name}.json"
        if not mfile.is_file():
            continue
        if run.is_file():
            write_json(into / RUNS / f"{name}.json", {"metrics_md5": md5(mfile), "source": run_path,
                                                      "run": read_json(run)})
            for f in sorted(f for pattern in KEPT_FILES for f in (root / "plots" / name).glob(f"*/{pattern}")):
                target = into / FIGURES / f.relative_to(root / "plots")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
            sources[name] = "workspace"
        elif record.is_file() and read_record(record)["metrics_md5"] == md5(mfile):
            shutil.copyfile(record, into / RUNS / f"{name}.json")
            if (reports / FIGURES / name).is_dir():
                shutil.copytree(reports / FIGURES / name, into / FIGURES / name)
            sources[name] = "kept"
        else:
            sources[name] = "missing"
    return sources


def write_report(tasks: list[Task], root: Path = Path(".")) -> tuple[str, dict[str, str]]:
    """The report stage: reports/runs/ and reports/figures/ from :func:`collect_records`, and reports/results.md
    built from them (:func:`build` over :func:`recorded_view`). All three are written aside first and put in
    place, each whole, only once the page is built: a failure leaves the earlier report, records and figures as
    they were. Returns the page and :func:`collect_records`' sources."""
    from dltm.io import staged, write_text

    with staged(root / "reports", [RUNS, FIGURES, REPORT]) as area:
        sources = collect_records(tasks, root, area)
        text = build_recorded(tasks, root, area)
        write_text(area / REPORT, text)
    return text, sources


@contextmanager
def recorded_view(tasks: list[Task], root: Path = Path("."), records: Path | None = None) -> Iterator[Path]:
    """A temporary tree that reads as the repository root ``root``, except that each result's run.json is its
    record in ``records``/runs/ (reports/runs/ reads as that folder too) and plots/ is ``records``/figures/
    (``records``: reports/ by default). It is what
    :func:`build` and the chapters' report sections read (they take a root), made of the committed records. Every
    other entry is a symbolic link into ``root``."""
    import tempfile

    records = root / "reports" if records is None else records
    replaced: dict[str, str | Path] = {"plots": (records / FIGURES).resolve(),
                                       f"reports/{RUNS}": (records / RUNS).resolve()}
    for name, run_path in result_names(tasks).items():
        if (records / RUNS / f"{name}.json").is_file():
            replaced[run_path] = json.dumps(read_record(records / RUNS / f"{name}.json")["run"])
    with tempfile.TemporaryDirectory(prefix="dltm-report-") as tmp:
        _overlay(root.resolve(), Path(tmp), replaced)
        yield Path(tmp)


def build_recorded(tasks: list[Task], root: Path = Path("."), records: Path | None = None) -> str:
    """:func:`build` over :func:`recorded_view`. The paths the page names (e.g. a missing dataset's) are relative
    to the repository root."""
    with recorded_view(tasks, root, records) as view:
        return build(tasks, view).replace(f"{view}/", "")


def _overlay(root: Path, view: Path, replaced: dict[str, str | Path]) -> None:
    """Fill ``view`` with links to ``root``'s entries, except the relative paths of ``replaced``: a str is written
    there as a file, a Path linked to. Folders above a replaced path are made in ``view``, their other entries
    linked. (The standard library has no overlay of folders: this is the one the report needs.)"""
    by_top: dict[str, dict[str, str | Path]] = {}
    for rel, value in replaced.items():
        top, _, rest = rel.partition("/")
        by_top.setdefault(top, {})[rest] = value
    for entry in root.iterdir() if root.is_dir() else ():
        if entry.name not in by_top:
            (view / entry.name).symlink_to(entry)
    for top, sub in by_top.items():
        if "" in sub:
            value = sub[""]
            if isinstance(value, Path):
                (view / top).symlink_to(value, target_is_directory=value.is_dir())
            else:
                (view / top).write_text(value, encoding="utf-8")
        else:
            (view / top).mkdir()
            _overlay(root / top, view / top, sub)


def pictures_of(row: Row, root: Path) -> list[str]:
    """The result's pictures, inline (reports/figures/<name>/{train,eval}/*.png), each captioned by its file."""
    pngs = sorted((root / "plots" / row.name).glob("*/*.png"))
    return [f"![{row.name}: {p.parent.name} {p.stem.replace('_', ' ')}]({FIGURES}/{row.name}/{p.parent.name}/"
            f"{p.name})" for p in pngs]


def build(tasks: list[Task], root: Path = Path(".")) -> str:
    """reports/results.md: the summary by chapter, then one section per chapter (its results table, its own
    sections, notes and pictures), the backends and GPU runs, and where each number came from."""
    rows, run_paths = [], result_names(tasks)
    for task in tasks:
        for variant in task.variants or (None,):
            name = f"{task.id}-{variant}" if variant else task.id
            mfile, rfile = root / "metrics" / f"{name}.json", root / run_paths[name]
            rows.append(Row(task, variant, json.loads(mfile.read_text(encoding="utf-8")) if mfile.is_file() else None,
                            json.loads(rfile.read_text(encoding="utf-8")) if rfile.is_file() else {}))
    modules = list(dict.fromkeys(task.chapter for task in tasks))  # the book's order: chapters, then appendices
    lines = [
        "# Results",
        "",
        "Generated by `dvc repro report` from `metrics/<task>.json` and each task's `run.json` (its record kept in",
        "`reports/runs/`); do not edit.",
        "Each row is one task of the book (task ids as in TASKS.md). *Reference* is the book's number where it",
        "prints one, otherwise the published number the task is measured against.",
        "",
        *summary_section(rows, modules, root),
    ]
    full_size = full_size_section(rows, root)
    lines += ["", *full_size] if full_size else []
    for module in modules:
        mine = [r for r in rows if r.task.chapter == module]
        lines += ["", f"## {chapter_title(module)}", "", *RESULTS_HEADER, *(result_line(r) for r in mine)]
        for section in getattr(importlib.import_module(module), "REPORT_SECTIONS", ()):
            body = section(root)  # a chapter's own tables, one heading level below the chapter's
            lines += ["", *(f"#{line}" if line.startswith("## ") else line for line in body)] if body else []
        notes = [n for r in mine for n in notes_of(r, root)]
        lines += ["", "### Notes", "", *notes] if notes else []
        pictures = [p for r in mine for p in pictures_of(r, root)]
        lines += ["", "### Pictures", *(x for p in pictures for x in ("", p))] if pictures else []
    for section in (backends_section, gpu_section):
        body = section(root)
        lines += ["", *body] if body else []
    provenance = ["", "## Where each number came from", "",
                  "| Task | Seed | Caps | Train examples | Epochs | Train time (s) | Machine | Git commit |",
                  "|---|---|---|---|---|---|---|---|"]
    throughput = ["", "## Training speed", "", "From each run's `run.json`, on the machine of the table above.", "",
                  "| Run | " + " | ".join(k.replace("_", " ") for k in SPEED_KEYS) + " |",
                  "|---|" + "---|" * len(SPEED_KEYS)]
    recovered: dict[str, int] = {}  # a record's source, where it is not the run.json itself: how many rows
    for r in rows:
        if r.metrics is None:
            continue
        run, mark = r.run, ""
        record = root / "reports" / RUNS / f"{r.name}.json"
        source = read_record(record)["source"] if record.is_file() else None
        if source and source != run_paths[r.name]:
            recovered[source] = recovered.get(source, 0) + 1
            mark = " †"
        m = run.get("machine", {})
        device = m.get("gpu") if m.get("gpu") not in (None, "none") else m.get("host_cpu", "?")
        provenance.append(
            f"| {r.name}{mark} | {run.get('seed', '-')} | {caps(run)} | {run.get('train_examples', '-')} | "
            f"{run.get('epochs', '-')} | {fmt(run.get('train_seconds'))} | {device}; "
            f"{backend_label(m)} | {str(run.get('git_commit', '?'))[:10]} |")
        speed = {k: run[k] for k in SPEED_KEYS if k in run}
        if speed:
            throughput.append(f"| {r.name} | " + " | ".join(fmt(speed.get(k)) if k in speed else "-"
                                                          for k in SPEED_KEYS) + " |")
    provenance += ["", "Each row is the run record the result was made with (`reports/runs/<task>.json`, kept while "
                   "its metrics file is unchanged); a row of `-` has none in this checkout."]
    provenance += [f"† {n} record(s): {source}." for source, n in recovered.items()]
    return "\n".join(lines + provenance + (throughput if len(throughput) > 6 else [])) + "\n"
