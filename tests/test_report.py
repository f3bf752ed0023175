"""reports/results.md (dltm/report.py, stages/report.py): the summary by chapter, the chapters' sections, the
pictures copied beside the report, and the stale marks of every chapter's table (dltm/staleness.py)."""

import json
import re
import shlex
import shutil

from hydra.core.override_parser.overrides_parser import OverridesParser

from dltm import tasks
from dltm.report import anchor, build, cpu_caps, md5, write_report
from dltm.staleness import STALE_MARK, mark_report

from .conftest import one_line_error

PARAMS = """\
run:
  seed: 1

ch04_mnist_mlp:             # 4.5
  hidden_units: [128]
  epochs: 3                 # the book: 10; 3 for this CPU
  batch_size: 10            # the book's
"""


def write_result(root, name, metrics, run=None):
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics" / f"{name}.json").write_text(json.dumps(metrics))
    (root / "models" / name).mkdir(parents=True, exist_ok=True)
    (root / "models" / name / "run.json").write_text(json.dumps(run or {"seed": 1, "caps": {}}))


def chapter4():
    return [t for t in tasks.all_tasks().values() if t.chapter == "pipelines.ch04_feedforward"]


def test_summary_leads_with_the_headline_and_says_where_and_why_we_fall_short(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    write_result(tmp_path, "ch04_mnist_softmax-fashion_mnist", {"test_accuracy": 0.85})  # above its 0.842
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.80},  # short of 0.8833
                 {"seed": 1, "caps": {"max_epochs": 0, "max_train_examples": 5000}})
    report = build(chapter4(), tmp_path)
    summary = report.split("## Summary by chapter")[1].split("\n## ")[0]
    row = next(line for line in summary.splitlines() if "Chapter 4" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "[Chapter 4: deep feed-forward networks](#chapter-4-deep-feed-forward-networks)"
    assert cells[1] == "2 of 6 (not run: mnist, fashion_mnist)"  # 3 tasks x (MNIST, Fashion-MNIST)
    assert cells[2:5] == ["ch04_mnist_mlp-fashion_mnist test_accuracy", "0.8000", "0.8833"]  # ch04's HEADLINE
    assert cells[5] == ("ch04_mnist_mlp-fashion_mnist: 0.8000 vs 0.8833; epochs = 3 (the book: 10; 3 for this CPU);"
                        " run.max_train_examples = 5000")  # the softmax, above its reference, is not listed
    # the chapter's section: its table (both datasets' rows), its notes, no pictures (none in plots/)
    chapter = report.split("## Chapter 4: deep feed-forward networks\n")[1].split("\n## ")[0]
    assert "| ch04_mnist_softmax | 4.5 (lines 1860-1905) | mnist | test_accuracy | not run | 0.8800 |" in chapter
    assert ("| ch04_mnist_softmax-fashion_mnist | 4.5 (lines 1860-1905) | fashion_mnist | test_accuracy | 0.8500 | "
            "0.8420 | Xiao et al. 2017") in chapter
    assert "- **ch04_mnist_softmax**: not run here: its data is missing" in chapter and "### Pictures" not in chapter


def report_of(task_list, root):
    """What the report stage does: the records and figures brought up to date, the page built from them."""
    return write_report(task_list, root)


def test_pictures_are_copied_beside_the_report_and_shown_inline(tmp_path):
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.9})
    png = tmp_path / "plots" / "ch04_mnist_mlp-fashion_mnist" / "eval" / "confusion_matrix.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(b"\x89PNG one")
    old = tmp_path / "reports" / "figures" / "gone" / "train" / "old.png"  # a picture of an earlier report
    old.parent.mkdir(parents=True)
    old.write_bytes(b"\x89PNG old")
    report, sources = report_of(chapter4(), tmp_path)
    copied = tmp_path / "reports" / "figures" / "ch04_mnist_mlp-fashion_mnist" / "eval" / "confusion_matrix.png"
    assert copied.read_bytes() == b"\x89PNG one" and not old.exists()
    assert sources == {"ch04_mnist_mlp-fashion_mnist": "workspace"}
    assert ("![ch04_mnist_mlp-fashion_mnist: eval confusion matrix]"
            "(figures/ch04_mnist_mlp-fashion_mnist/eval/confusion_matrix.png)") in report


def chapters_4_and_6():
    return [t for t in tasks.all_tasks().values()
            if t.chapter in ("pipelines.ch04_feedforward", "pipelines.ch06_word2vec")]


