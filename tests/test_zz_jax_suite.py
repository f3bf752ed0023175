"""The chapters' model, cell, loss and training-loop tests again on JAX (issue 14), in a child pytest with
``KERAS_BACKEND=jax`` (Keras picks its backend once, at import).

Collected last (conftest.LAST), so that under `make test` it runs on the second process beside the end-to-end
run (tests/test_pipeline.py, the longest file) instead of after both: CI's time. ``test_backends.py`` and
``test_gpu_check.py`` run whole stages on JAX in the main pass; the training runs that only repeat what they check
are deselected here.
"""

import os
import subprocess
import sys

import pytest

from .conftest import REPO

JAX_TESTS = ("test_models.py", "test_rnn.py", "test_training.py", "test_skipgram.py", "test_ch06.py", "test_ch09.py",
             "test_decoding.py", "test_attention.py", "test_batches.py", "test_ch10.py", "test_ch11_profiling.py",
             "test_ch11_titles.py", "test_ch12_transformer.py", "test_ch12_bert.py", "test_ch13_reading.py",
             "test_appendices.py", "test_ch14_retrieval.py")
DESELECT = ("not rnn_comparison and not peephole and not end_to_end_and_predict and not gensim "
            "and not (test_ch10 and not attention) and not author_profiling_task_end_to_end and not on_imdb "
            "and not longer_than_the_pretrained and not transformer_learns and not span_reader_learns "
            "and not memory_network_learns and not babi_rnn_trains and not appendix_stages "
            "and not (test_ch14_retrieval and not books_gru and not sentences) "
            "and not through_the_stages_and_predict and not on_mr_end_to_end and not title_generation_end_to_end")
"""Left to the TensorFlow pass: training runs through the stages (BERT pre-training and fine-tuning, the MR
Transformer, title generation: about 140 s on JAX), whose layers the JAX pass checks one by one."""


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="this pass is the JAX run of the TensorFlow pass")
def test_the_chapters_model_tests_pass_on_jax():
    pytest.importorskip("jax", reason="JAX is not installed (make setup installs the jax extra)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "KERAS_BACKEND"))}
    env["KERAS_BACKEND"] = "jax"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(f"tests/{f}" for f in JAX_TESTS), "-k", DESELECT],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    print(proc.stdout[-3000:])  # the child's summary, in this test's captured output
    assert proc.returncode == 0, (f"the JAX pass failed ({proc.returncode}):\n{proc.stdout[-12000:]}\n"
                                  f"{proc.stderr[-3000:]}")
