"""One-off: recover reports/runs/ from the report committed at 4e2763e, whose run.json files were lost with the
machine-local DVC cache (issue 20). Each record holds only what the page showed of its run.json: the provenance
and speed tables, the MLflow run column, chapter 7's protocol and folds, chapters 10 and 12's best epoch; and
appendix A's optimizer table, which the page printed whole. Kim's validation slice, which the page shows only
as early stopping, is computed as dltm.training does from fold 0 of data/prepared/mr (``dvc repro prepare@mr``).

Run once from the repository root: ``python -m tools.recover_run_records``; then ``dvc repro -s report``.
"""

import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np

from dltm import tasks
from dltm.io import write_json
from dltm.report import result_names

COMMIT = "4e2763e"
SOURCE = (f"recovered by tools/recover_run_records.py from reports/results.md at {COMMIT} (the fields it showed of "
          "the run.json, which was lost with the DVC cache that held it)")
LABELS = {"TF": "tensorflow", "JAX": "jax", "PyTorch": "torch"}
SPEED = ("words_per_second", "examples_per_second", "seconds_per_epoch", "cooccurrence_seconds")


def git_show(path: str) -> str:
    return subprocess.run(["git", "show", f"{COMMIT}:{path}"], check=True, capture_output=True, text=True).stdout


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table(page: str, heading: str) -> list[list[str]]:
    body = page.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [cells(x) for x in body.split("\n") if x.startswith("|")]
    return rows[2:]  # the header and its rule


def number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    page = git_show("reports/results.md")
    records: dict[str, dict] = {}
    for name, seed, caps, examples, epochs, seconds, machine, commit in table(page, "## Where each number came from"):
        device, _, label = machine.rpartition("; ")
        backend, _, version = label.partition(" ")
        m = {"backend": LABELS.get(backend, "numpy")}
        if backend in LABELS:
            m[LABELS[backend]] = version
        if device != "?":
            m["host_cpu"] = device
        run = {"machine": m, "caps": {} if caps == "none" else {k: number(v) for k, v in
                                                                (c.split("=") for c in caps.split(", "))}}
        for key, text in (("seed", seed), ("train_examples", examples), ("epochs", epochs),
                          ("train_seconds", seconds), ("git_commit", commit)):
            if text not in ("-", "?"):
                run[key] = text if key == "git_commit" else number(text)
        records[name] = run
    for row in table(page, "## Training speed"):
        records[row[0]].update({k: number(v) for k, v in zip(SPEED, row[1:], strict=True) if v != "-"})
    chapters = page.split("\n## Where each number came from\n")[0]
    for line in chapters.split("\n"):  # every chapter's results table: the MLflow run is the last column
        c = cells(line) if line.startswith("| ") else []
        if len(c) == 8 and c[0] in records and c[4] != "not run":
            run_id = c[7].strip("`")
            if run_id != "not logged":
                records[c[0]]["mlflow_run_id"] = run_id
    for row in table(page, "### MR beside Kim (2014), table 2")[1:]:  # the book's code's row first: holdout
        name = f"ch07_kim2014-{row[0]}"
        folds = int(row[2].split("-")[0])
        records[name].update(protocol="cv", folds=folds)
        if "epochs against Kim's 25" not in row[6]:  # early stopping on a slice of fold 0's training sentences
            in_fold = int((np.load("data/prepared/mr/folds.npy") != 0).sum())
            records[name]["validation_examples"] = in_fold - records[name]["train_examples"]
    for heading, col in (("### Translation (chapter 10)", 8),
                         ("### Chapter 12: the Transformer encoder-decoder on chapter 10's English -> Chinese "
                          "sentences", 5)):
        for row in table(page, heading):
            name = row[0] if col == 8 else row[1]
            best = re.fullmatch(r"(\d+) \((\d+)\)", row[col])
            if best and int(best[1]) == records[name].get("epochs"):
                records[name]["best_epoch"] = int(best[2])
    out = Path("reports/runs")
    out.mkdir(parents=True, exist_ok=True)
    run_paths = result_names(list(tasks.all_tasks().values()))
    for name, run in records.items():
        if Path(run_paths[name]).is_file():
            continue  # the workspace has the real one
        metrics = git_show(f"metrics/{name}.json")
        write_json(out / f"{name}.json", {"metrics_md5": hashlib.md5(metrics.encode()).hexdigest(),
                                          "source": SOURCE, "run": dict(sorted(run.items()))})
    opt = page.split("\n### Appendix A: the book's optimizer defaults beside Keras 3's\n\n", 1)[1].split("\n\n", 1)[0]
    target = Path("reports/figures/appA_checks/eval/optimizer_defaults.md")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(opt + "\n", encoding="utf-8")
    print(f"{len(records)} records in {out}/, and {target}")


if __name__ == "__main__":
    main()