def test_the_report_regenerates_from_its_records_where_models_and_plots_are_not(tmp_path):
    """A fresh clone, or a lost DVC cache: models/, data/embeddings/ and plots/ are gone, metrics/ and reports/ are
    committed. The same report comes back, provenance and pictures included; a changed metrics file drops its
    record rather than show another run's provenance beside it."""
    run = {"seed": 7, "caps": {"max_epochs": 3}, "train_examples": 123, "epochs": 3, "train_seconds": 4.5,
           "machine": {"host_cpu": "Test CPU", "backend": "tensorflow", "tensorflow": "2.21.0"},
           "git_commit": "abcdef1234567", "mlflow_run_id": "0123456789abcdef"}
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.9}, run)
    emb = tmp_path / "data" / "embeddings" / "ch06_glove-ptb"  # chapter 6 keeps its run.json beside the vectors
    emb.mkdir(parents=True)
    (emb / "run.json").write_text(json.dumps({**run, "seed": 8}))
    (tmp_path / "metrics" / "ch06_glove-ptb.json").write_text(json.dumps({"analogy_accuracy": 0.1}))
    (tmp_path / "data" / "raw" / "ptb").mkdir(parents=True)
    for name, kind, pic in [("ch04_mnist_mlp-fashion_mnist", "train", "history.png"),
                            ("ch06_glove-ptb", "eval", "neighbours.md")]:
        (tmp_path / "plots" / name / kind).mkdir(parents=True)
        (tmp_path / "plots" / name / kind / pic).write_bytes(pic.encode())
    first, sources = report_of(chapters_4_and_6(), tmp_path)
    assert set(sources.values()) == {"workspace"}
    assert "| ch04_mnist_mlp-fashion_mnist | 7 | max_epochs=3 | 123 | 3 | 4.5000 | Test CPU; TF 2.21.0 | abcdef1234 |" \
        in first and "| ch06_glove-ptb | 8 |" in first and "`0123456789ab`" in first
    assert "figures/ch04_mnist_mlp-fashion_mnist/train/history.png" in first

    shutil.rmtree(tmp_path / "models")
    shutil.rmtree(tmp_path / "plots")
    shutil.rmtree(tmp_path / "data" / "embeddings")
    again, sources = report_of(chapters_4_and_6(), tmp_path)
    assert again == first and set(sources.values()) == {"kept"}
    figures = tmp_path / "reports" / "figures"
    assert (figures / "ch06_glove-ptb" / "eval" / "neighbours.md").read_bytes() == b"neighbours.md"
    assert (figures / "ch04_mnist_mlp-fashion_mnist" / "train" / "history.png").is_file()

    (tmp_path / "metrics" / "ch04_mnist_mlp-fashion_mnist.json").write_text(json.dumps({"test_accuracy": 0.8}))
    changed, sources = report_of(chapters_4_and_6(), tmp_path)
    assert sources == {"ch04_mnist_mlp-fashion_mnist": "missing", "ch06_glove-ptb": "kept"}
    assert "| ch04_mnist_mlp-fashion_mnist | - | none | - | - | - | ?; TF ? | ? |" in changed
    assert "history.png" not in changed and not (figures / "ch04_mnist_mlp-fashion_mnist").exists()
    assert not (tmp_path / "reports" / "runs" / "ch04_mnist_mlp-fashion_mnist.json").exists()
    assert "| ch06_glove-ptb | 8 |" in changed


def test_the_report_stage_says_where_its_records_came_from(tmp_path, monkeypatch, capsys):
    from stages import report as stage

    monkeypatch.chdir(tmp_path)
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.9})
    assert stage.main([]) == 0
    shutil.rmtree(tmp_path / "models")
    (tmp_path / "metrics" / "ch02_xor.json").write_text(json.dumps({"accuracy": 1.0}))  # new, and no run.json
    assert stage.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith(": 0 from this workspace, 1 kept (metrics unchanged), 1 missing")
    assert out[-1].startswith("no run record for ch02_xor: ")
    assert (tmp_path / "reports" / "results.md").read_text().count("| ch04_mnist_mlp-fashion_mnist | 1 |") == 1


