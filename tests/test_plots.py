"""Comparing runs the DVC way, as DVC 3 reads this repository's dvc.yaml, Makefile and .dvc/: `dvc plots show` and
`dvc plots diff` draw one chart per task, offline; `dvc metrics show` lists the tasks that ran and is quiet about
the others; `make experiments` prints a table a person can read.

Each test works in a scratch git + DVC checkout of those files, with small synthetic results in the project's
names: history.csv has ``epoch`` (from 1), ``train_<m>``, ``val_<m>`` only when the task holds out a validation
split, ``test_<m>`` when it watches the test split each epoch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dltm import tasks

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGE = REPO / ".dvc" / "plots" / "offline.html"
DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node draws the charts headless")


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], cwd)


def commit(ws: Path) -> None:
    run(["git", "add", "-A"], ws)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], ws)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A git + DVC checkout holding the repository's DVC configuration and nothing else."""
    ws = tmp_path / "repo"
    ws.mkdir()
    run(["git", "init", "-q"], ws)
    dvc("init", "-q", cwd=ws)
    for name in ("dvc.yaml", "params.yaml", "Makefile"):
        shutil.copy2(REPO / name, ws / name)
    shutil.copy2(REPO / ".dvc" / "config", ws / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "plots", ws / ".dvc" / "plots")
    (ws / "reports").mkdir()
    return ws


def history(ws: Path, plot: str, rows: dict[str, list[float]], path: str = "plots/{}/train/history.csv") -> None:
    """A history.csv as the tasks write it: epoch from 1, then the given columns."""
    file = ws / path.format(plot)
    file.parent.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(rows.values())))
    lines = [",".join(["epoch", *rows])] + [",".join([str(i + 1), *(f"{v[i]:g}" for v in rows.values())])
                                            for i in range(n)]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")


WRITTEN = {  # what some tasks write with their committed params, and one with a validation split
    "ch07_kim_cnn": {"train_accuracy": [0.6, 0.8], "train_loss": [0.7, 0.4], "test_accuracy": [0.7, 0.73],
                     "test_loss": [0.6, 0.55]},
    "ch09_lstm_sentiment": {"train_accuracy": [0.6, 0.8, 0.9], "train_loss": [0.7, 0.4, 0.3],
                            "val_accuracy": [0.65, 0.7, 0.72], "val_loss": [0.6, 0.55, 0.5]},
    "ch08_ptb_lm": {"train_ce": [6.7, 6.2], "train_loss": [6.7, 6.2], "train_perplexity": [826.9, 510.9],
                    "val_ce": [6.4, 5.9], "val_perplexity": [622.6, 376.8], "test_ce": [6.4, 5.9],
                    "test_perplexity": [573.7, 353.8]},
    "ch03_breakfast_keras": {"train_loss": [250000.0, 120.0, 3.0]},
    "ch06_glove-ptb": {"train_loss": [0.09, 0.05]},
}
DRAWN = {  # what the curves template draws of them: (panel, split) of each line
    "ch07_kim_cnn": {("loss", "train"), ("loss", "test"), ("accuracy", "train"), ("accuracy", "test")},
    "ch09_lstm_sentiment": {("loss", "train"), ("loss", "val"), ("accuracy", "train"), ("accuracy", "val")},
    "ch08_ptb_lm": {("perplexity", "train"), ("perplexity", "val"), ("perplexity", "test")},
    "ch03_breakfast_keras": {("loss", "train")},
    "ch06_glove-ptb": {("loss", "train")},
}


