"""benchmarks/gpu_check.py on CPU at toy sizes, as it runs on a GPU machine: JAX, and no TensorFlow, MLflow or
DVC on the import path (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import BUDGET_FIT, estimate, plan_epochs

from .conftest import REPO, synthetic_mr, write_corpora

jax = pytest.importorskip("jax", reason="the GPU check runs on JAX; install the jax extra (make setup does)")

BLOCKER = '''
import importlib.abc, sys

class Absent(importlib.abc.MetaPathFinder):
    """What the GPU machine lacks: importing it fails as if it were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "mlflow", "dvc"}:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None

sys.meta_path.insert(0, Absent())
'''


def test_plan_epochs_runs_whole_runs_or_skips_and_cuts_only_the_budget_fit_ones():
    assert plan_epochs("ptb_small", 13, 1, None, 1.0) == 13  # nothing timed yet: the run is tried whole
    assert plan_epochs("ptb_small", 13, 1, 2.0, 100.0) == 13
    assert plan_epochs("kim_rand_10_fold", 25, 10, 1.0, 100.0) is None  # 250 s do not fit in 100
    fit = next(iter(BUDGET_FIT))
    assert plan_epochs(fit, 39, 1, 10.0, 100.0) == 9  # 90% of 100 s at 10 s per epoch
    assert plan_epochs(fit, 39, 1, 10.0, 5.0) is None


def test_an_untimed_run_is_estimated_from_the_same_tasks_last_run_scaled_by_width():
    timed = {"ptb_small": ("ch08_ptb_lm", {"hidden_size": 200}, 2.0), "kim": ("ch07_kim2014", {}, 1.5)}
    assert estimate("ptb_medium", "ch08_ptb_lm", {"hidden_size": 650}, timed) == pytest.approx(2.0 * 3.25 ** 2)
    assert estimate("kim_10", "ch07_kim2014", {}, timed) == 1.5
    assert estimate("ptb_small", "ch08_ptb_lm", {"hidden_size": 200}, {}) is None


def test_gpu_check_trains_through_the_stages_without_tensorflow_mlflow_or_dvc(tmp_path):
    data = tmp_path / "data"
    synthetic_mr(data / "mr", n_per_class=120)
    write_corpora(data)
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCKER)
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(block), "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--data", str(data),
                           "--size", "tiny", "--backend", "jax", "--out", str(out), "--work", str(tmp_path / "w"),
                           "--runs", "ptb_small", "kim_rand_one_fold"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["backend"] == "jax" and report["machine"]["backend"] == "jax"
    assert set(report["runs"]) == {"ptb_small", "kim_rand_one_fold"} and not report["skipped"]
    ptb = report["runs"]["ptb_small"]
    assert ptb["settings"]["stateful"] is True and ptb["settings"]["hidden_size"] == 8
    assert 1.0 < ptb["metrics"]["test_perplexity"] < 1e4 and ptb["seconds_per_epoch"] > 0
    kim = report["runs"]["kim_rand_one_fold"]
    assert 0.0 <= kim["metrics"]["test_accuracy"] <= 1.0 and kim["run"]["epochs"] == 1
    assert "warning: MLflow: nothing was logged" in proc.stderr  # no MLflow there: said once per stage, no crash
    assert "No module named 'tensorflow'" not in proc.stderr
    assert Path(tmp_path / "w" / "models" / "ch08_ptb_lm" / "model.keras").is_file()