def test_cpu_caps_reads_the_comments_that_name_the_cpu(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    assert cpu_caps("ch04_mnist_mlp", tmp_path / "params.yaml") == ["epochs = 3 (the book: 10; 3 for this CPU)"]
    assert cpu_caps("ch04_mnist_softmax", tmp_path / "params.yaml") == []  # no such section
    assert cpu_caps("ch04_mnist_mlp", tmp_path / "missing.yaml") == []


def test_anchor_is_the_one_github_gives_the_heading():
    assert anchor("Chapter 11: attention, custom regularisers") == "chapter-11-attention-custom-regularisers"
    assert anchor("Appendices A and B: Keras' common classes") == "appendices-a-and-b-keras-common-classes"


def test_stale_marks_reach_every_chapter_table_and_the_summary_headline(tmp_path):
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.9})
    write_result(tmp_path, "ch04_mnist_softmax-fashion_mnist", {"test_accuracy": 0.85})
    ch05 = [t for t in tasks.all_tasks().values() if t.chapter == "pipelines.ch05_cnn"]
    write_result(tmp_path, "ch05_mnist_cnn-fashion_mnist", {"test_accuracy": 0.91})
    report = build(chapter4() + ch05, tmp_path)
    stale = {"train_images@ch05_mnist_cnn-fashion_mnist": "dltm/training.py modified"}
    marked = mark_report(report, stale, {"ch05_mnist_cnn-fashion_mnist": ["metrics/ch05_mnist_cnn-fashion_mnist.json"]})
    rows = [line for line in marked.splitlines() if line.startswith("|") and STALE_MARK in line]
    assert len(rows) == 2  # the chapter 5 table's row and the summary's, whose headline it is
    assert rows[0].startswith("| [Chapter 5") and rows[1].startswith("| ch05_mnist_cnn-fashion_mnist |")
    assert "## Stale results" in marked and marked.index("## Stale results") < marked.index("## Chapter 4")
    assert mark_report(marked, {}, {}) == mark_report(report, {}, {})  # marks of an earlier call are removed


def test_stale_check_while_dvc_is_busy_ends_in_one_line_and_leaves_the_report(tmp_path, monkeypatch, capsys):
    """`make stale` while a `dvc repro` holds DVC's lock on a stage's files: one line that says so (exit
    status 2, no traceback), and reports/results.md untouched."""
    import os
    import subprocess
    import sys

    from stages import report as report_stage

    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  copy:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n"
                                       "    outs: [b.txt]\n")
    subprocess.run([*dvc, "repro", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "results.md").write_text("| copy | 1 |\n")
    repro = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # stands for `dvc repro`
    try:  # what DVC's rwlock records while a repro writes b.txt
        (tmp_path / ".dvc" / "tmp" / "rwlock").write_text(json.dumps(
            {"write": {os.fspath(tmp_path / "b.txt"): {"pid": repro.pid, "cmd": "dvc repro"}}, "read": {}}))
        monkeypatch.chdir(tmp_path)
        line = one_line_error(report_stage.main, ["--stale"], capsys)
    finally:
        repro.kill()
        repro.wait()
    assert line.startswith("error: --stale: DVC is busy") and "b.txt" in line and "run it again when that ends" in line
    assert (tmp_path / "reports" / "results.md").read_text() == "| copy | 1 |\n"


def test_a_record_not_made_from_its_run_json_is_marked_with_its_source(tmp_path):
    """reports/runs/ may hold records recovered from elsewhere (tools/recover_run_records.py): the provenance table
    marks their rows and says where they came from."""
    name = "ch04_mnist_mlp-fashion_mnist"
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps({"test_accuracy": 0.9}))
    (tmp_path / "reports" / "runs").mkdir(parents=True)
    (tmp_path / "reports" / "runs" / f"{name}.json").write_text(json.dumps(
        {"metrics_md5": md5(tmp_path / "metrics" / f"{name}.json"), "source": "an older report", "run": {"seed": 3}}))
    report, sources = report_of(chapter4(), tmp_path)
    assert sources == {name: "kept"}
    assert f"| {name} † | 3 | none |" in report and "† 1 record(s): an older report." in report


def test_every_full_size_line_names_the_tasks_own_keys_and_passes_its_checks():
    """params.yaml's full_size block: each `dvc exp run -S` line the report prints changes keys the task has, to
    values its params specs accept, so the line runs."""
    from pathlib import Path

    from dltm.params import load, section, validate

    params = load(Path(__file__).parents[1] / "params.yaml")
    assert params["full_size"]
    for task_id, values in params["full_size"].items():
        task, sec = tasks.get(task_id), section(params, task_id)
        assert set(values) <= set(sec), task_id
        assert all(sec[k] != v for k, v in values.items()), task_id  # each one changes something
        validate(task_id, {**sec, **values}, task.params)
    # and the -S text the report prints reads back, through the parser DVC hands it to, as those values
    report = build([tasks.get(t) for t in params["full_size"]], Path(__file__).parents[1])
    printed = [a for line in re.findall(r"`dvc exp run (.*)` \|", report) for a in shlex.split(line) if a != "-S"]
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(printed)}
    assert parsed == {f"{t}.{k}": v for t, values in params["full_size"].items() for k, v in values.items()}


