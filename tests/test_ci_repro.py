""".ci/repro's pieces that need no pipeline run: profiles as ``-S`` overrides, and the summary of DVC's output
(the whole script runs on fresh clones in tests/test_pipeline.py)."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import pytest

from .conftest import REPO


def load_ci_repro():
    loader = importlib.machinery.SourceFileLoader("ci_repro", str(REPO / ".ci" / "repro"))
    spec = importlib.util.spec_from_loader("ci_repro", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_a_profile_becomes_set_param_overrides_of_dvc_exp_run():
    ci = load_ci_repro()
    args = ci.profile_overrides("quick")
    pairs = dict(a.split("=", 1) for a in args[1::2])
    assert args[::2] == ["-S"] * len(pairs)
    assert pairs["run.max_epochs"] == "1" and pairs["prepare.mr.cv_folds"] == "5"


def test_an_unknown_profile_is_one_line_and_exit_status_2(capsys):
    ci = load_ci_repro()
    with pytest.raises(SystemExit) as e:
        ci.profile_overrides("huge")
    assert e.value.code == 2
    assert "error: --profile huge: not in .ci/profiles.yaml (have: quick)" in capsys.readouterr().err


def test_the_summary_reads_which_stages_ran_were_restored_or_unchanged_from_dvcs_output():
    ci = load_ci_repro()
    log = ("Stage 'download@mr' didn't change, skipping\n"
           "Stage 'train@ch02_xor' is cached - skipping run, checking out outputs\n"
           "Running stage 'evaluate@ch02_xor':\n> python -m stages.evaluate ch02_xor\n"
           "Running stage 'report':\n> python -m stages.report\nUpdating lock file 'dvc.lock'\n")
    assert ci.stages_summary(log) == {"ran": ["evaluate@ch02_xor", "report"],
                                      "restored from the run-cache": ["train@ch02_xor"],
                                      "unchanged": ["download@mr"]}
