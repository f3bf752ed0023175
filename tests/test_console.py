"""What a stage prints and what it imports to start (issue 12): no TensorFlow start-up noise unless
``DLTM_VERBOSE`` asks for it, one result line from ``evaluate``, and no Keras in a stage whose task needs none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dltm
from dltm import tasks
from stages.evaluate import result_line

from .conftest import REPO, run_task

# what `import tensorflow` and the first device listing wrote on this project's CPU machine (TF 2.21), before
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = ("I0000 00:00:1796038964.297530   24291 port.cc:153] oneDNN custom operations are on. You may see slightly "
          "different numerical results due to floating-point round-off errors from different computation orders. "
          "To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
CUDA = ("I0000 00:00:1796038964.297855   24291 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
        "will not be used.\n")
CPU_FEATURES = ("I0000 00:00:1796038993.005264   24891 cpu_feature_guard.cc:227] This TensorFlow binary is "
                "optimized to use available CPU instructions in performance-critical operations.\n"
                "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow "
                "with the appropriate compiler flags.\n")
CUINIT = ("E0000 00:00:1796038972.807072   24291 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          "Failed call to cuInit: UNKNOWN ERROR (303)\n")
WARN = "W0530 12:34:56.789012   24291 some_op.cc:12] a warning\n"
PY_WARNING = "/x/keras/src/layers/core.py:93: UserWarning: Do not pass an `input_shape`\n  super().__init__()\n"


def python_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python without the switches under test (unless given)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DLTM_VERBOSE", "TF_CPP_MIN_LOG_LEVEL", *dltm.QUIET_MLFLOW)}
    return {**env, **extra}


# ---- the filter of TensorFlow's start-up messages ---------------------------------------------------------------


def test_the_start_up_messages_go_at_the_default_level_and_other_lines_stay():
    noise = BANNER + ONEDNN + CUDA + CPU_FEATURES + BANNER + ONEDNN + CUDA + CUINIT
    assert dltm.drop_tf_log_lines(noise, 3) == ""
    assert dltm.drop_tf_log_lines(noise + PY_WARNING, 3) == PY_WARNING  # a Python warning is no continuation
    assert dltm.drop_tf_log_lines("plain line\n" + CPU_FEATURES + PY_WARNING + "Traceback\n", 3) == \
        "plain line\n" + PY_WARNING + "Traceback\n"


def test_the_level_is_tensorflows_scale():
    noise = BANNER + ONEDNN + WARN + CUINIT
    assert dltm.drop_tf_log_lines(noise, 0) == noise
    assert dltm.drop_tf_log_lines(noise, 1) == WARN + CUINIT  # the banner goes with the message after it
    assert dltm.drop_tf_log_lines(noise, 2) == CUINIT
    assert dltm.drop_tf_log_lines(BANNER + WARN + ONEDNN, 1) == BANNER + WARN  # and stays with a kept one


FAKE_TF = '''
import os, warnings
os.write(2, {noise!r}.encode())  # C++ writes straight to the file descriptor
warnings.warn("a real warning")
os.write(2, {cuinit!r}.encode())
level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
'''


@pytest.fixture
def fake_tensorflow(tmp_path) -> Path:
    """A ``tensorflow`` package that writes TF 2.21's start-up messages when imported, as the real one does."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(
        FAKE_TF.format(noise=BANNER + ONEDNN + CUDA + CPU_FEATURES, cuinit=CUINIT))
    return tmp_path


def import_fake(fake: Path, *env: str) -> subprocess.CompletedProcess:
    script = ("import dltm, tensorflow as tf\n"
              "print(tf.level, type(tf.__loader__).__name__, type(tf.__spec__.loader).__name__)")
    pythonpath = os.pathsep.join([str(fake), str(REPO)])
    r = subprocess.run([sys.executable, "-c", script], cwd=fake, capture_output=True, text=True, timeout=60,
                       env=python_env(PYTHONPATH=pythonpath, **dict(e.split("=", 1) for e in env)))
    assert r.returncode == 0, r.stderr
    return r


def test_importing_tensorflow_after_dltm_is_quiet_and_keeps_real_warnings(fake_tensorflow):
    r = import_fake(fake_tensorflow)
    assert r.stdout.split() == ["3", "SourceFileLoader", "SourceFileLoader"]  # TF sees its own loader
    assert re.fullmatch(r".*: UserWarning: a real warning\n  warnings.warn\(\"a real warning\"\)\n", r.stderr)


def test_a_users_level_is_honoured_and_dltm_verbose_brings_everything_back(fake_tensorflow):
    r = import_fake(fake_tensorflow, "TF_CPP_MIN_LOG_LEVEL=2")
    assert r.stdout.split()[0] == "2" and CUINIT in r.stderr and "port.cc" not in r.stderr
    r = import_fake(fake_tensorflow, "DLTM_VERBOSE=1")
    assert r.stdout.split()[0] == "None"  # TF's own default
    assert r.stderr.startswith(BANNER + ONEDNN + CUDA + CPU_FEATURES) and CUINIT in r.stderr