def test_the_full_size_section_gives_the_line_beside_the_capped_result(tmp_path):
    full = "full_size:\n  ch04_mnist_mlp: {epochs: 10, hidden_units: [256, 128]}\n"
    (tmp_path / "params.yaml").write_text(PARAMS + full)
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.80})
    section = build(chapter4(), tmp_path).split("## At the book's or the paper's size")[1].split("\n## ")[0]
    assert ("| ch04_mnist_mlp | ch04_mnist_mlp-fashion_mnist: 0.8000 | 0.8833 | epochs = 3, hidden_units = [128] | "
            "`dvc exp run -S ch04_mnist_mlp.epochs=10 -S 'ch04_mnist_mlp.hidden_units=[256,128]'` |") in section
    (tmp_path / "params.yaml").write_text(PARAMS)  # no full_size block: no section
    assert "## At the book's" not in build(chapter4(), tmp_path)


def test_a_bad_record_is_one_line_naming_it_and_leaves_the_report_as_it_was(tmp_path, monkeypatch, capsys):
    """A committed record with a merge conflict in it: the stage stops with one line naming the file, and the
    report, the records and the figures stay as they were."""
    from stages import report as stage

    monkeypatch.chdir(tmp_path)
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.9})
    (tmp_path / "plots" / "ch04_mnist_mlp-fashion_mnist" / "train").mkdir(parents=True)
    (tmp_path / "plots" / "ch04_mnist_mlp-fashion_mnist" / "train" / "history.png").write_bytes(b"png")
    assert stage.main([]) == 0
    shutil.rmtree(tmp_path / "models")
    reports = tmp_path / "reports"
    before = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    record = reports / "runs" / "ch04_mnist_mlp-fashion_mnist.json"
    for bad in ("<<<<<<< HEAD\n{}", json.dumps({"metrics_md5": "x", "source": "y"})):
        record.write_text(bad)
        before[record] = record.read_bytes()
        message = one_line_error(stage.main, [], capsys)
        assert message.startswith("error: reports/runs/ch04_mnist_mlp-fashion_mnist.json: ")
        assert {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()} == before


def test_the_committed_report_regenerates_in_a_checkout_where_no_stage_has_run(tmp_path):
    """What reports/runs/ is for: in a copy of the repository's files alone (a fresh clone: no models/, plots/ or
    data/ beyond their placeholders), `dvc repro --single-item report` gives back every provenance row and
    every picture of the committed report."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .conftest import REPO

    ws = tmp_path / "clone"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    listed += subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
                             ).stdout.splitlines()  # tracked placeholders under ignored folders: plots/.keep
    for rel in set(listed):
        if (REPO / rel).is_file():
            (ws / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, ws / rel)
    assert not (ws / "models" / "ch03_sine_fit").exists() and (ws / "plots").is_dir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", "report"], cwd=ws, env=env,
                          capture_output=True, text=True)  # the stage's `python` is this one
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def provenance_and_pictures(text):
        text = text.replace(STALE_MARK, "")
        rows = text.split("## Where each number came from")[1].split("\n## ")[0].splitlines()
        return [r for r in rows if r.startswith("| ")], re.findall(r"\(figures/[^)]+\)", text)

    committed = provenance_and_pictures((REPO / "reports" / "results.md").read_text(encoding="utf-8"))
    again = provenance_and_pictures((ws / "reports" / "results.md").read_text(encoding="utf-8"))
    assert again == committed and len(committed[0]) > 100 and not any("| - | none | - |" in r for r in again[0])
    assert "0 from this workspace" in proc.stdout and ", 0 missing" in proc.stdout


def test_a_folder_of_outputs_the_checkout_lacks_is_missing_data_not_a_change(tmp_path):
    """A fresh clone: the report depends on models/, a folder of the train stages' outputs that holds only its
    committed placeholder there. DVC calls it modified; it is missing data. Once the checkout has outputs in it
    that differ from what dvc.lock recorded, it is a change."""
    import subprocess
    import sys

    from dltm.staleness import stale_stages

    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  train:\n    cmd: mkdir -p models/m && cp a.txt models/m/w.txt\n    deps: [a.txt]\n    outs: [models/m]\n"
        "  report:\n    cmd: ls -R models > r.txt\n    deps: [models]\n    outs: [r.txt]\n")
    subprocess.run([*dvc, "repro", "-q"], cwd=tmp_path, check=True)
    assert stale_stages(tmp_path) == {}
    shutil.rmtree(tmp_path / "models" / "m")
    (tmp_path / "models" / ".keep").write_text("")  # what a clone has
    assert stale_stages(tmp_path) == {}
    (tmp_path / "models" / "m").mkdir()
    (tmp_path / "models" / "m" / "w.txt").write_text("another model\n")
    assert stale_stages(tmp_path) == {"report": "models modified"}
