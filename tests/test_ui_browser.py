"""The MLflow UI in a real headless browser (issue 12): what a new user sees after two experiments.

Two runs of ``ch07_simple_classifier`` (the book's ten documents, ~20 s each), trained and evaluated by the project's
own stages as two DVC experiments (``DVC_EXP_NAME``) with different epochs, go to a store in a temporary folder;
``make ui`` serves it on a free port of 127.0.0.1, and headless Chromium (a fresh profile each page: a browser that
has never opened the UI) renders the experiment's runs table, its charts, the compare page and the compare page's
``train_loss`` plot. The checks read the rendered DOM; the screenshots are kept (their paths are printed) for a person
to look at: ``pytest tests/test_ui_browser.py -s``.

Skips, with the reason, where no ``chromium`` or ``chromium-browser`` is installed (Debian: ``apt-get install
chromium``). Every wait is bounded; the server and each browser are stopped by the process groups this test started.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from .conftest import run_task
from .test_tracking_server import child_env, free_port, make_ui, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: neither chromium nor chromium-browser "
                                                          "is on PATH (Debian: apt-get install chromium)")

TASK = "ch07_simple_classifier"
EXPERIMENTS = {"short-run": 5, "long-run": 8}  # DVC experiment name -> epochs
# The side navigation of an experiment in MLflow 3's GenAI view; the model-training view has Runs, Models, Traces.
GENAI_NAV = ("Evaluation runs", "Sessions", "Judges")
PAGE_TIMEOUT_S = 90  # real seconds for one page, whatever the virtual time budget


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM: no scripts or styles, tags as spaces, whitespace collapsed."""
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()


def page_title(dom: str) -> str:
    m = re.search(r"<title[^>]*>(.*?)</title>", dom, re.S | re.I)
    return html.unescape(m.group(1)).strip() if m else ""


def hrefs(dom: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', dom)]


class Browser:
    """Headless Chromium: each page in a fresh profile, its DOM after ``budget_ms`` of virtual time, a screenshot."""

    def __init__(self, base_url: str, shots: Path):
        self.base_url, self.shots = base_url, shots
        self.pages: dict[tuple[str, int], str] = {}

    def open(self, route: str, name: str, budget_ms: int = 20000, size: str = "1920,1200") -> str:
        """The DOM of ``base_url/route`` (a hash route such as ``#/experiments/1``); the screenshot <name>.png."""
        if (route, budget_ms) in self.pages:
            return self.pages[route, budget_ms]
        shot = self.shots / f"{name}.png"
        with tempfile.TemporaryDirectory(prefix="dltm-chromium-") as profile:
            cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--no-first-run", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                   f"--user-data-dir={profile}", f"--window-size={size}", f"--virtual-time-budget={budget_ms}",
                   f"--screenshot={shot}", "--dump-dom", f"{self.base_url}/{route}"]
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
            try:
                out, err = proc.communicate(timeout=PAGE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate(timeout=20)
                pytest.fail(f"chromium did not finish {route} in {PAGE_TIMEOUT_S} s")
            finally:
                with contextlib.suppress(ProcessLookupError):  # helpers the browser left behind
                    os.killpg(proc.pid, signal.SIGKILL)
        dom = out.decode("utf-8", "replace")
        assert proc.returncode == 0 and "<body" in dom, f"chromium {route}: {proc.returncode}\n{err.decode()[-2000:]}"
        print(f"screenshot of {route}: {shot}")
        self.pages[route, budget_ms] = dom
        return dom


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """Two runs of the task in a fresh store, ``make ui`` on it, a browser; yields a namespace of them."""
    import mlflow

    work = tmp_path_factory.mktemp("ui-store")
    with pytest.MonkeyPatch.context() as mp:
        for exp, epochs in EXPERIMENTS.items():
            mp.setenv("DVC_EXP_NAME", exp)
            run_task(work, mp, TASK, {f"{TASK}.epochs": epochs})
    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], f"tags.task = '{TASK}'")
    assert len(runs) == 2 and len({r.info.experiment_id for r in runs}) == 1
    experiment = client.get_experiment(runs[0].info.experiment_id)
    names = {r.data.tags["dvc_exp_name"]: r.info.run_name for r in runs}
    port = free_port()
    shots = tmp_path_factory.mktemp("ui-screenshots")
    with serving(make_ui(Path(sys.prefix), port), port, work, work / "ui.log",
                 env=child_env(MLFLOW_TRACKING_URI=uri), timeout=90) as url:
        yield SimpleNamespace(url=url, client=client, experiment=experiment, runs=runs, names=names, shots=shots,
                              browser=Browser(url, shots), log=work / "ui.log")