def test_mlflow_is_quiet_unless_told_otherwise():
    script = "import dltm, os; print(*(os.environ.get(k) for k in dltm.QUIET_MLFLOW))"
    for env, expected in (({}, "WARNING false"), ({"MLFLOW_LOGGING_LEVEL": "INFO"}, "INFO false"),
                          ({"DLTM_VERBOSE": "1"}, "None None"), ({"DLTM_VERBOSE": "0"}, "WARNING false")):
        r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60,
                           env=python_env(**env))
        assert r.stdout == expected + "\n", env


def test_real_tensorflow_says_nothing_on_this_machine():
    """The import and the first look for a GPU (where TF logs ``failed call to cuInit`` on a machine without
    one) write nothing to stderr; oneDNN is left as TensorFlow sets it (only its notice goes)."""
    script = ("import dltm, os, tensorflow as tf\n"
              "tf.config.list_physical_devices('GPU')\n"
              "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")
    r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=python_env())
    assert (r.returncode, r.stdout, r.stderr) == (0, "None\n", "")


# ---- what a stage imports ---------------------------------------------------------------------------------------


def test_every_task_id_names_its_chapter_so_get_imports_one_module():
    for task_id, task in tasks.all_tasks().items():
        assert tasks.chapter_module_of(task_id) == task.chapter, task_id
        assert tasks.get(task_id) is task
    with pytest.raises(tasks.UnknownTaskError, match=r"unknown task 'ch02_nope'; known: ch02_backprop, "):
        tasks.get("ch02_nope")
    with pytest.raises(tasks.UnknownTaskError, match="unknown task 'xor'"):
        tasks.get("xor")


def test_a_chapter_2_stage_and_the_runtime_need_no_keras(tmp_path):
    """The stages' modules, the task lookup, the machine description and chapter 2's train and evaluate run
    without importing TensorFlow or Keras (seconds of start-up), and print nothing to stderr."""
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from stages import download, embed, evaluate, prepare, report, train
        from dltm import params, runtime, tasks

        class Tracker:
            def __getattr__(self, name):
                return lambda *args, **kwargs: None

        machine = runtime.machine()  # a process without TensorFlow computed on the CPU; versions as installed
        summary = (machine["gpu"], runtime.machine_summary().startswith("CPU"), machine["tensorflow"][:2])
        for task_id in ("ch02_xor", "ch02_perceptron_batch", "ch02_perceptron_online"):
            task = tasks.get(task_id)
            p = params.validate(task_id, params.section(params.load(sys.argv[1]), task_id), task.params)
            ctx = tasks.Context(task, p, params.RunSettings.from_params(params.load(sys.argv[1])), Tracker(),
                                root=Path("."))
            task.train(ctx)
            task.evaluate(ctx)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")), *summary)
    """)
    r = subprocess.run([sys.executable, "-c", script, str(REPO / "params.yaml")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env=python_env(PYTHONPATH=str(REPO)))
    assert (r.returncode, r.stdout, r.stderr) == (0, "[] none True 2.\n", "")


# ``python -m stages.<stage> ch02_xor``, and at exit the modules it imported of these packages
AS_MAIN = """
import atexit, runpy, sys
seen = lambda: sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "pipelines"))
atexit.register(lambda: print(*seen()))
sys.argv = [sys.argv[1], "ch02_xor"]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_python_m_stages_train_ch02_xor_never_imports_tensorflow(tmp_path):
    for name in ("params.yaml", "dvc.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    (tmp_path / ".dvc").mkdir()
    for stage in ("stages.train", "stages.evaluate"):
        r = subprocess.run([sys.executable, "-c", AS_MAIN, stage], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, env=python_env(PYTHONPATH=str(REPO)))
        assert (r.returncode, r.stderr) == (0, ""), stage
        assert r.stdout.splitlines()[-1] == "pipelines pipelines.ch02_basics", stage


# ---- what evaluate prints ---------------------------------------------------------------------------------------


def test_the_result_line():
    path = Path("metrics/ch07_kim_cnn.json")
    assert result_line("ch07_kim_cnn", "test_accuracy", {"test_accuracy": 0.729, "n_examples": 1000}, path) == \
        "ch07_kim_cnn: test_accuracy 0.7290 (n=1000) -> metrics/ch07_kim_cnn.json"
    repeated = {"test_accuracy_mean": 0.9012, "test_accuracy_std": 0.004, "repeats": 3}
    assert result_line("ch05_har_cnn1d", "test_accuracy", repeated, Path("metrics/ch05_har_cnn1d.json")) == \
        "ch05_har_cnn1d: test_accuracy 0.9012 ± 0.0040 (n=3) -> metrics/ch05_har_cnn1d.json"
    assert result_line("t", "test_accuracy", {"accuracy": 1.0}, Path("metrics/t.json")) == \
        "t: test_accuracy not among the 1 metrics -> metrics/t.json"


def test_evaluate_prints_one_line_with_the_tasks_metric(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    metrics = run_task(tmp_path, monkeypatch, "ch02_xor")
    out = capsys.readouterr().out.splitlines()
    metric = tasks.get("ch02_xor").metric
    assert out[-1] == f"ch02_xor: {metric} {metrics[metric]:.4f} -> metrics/ch02_xor.json"