def write_histories(ws: Path) -> None:
    for plot, rows in WRITTEN.items():
        history(ws, plot, rows)
    losses = {name: [2.3, 1.0] for name in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam")}
    history(ws, "ch04_optimizer_comparison", losses, "plots/{}/train/losses.csv")


def x_field(spec: dict) -> str:
    return (spec.get("spec") or spec)["encoding"]["x"]["field"]


def curves() -> dict[str, dict]:
    return {k: v for p in DVC_YAML["plots"] if isinstance(p, dict) for k, v in p.items()}


def test_the_curves_name_only_train_columns_and_one_chart_per_task():
    v = {k: items for d in DVC_YAML["vars"] for k, items in d.items()}
    stages = tasks._stages_in(REPO / "dvc.yaml")
    own = {t for (t, _, _), name in stages.items() if "@" not in name}
    by_variant = {f"{t}-{var}" for (t, var, _), name in stages.items() if var and name.startswith(
        ("train_transformer_classifier@", "evaluate_transformer_classifier@", "train_babi@", "train_images@"))}
    ids = {*v["tasks"], *v["text_tasks"], *v["translation_tasks"], *(f"ch07_kim2014-{k}" for k in v["kim_variants"]),
           *(f"{e}-{c}" for e in v["embeddings"] for c in v["corpora"]), *own, *by_variant}
    plots = curves()
    # besides one chart per task: a second view of a task's own models (<task>-<model>)
    assert {p for p in plots if p not in ids} == {"ch03_boston_regression-scaled", "ch12_bert_finetune-imdb-pretrained",
                                                  "ch12_bert_finetune-imdb-random"}, "a chart per task, named by it"
    for plot, props in plots.items():
        assert props["x"] == "epoch", plot
        if props.get("template") == "curves":
            # DVC drops a whole chart whose y names a column its file lacks; which of val_/test_ a task writes
            # depends on its params, so y names its train_ columns and the template adds what the file has.
            (file, columns), = props["y"].items()
            assert file.endswith("history.csv") and all(c.startswith("train_") for c in columns), plot
    assert sum(props.get("template") == "curves" for props in plots.values()) >= 30


def test_each_task_gets_one_chart_titled_by_it_with_epochs_on_x(ws):
    write_histories(ws)
    shown = json.loads(dvc("plots", "show", "--json", cwd=ws).stdout)
    drawn = {k: v for k, v in shown["data"].items() if v}
    assert set(drawn) == set(WRITTEN) | {"ch04_optimizer_comparison"}
    for plot, renders in drawn.items():
        (render,) = renders
        assert render["type"] == "vega"
        assert render["content"]["title"]["text"] == plot
        assert x_field(render["content"]) == "epoch"
    # the other tasks did not run here: their files are missing, and no chart failed on a column
    assert {e["type"] for e in shown["errors"]} == {"FileNotFoundError"}
    assert {e["name"] for e in shown["errors"]}.isdisjoint(drawn)


DRAW_JS = r"""
// node draw.js page.html spec.json ...: runs the page's inline scripts, draws each Vega-Lite spec headless and
// prints the libraries' versions and, per spec, the points of each line drawn by "panel split revision"
const fs = require('fs'), vm = require('vm');
const html = fs.readFileSync(process.argv[2], 'utf8');
const ctx = vm.createContext({console, setTimeout, clearTimeout, structuredClone});
ctx.self = ctx.globalThis = ctx;
for (const m of html.matchAll(/<script>([\s\S]*?)<\/script>/g)) vm.runInContext(m[1], ctx);
const {vega, vegaLite, vegaEmbed} = ctx;
(async () => {
  const charts = [];
  for (const file of process.argv.slice(3)) {
    const spec = vegaLite.compile(JSON.parse(fs.readFileSync(file, 'utf8'))).spec;
    const view = new vega.View(vega.parse(spec), {renderer: 'none'});
    await view.runAsync();
    const lines = {};
    (function walk(mark, panel) {
      for (const item of mark.items) {
        if (mark.marktype === 'line') {
          const key = [panel, item.datum.split, item.datum.rev].join(' ');
          lines[key] = (lines[key] || 0) + 1;
        } else if (mark.marktype === 'group') {
          const inner = item.datum && item.datum.metric !== undefined ? item.datum.metric : panel;
          for (const child of item.items || []) walk(child, inner);
        }
      }
    })(view.scenegraph().root, null);
    charts.push(lines);
  }
  const versions = {vega: vega.version, 'vega-lite': vegaLite.version, 'vega-embed': vegaEmbed.version};
  console.log(JSON.stringify({versions, charts}));
})();
"""


def draw(ws: Path, shown: dict) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The lines each chart of ``dvc plots show --json`` draws, with the offline page's own scripts."""
    (ws / "draw.js").write_text(DRAW_JS, encoding="utf-8")
    names = sorted(k for k, v in shown["data"].items() if v)
    for i, name in enumerate(names):
        (ws / f"spec{i}.json").write_text(json.dumps(shown["data"][name][0]["content"]), encoding="utf-8")
    out = json.loads(run(["node", "draw.js", str(PAGE), *(f"spec{i}.json" for i in range(len(names)))], ws).stdout)
    return out["versions"], dict(zip(names, out["charts"], strict=True))


@needs_node
def test_each_train_curve_is_drawn_with_the_held_out_splits_its_file_has(ws):
    write_histories(ws)
    shown = json.loads(dvc("plots", "show", "--json", *WRITTEN, cwd=ws).stdout)
    versions, charts = draw(ws, shown)
    for plot, lines in charts.items():
        assert {tuple(k.split()[:2]) for k in lines} == DRAWN[plot], plot
        assert set(lines.values()) == {len(next(iter(WRITTEN[plot].values())))}, plot  # a point per epoch
    # the page's scripts are those DVC would load from its CDN
    from dvc_render.vega import VegaRenderer

    cdn = dict(pkg.rsplit("@", 1) for pkg in re.findall(r'cdn\.jsdelivr\.net/npm/([^"]+)"', VegaRenderer.SCRIPTS))
    assert versions == cdn, "dvc-render loads other versions now: run sh .dvc/plots/build_offline_html.sh"


@needs_node
def test_plots_diff_draws_each_revision_with_its_own_splits(ws):
    write_histories(ws)
    commit(ws)  # the baseline watched the test split; the experiment holds out a validation split instead
    kim = WRITTEN["ch07_kim_cnn"]
    history(ws, "ch07_kim_cnn", {**{k: v for k, v in kim.items() if k.startswith("train_")},
                                 "val_accuracy": [0.6, 0.7], "val_loss": [0.65, 0.6]})
    diff = dvc("plots", "diff", "HEAD", "--json", "--targets", "ch07_kim_cnn", "ch08_ptb_lm", cwd=ws)
    shown = json.loads(diff.stdout)
    assert "errors" not in shown
    _, charts = draw(ws, shown)
    assert set(charts["ch07_kim_cnn"]) == {f"{m} {s} {rev}" for m in ("loss", "accuracy")
                                           for s, rev in (("train", "HEAD"), ("test", "HEAD"),
                                                          ("train", "workspace"), ("val", "workspace"))}
    assert set(charts["ch08_ptb_lm"]) == {f"perplexity {s} {rev}" for s in ("train", "val", "test")
                                          for rev in ("HEAD", "workspace")}


def test_the_page_draws_without_internet(ws):
    write_histories(ws)
    proc = dvc("plots", "show", "-o", "out", "ch07_kim_cnn", cwd=ws)
    assert proc.stderr == ""
    page = (ws / "out" / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc=", page), "a script from the network"
    assert "vegaEmbed(" in page and '"ch07_kim_cnn"' in page
    bundled = re.findall(r"<!-- ([\w-]+)@([\d.]+): package/build/\1\.min\.js, BSD-3-Clause", page)
    assert [name for name, _ in bundled] == ["vega", "vega-lite", "vega-embed"]
    assert page.count("<script>") == 3  # the three libraries, inline
    for name, _ in bundled:
        assert "Redistribution and use in source and binary forms" in (PAGE.parent / f"LICENSE.{name}").read_text()


def test_metrics_show_lists_the_tasks_that_ran_and_says_nothing_of_the_others(ws):
    (ws / "metrics").mkdir()
    (ws / "metrics" / "ch07_kim_cnn.json").write_text('{"test_accuracy": 0.729, "n_examples": 1000}')
    (ws / "metrics" / "ch08_ptb_lm.json").write_text('{"test_perplexity": 353.8, "val_perplexity": 376.8}')
    proc = dvc("metrics", "show", "--json", cwd=ws)
    assert proc.stderr == ""  # no "DVC failed to load some metrics" for MNIST, HAR, text8 ...
    (shown,) = json.loads(proc.stdout).values()
    assert "error" not in shown
    assert set(shown["data"]) == {"metrics/ch07_kim_cnn.json", "metrics/ch08_ptb_lm.json"}

    commit(ws)
    (ws / "metrics" / "ch07_kim_cnn.json").write_text('{"test_accuracy": 0.763, "n_examples": 1000}')
    proc = dvc("metrics", "diff", "--json", cwd=ws)
    assert proc.stderr == ""
    diff = json.loads(proc.stdout)
    assert diff == {"metrics/ch07_kim_cnn.json": {"test_accuracy": {"old": 0.729, "new": 0.763,
                                                                    "diff": pytest.approx(0.034)}}}


def table(markdown: str) -> list[list[str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in markdown.splitlines()
            if line.startswith("|")]
    return [rows[0], *rows[2:]]


@pytest.mark.skipif(shutil.which("make") is None, reason="make experiments")
def test_make_experiments_prints_the_seed_caps_and_what_differs(ws):
    from dltm.tasks import all_tasks

    tasks = {f"{t.id}-{v}" if v else t.id: t.metric for t in all_tasks().values() for v in t.variants or [None]}
    (ws / "metrics").mkdir()

    def results(score: float, loss: float) -> None:
        for name, metric in tasks.items():
            values = {metric: score, "test_loss": loss, "test_f1_macro": score, "n_examples": 10}
            (ws / "metrics" / f"{name}.json").write_text(json.dumps(values))

    results(0.5, 1.0)
    commit(ws)
    results(0.75, 0.6)  # every result moved, as after `dvc exp run -S run.seed=2`, and one param
    params = (ws / "params.yaml").read_text()
    kim = re.compile(r"(?m)^(ch07_kim_cnn:.*\n(?:  .*\n)*?  filter_nums: )10\b")
    assert kim.search(params)
    (ws / "params.yaml").write_text(kim.sub(r"\g<1>100", params))

    proc = run(["make", f"VENV={BIN.parent}", "-o", "setup", "experiments"], ws)
    printed = table(proc.stdout)
    assert printed == table((ws / "reports" / "experiments.md").read_text())
    header, *rows = printed
    assert [r[0] for r in rows][0] == "workspace" and len(rows) == 2
    assert {"Experiment", "run.seed", "run.max_epochs", "run.max_train_examples"} <= set(header)
    changed = set(header) - {"Experiment", "run.seed", "run.max_epochs", "run.max_train_examples"}
    params_shown = {c for c in changed if "." in c and ":" not in c}
    assert params_shown == {"ch07_kim_cnn.filter_nums"}
    metrics_shown = sorted(c.rsplit(":", 1)[-1] for c in changed - params_shown)
    assert metrics_shown == sorted(tasks.values()), "each task's headline metric, and no other"
    for row in rows:
        assert set(row[header.index(c)] for c in changed - params_shown) == ({"0.75"} if row[0] == "workspace"
                                                                             else {"0.5"})