def test_the_runs_carry_the_projects_names_and_curves(ui):
    assert ui.experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    for exp, name in ui.names.items():
        assert name.startswith(f"{TASK} · {exp}"), name
    assert len(set(ui.names.values())) == 2
    for run in ui.runs:  # a train_loss point per epoch
        epochs = EXPERIMENTS[run.data.tags["dvc_exp_name"]]
        steps = {m.step for m in ui.client.get_metric_history(run.info.run_id, "train_loss")}
        assert set(range(1, epochs + 1)) <= steps, steps
    assert ui.log.read_text().startswith("MLflow UI of sqlite:///")  # the banner of make ui


def test_the_loss_curve_starts_at_the_first_epoch(ui):
    for run in ui.runs:
        history = ui.client.get_metric_history(run.info.run_id, "train_loss")
        assert min(m.step for m in history) == 1, sorted((m.step, round(m.value, 4)) for m in history)


@pytest.mark.xfail(strict=True, reason="MLflow 3.17's UI ignores the experiment's mlflow.experimentKind tag: a browser "
                   "that has never switched opens every experiment in the GenAI view (Overview: Traces, Latency, "
                   "Token Usage); the 'Model training' switch at the top left of the sidebar (remembered by the "
                   "browser) or ?workflowType=machine_learning in the URL shows the runs")
def test_a_new_user_opens_the_experiment_in_the_model_training_view(ui):
    """The experiment as a user opens it: by its link in the experiments list."""
    exp_id = ui.experiment.experiment_id
    listing = ui.browser.open("#/experiments", "experiments_list")
    assert ui.experiment.name in page_text(listing)
    assert f"#/experiments/{exp_id}" in hrefs(listing)
    dom = ui.browser.open(f"#/experiments/{exp_id}", "experiment_as_opened")
    text = page_text(dom)
    assert ui.experiment.name in text
    assert not [m for m in GENAI_NAV if m in text], f"GenAI view: {page_title(dom)!r}: {text[:400]}"
    assert page_title(dom).startswith(f"Runs - Experiment {exp_id}")


def test_the_model_training_view_lists_both_runs_by_name(ui):
    """The experiment as the 'Model training' switch opens it (its route, as the UI's JS bundle builds it)."""
    exp_id = ui.experiment.experiment_id
    dom = ui.browser.open(f"#/experiments/{exp_id}?workflowType=machine_learning", "runs_table")
    text = page_text(dom)
    assert page_title(dom).startswith(f"Runs - Experiment {exp_id}"), page_title(dom)
    assert f"#/experiments/{exp_id}" in hrefs(dom)  # the breadcrumb: the route is the experiment's
    assert not [m for m in GENAI_NAV if m in text], text[:400]
    assert "Model training" in text and "2 matching runs" in text, text[:600]
    for name in ui.names.values():
        assert name in text
    for run in ui.runs:
        assert f"#/experiments/{exp_id}/runs/{run.info.run_id}" in hrefs(dom)


def test_the_charts_draw_a_curve_per_run(ui):
    """The runs page's chart view: train_accuracy per epoch, one line per run, the legend naming both runs."""
    exp_id = ui.experiment.experiment_id
    dom = ui.browser.open(f"#/experiments/{exp_id}/runs?compareRunsMode=CHART&workflowType=machine_learning",
                          "runs_charts", budget_ms=60000)
    text = page_text(dom)
    assert "Model metrics" in text, text[:600]
    for name in ui.names.values():
        assert f"{name} (train_accuracy)" in text, text[:2000]  # a line chart's legend: run (metric)


def test_the_compare_page_sets_the_runs_and_their_loss_curves_side_by_side(ui):
    exp_id = ui.experiment.experiment_id
    run_ids = [r.info.run_id for r in ui.runs]
    # the route as the UI's JS bundle builds it (getCompareRunPageRoute): JSON lists of run and experiment ids
    route = (f"#/compare-runs?runs={quote(json.dumps(run_ids, separators=(',', ':')))}"
             f"&experiments={quote(json.dumps([exp_id]))}")
    dom = ui.browser.open(route, "compare_runs")
    text = page_text(dom)
    assert "Comparing 2 Runs from 1 Experiment" in text, text[:600]
    for name in ui.names.values():
        assert name in text
    assert f"{TASK}.epochs" in text and "train_loss" in text and "train_accuracy" in text
    epochs = re.search(rf"{re.escape(TASK)}\.epochs (\d+) (\d+)", text)
    assert epochs and sorted(map(int, epochs.groups())) == sorted(EXPERIMENTS.values()), text[:3000]
    # the compare page's "Plot chart" link of train_loss: the curves of both runs in one plot
    plot = [h for h in hrefs(dom) if h.startswith("#/metric") and "train_loss" in h]
    assert plot, "no Plot chart link for train_loss"
    dom = ui.browser.open(plot[0], "train_loss_curves")
    text = page_text(dom)
    assert "Completed Runs 2/2" in text and "Step" in text, text[:600]
    for name in ui.names.values():
        assert f"{name} (train_loss)" in text, text[:2000]

