"""reports/results.md (dltm/report.py, stages/report.py): the summary by chapter, the chapters' sections, the
pictures copied beside the report, and the stale marks of every chapter's table (dltm/staleness.py)."""

import json

from dltm import tasks
from dltm.report import anchor, build, copy_figures, cpu_caps
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


def test_pictures_are_copied_beside_the_report_and_shown_inline(tmp_path):
    write_result(tmp_path, "ch04_mnist_mlp-fashion_mnist", {"test_accuracy": 0.9})
    png = tmp_path / "plots" / "ch04_mnist_mlp-fashion_mnist" / "eval" / "confusion_matrix.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(b"\x89PNG one")
    old = tmp_path / "reports" / "figures" / "gone" / "train" / "old.png"  # a picture of an earlier report
    old.parent.mkdir(parents=True)
    old.write_bytes(b"\x89PNG old")
    report = build(chapter4(), tmp_path)
    copied = copy_figures(tmp_path) / "ch04_mnist_mlp-fashion_mnist" / "eval" / "confusion_matrix.png"
    assert copied.read_bytes() == b"\x89PNG one" and not old.exists()
    assert ("![ch04_mnist_mlp-fashion_mnist: eval confusion matrix]"
            "(figures/ch04_mnist_mlp-fashion_mnist/eval/confusion_matrix.png)") in report


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
