"""What a user meets on a fresh clone: `stages.predict` and `stages.generate` end a mistake in one line (exit
status 2, no traceback); every model the project saves loads in a fresh process; NaN never reaches a metrics
file; a stage's output folder is replaced whole or not at all, and evaluation refuses a mix of two runs."""

import importlib
import io
import json
import math
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from dltm import cli
from dltm.data import prepare_mr
from dltm.io import NonFiniteValueError, atomic_path, staged, write_json
from dltm.text import Tokenizer
from dltm.training import ClassifierData, NonFiniteLossError
from pipelines import ch03_keras, ch04_feedforward, ch05_cnn, ch06_word2vec, ch07_text_cnn, ch08_rnn
from pipelines import ch09_lstm_sentiment as ch09
from stages import evaluate, generate, predict, train

from .conftest import REPO, one_line_error, run_task, synthetic_mr, write_params


def save_model_folder(folder, model, files: dict) -> None:
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    for name, obj in files.items():
        write_json(folder / name, obj)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- stages.predict ------------------------------------------------------------------------------------------

TEXTS = ["a witty film", "dull and lifeless film", "a good witty cast"]


@pytest.fixture
def models(tmp_path, monkeypatch):
    """models/ch07_cnn1d (an untrained 1-D CNN, clean: none) and models/ch07_kim2014-rand/fold_0..1 beside it;
    the working directory is the repository, so hints name the stages of its dvc.yaml."""
    monkeypatch.chdir(REPO)
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(TEXTS)
    keras.utils.set_random_seed(0)
    model = ch07_text_cnn.build_cnn1d(6, vocab_size=12, embedding_dims=4, filters=4, kernel_size=2, hidden_dims=4)
    files = {"tokenizer.json": tokenizer.get_config(),
             "data_info.json": {"class_names": ["neg", "pos"], "doc_length": 6, "clean": "none", "padding": "post"}}
    root = tmp_path / "models"
    save_model_folder(root / "ch07_cnn1d", model, files)
    for k in range(2):
        save_model_folder(root / "ch07_kim2014-rand" / f"fold_{k}", model, files)
    return root


@pytest.mark.parametrize("name, stage", [("ch07_cnn1d", "train_text@ch07_cnn1d"),
                                         ("ch07_kim2014-static/fold_0", "train_kim2014@static"),
                                         ("ch09_custom_cell", "train@ch09_custom_cell")])
def test_predict_names_the_stage_that_trains_an_untrained_task(tmp_path, monkeypatch, capsys, name, stage):
    monkeypatch.chdir(REPO)
    line = one_line_error(predict.main, [name, "a witty film", "--models", str(tmp_path)], capsys)
    assert line == f"error: {tmp_path / name / 'model.keras'}: missing; run `dvc repro {stage}` first"


def test_predict_refuses_bad_input_in_one_line(models, tmp_path, capsys):
    m = ["--models", str(models)]
    known = ", ".join(predict.TEXT_CLASSIFIERS)
    (tmp_path / "latin1.txt").write_bytes("a witty film\n\u00e9t\u00e9 dull\n".encode("latin-1"))
    (tmp_path / "blank.txt").write_text("\n  \r\n\n", encoding="utf-8")
    (models / "ch09_custom_cell").mkdir()
    shutil.copy(models / "ch07_cnn1d" / "model.keras", models / "ch09_custom_cell" / "model.keras")
    cases = [
        (["ch99_nope", "x"], f"error: unknown text classifier 'ch99_nope'; predict takes: {known}"),
        (["ch08_char_rnn", "x"], f"error: unknown text classifier 'ch08_char_rnn'; predict takes: {known}"),
        (["ch07_cnn1d-rand", "x"], "error: unknown text classifier 'ch07_cnn1d-rand'"),
        (["ch07_kim2014", "x"], "error: ch07_kim2014 has variants (rand, static, non-static, multichannel): name "
                                "one, e.g. ch07_kim2014-rand"),
        (["../ch07_cnn1d", "x"], "error: '../ch07_cnn1d': name a task"),
        (["ch07_kim2014-rand", "x"], f"error: {models / 'ch07_kim2014-rand'}: cross-validated, one model per fold; "
                                     f"name one, e.g. ch07_kim2014-rand/fold_0"),
        (["ch09_custom_cell", "x"], f"error: {models / 'ch09_custom_cell'}: no tokenizer.json beside the model"),
        (["ch07_cnn1d", "--file", str(tmp_path / "nope.txt")], f"error: --file {tmp_path / 'nope.txt'}: no such file"),
        (["ch07_cnn1d", "--file", str(tmp_path)], f"error: --file {tmp_path}: cannot read it"),
        (["ch07_cnn1d", "--file", str(tmp_path / "latin1.txt")],
         f"error: {tmp_path / 'latin1.txt'}:2: not UTF-8 (byte 0xe9)"),
        (["ch07_cnn1d", "--file", str(tmp_path / "blank.txt")],
         f"error: {tmp_path / 'blank.txt'}: no text in it (only blank lines)"),
        (["ch07_cnn1d", ""], "error: text 1: empty text, nothing to classify"),
        (["ch07_cnn1d", "a witty film", " \t "], "error: text 2: empty text, nothing to classify"),
        (["ch07_cnn1d", "a witty film", "zzz qqq !"], "error: text 2: no word of 'zzz qqq !' is in the model's "
                                                       "vocabulary, nothing to classify"),
    ]
    for argv, expected in cases:
        assert one_line_error(predict.main, [*argv, *m], capsys).startswith(expected), argv


def test_predict_reads_every_line_ending_and_the_whole_last_word(models, tmp_path, monkeypatch, capsys):
    """``--file -`` with CRLF kept a ``\\r`` on each text, and ``clean: none`` then lost each line's last word."""
    m = ["ch07_cnn1d", "--models", str(models)]
    capsys.readouterr()
    assert cli.run(predict.main, [*m, *TEXTS]) == 0
    want = capsys.readouterr().out
    assert [line.split("\t")[2] for line in want.splitlines()] == TEXTS
    lf = "\n".join(TEXTS).encode()
    for data in (lf.replace(b"\n", b"\r\n") + b"\r\n", b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r"),
                 lf.replace(b"\n", b"\n\r\n")):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        assert cli.run(predict.main, [*m, "--file", "-"]) == 0
        assert capsys.readouterr().out == want, data
        (tmp_path / "texts.txt").write_bytes(data)
        assert cli.run(predict.main, [*m, "--file", str(tmp_path / "texts.txt")]) == 0
        assert capsys.readouterr().out == want, data
    x = predict.encode(["a witty film\r"], Tokenizer.load(models / "ch07_cnn1d" / "tokenizer.json"),
                       {"clean": "none", "doc_length": 6})
    assert np.count_nonzero(x) == 2  # why: the Tokenizer does not split at "\r", so "film\r" is unknown


def test_predict_encodes_as_keras_pad_sequences():
    t = Tokenizer()
    t.fit_on_texts(["a b c d e f g"])
    texts = ["a b c d e f g", "e f", "g"]
    for padding in ("post", "pre"):
        got = predict.encode(texts, t, {"clean": None, "padding": padding, "doc_length": 4})
        want = keras.utils.pad_sequences(t.texts_to_sequences(texts), maxlen=4, padding=padding, truncating=padding)
        np.testing.assert_array_equal(got, want)


def test_predict_lists_only_tasks_that_exist():
    from dltm import tasks

    known = tasks.all_tasks()
    assert set(predict.TEXT_CLASSIFIERS) <= set(known)
    assert set(generate.CHAR_LMS) == {t.id for t in known.values() if t.train is ch08_rnn.train_char_rnn}


# ---- stages.generate -----------------------------------------------------------------------------------------

VOCAB = [" ", ".", "a", "b", "c"]


@pytest.fixture
def char_lm(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    keras.utils.set_random_seed(0)
    save_model_folder(tmp_path / "models" / "ch08_char_rnn", ch08_rnn.build_char_rnn(len(VOCAB), 8),
                      {"vocab.json": {"ix_to_char": VOCAB, "seq_length": 4, "seed_text": "ab"}})
    return tmp_path / "models"


def test_generate_refuses_bad_arguments_in_one_line(char_lm, tmp_path, capsys):
    m = ["--models", str(char_lm)]
    cases = [
        (["--temperature", "nan"], "error: --temperature must be a finite number >= 0 (0: greedy), got nan"),
        (["--temperature", "inf"], "error: --temperature must be a finite number >= 0 (0: greedy), got inf"),
        (["--temperature", "-0.5"], "error: --temperature must be a finite number >= 0 (0: greedy), got -0.5"),
        (["--chars", "-5"], "error: --chars must be >= 0, got -5"),
        (["--seed", "-1"], "error: --seed must be >= 0, got -1"),
    ]
    for extra, expected in cases:
        assert one_line_error(generate.main, ["ch08_char_rnn", "ab", *extra, *m], capsys) == expected
    assert one_line_error(generate.main, ["ch08_char_rnn", "", *m], capsys) == (
        "error: the seed text is empty: give at least one character to continue")
    assert one_line_error(generate.main, ["ch08_char_rnn", "abz!a", *m], capsys) == (
        "error: the seed text has characters that ch08_char_rnn's corpus lacks: '!z' (its 5 characters: ' .abc')")
    assert one_line_error(generate.main, ["ch07_cnn1d", "ab", *m], capsys) == (
        "error: unknown task 'ch07_cnn1d'; generate takes: ch08_char_rnn, ch11_title_generation")
    assert one_line_error(generate.main, ["ch08_char_rnn", "--file", "x.txt", *m], capsys) == (
        "error: --file is for a title generator (ch11_title_generation); ch08_char_rnn continues the seed text")
    assert one_line_error(generate.main, ["ch08_char_rnn", "ab", "--models", str(tmp_path)], capsys) == (
        f"error: {tmp_path / 'ch08_char_rnn' / 'model.keras'}: missing; run `dvc repro train@ch08_char_rnn` first")
    (char_lm / "ch08_char_rnn" / "vocab.json").write_text('{"words": ["a"]}')  # chapter 8.5's word LM's vocab
    assert "not a character-level language model" in one_line_error(
        generate.main, ["ch08_char_rnn", "ab", *m], capsys)


def test_generate_samples_at_any_finite_temperature(char_lm, capsys):
    model, info = ch08_rnn.load_char_model(char_lm / "ch08_char_rnn")
    greedy = ch08_rnn.sample(model, VOCAB, "ab", 12, temperature=0.0, window=4)
    # a tiny temperature is greedy, not 0/0 (the logits divided by 1e-300 overflowed to -inf everywhere)
    assert ch08_rnn.sample(model, VOCAB, "ab", 12, temperature=1e-300, seed=5, window=4) == greedy
    hot = ch08_rnn.sample(model, VOCAB, "ab", 12, temperature=1e300, seed=5, window=4)
    assert len(hot) == 12 and set(hot) <= set(VOCAB)
    capsys.readouterr()
    assert cli.run(generate.main, ["ch08_char_rnn", "ab", "--chars", "7", "--temperature", "0",
                                   "--models", str(char_lm)]) == 0
    assert capsys.readouterr().out == "ab" + greedy[:7] + "\n"


def test_the_commands_are_wired_to_one_line_errors(tmp_path):
    """``python -m stages.predict`` / ``stages.generate`` print one line and exit 2, no traceback."""
    cases = [(["stages.predict", "ch99_nope", "x"], "error: unknown text classifier 'ch99_nope'; predict takes: "
                                                    + ", ".join(predict.TEXT_CLASSIFIERS)),
             (["stages.predict", "ch07_cnn1d", "--file", str(tmp_path / "no.txt")],
              f"error: --file {tmp_path / 'no.txt'}: no such file"),
             (["stages.generate", "ch08_char_rnn", "ab", "--temperature", "nan"],
              "error: --temperature must be a finite number >= 0 (0: greedy), got nan")]
    for argv, expected in cases:
        r = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", expected + "\n"), argv


# ---- every saved model loads in a fresh process ----------------------------------------------------------------


def project_models() -> dict:
    """{name: (model, inputs)}: one model of every builder of the chapters, at small sizes."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def ids(*shape, high=5):
        return rng.integers(1, high, size=shape).astype("int32")

    def floats(*shape):
        return rng.normal(size=shape).astype("float32")

    table = ClassifierData(*(np.zeros((2, 4)),) * 4, ["b", "g"], info={"n_features": 4})
    har = ClassifierData(*(np.zeros((2, 16, 3)),) * 4, ["a", "b", "c"], info={"n_timesteps": 16, "n_features": 3})
    mlp = ch04_feedforward.mlp_builder({"hidden_units": [8], "dropout": 0.2, "batch_norm": True, "activation": "relu",
                                        "kernel_initializer": "he_normal", "l2": 0.001}, "x")
    out = {
        "ch03_breakfast": (ch03_keras.build_breakfast(table), [floats(2, 3)]),
        "ch03_mlp": (ch03_keras.build_mlp(table), [floats(2, 4)]),
        "ch03_regressor": (ch03_keras.build_regressor(table), [floats(2, 4)]),
        "ch03_sine": (ch03_keras.build_sine(table), [floats(2, 1)]),
        "ch04_softmax": (ch04_feedforward.build_softmax(None), [floats(2, 28, 28)]),
        "ch04_mlp": (mlp(None), [floats(2, 28, 28)]),
        "ch05_har": (ch05_cnn.har_builder({"dropout_placement": "after_dense", "dropout": 0.5}, "x")(har),
                     [floats(2, 16, 3)]),
        "ch06_word2vec": (ch06_word2vec.build_word2vec(20, 4), [ids(2, 1), ids(2, 1)]),
        "ch07_simple": (ch07_text_cnn.build_simple_classifier(20, 4), [ids(2, 4)]),
        "ch07_kim_2d": (ch07_text_cnn.build_kim_cnn(6, 20, 4, (2, 3), 3, max_norm=3.0), [ids(2, 6)]),
        "ch07_kim_multichannel": (ch07_text_cnn.build_kim_cnn(
            6, 20, 4, (2, 3), 3, conv="1d", n_classes=3, init_scale=0.25,
            channels=(("embed_static", np.ones((20, 4), "float32"), False), ("embed", None, True))), [ids(2, 6)]),
        "ch07_cnn1d": (ch07_text_cnn.build_cnn1d(6, 20, 4, 4, 2, 4), [ids(2, 6)]),
        "ch08_encoder_decoder": (ch08_rnn.build_encoder_decoder(20, 20), [ids(2, 3), ids(2, 4)]),
        "ch08_time_distributed": (ch08_rnn.build_time_distributed(), [floats(2, 10, 16)]),
        "ch08_bidirectional": (ch08_rnn.build_bidirectional("sum"), [floats(2, 5, 10)]),
        "ch08_char_rnn": (ch08_rnn.build_char_rnn(5, 8), [floats(2, 4, 5)]),
        "ch08_ptb_lm": (ch08_rnn.build_ptb_lm(20, 8, num_steps=3, init_scale=0.1), [ids(2, 3)]),
        "ch08_ptb_lm_stateful": (ch08_rnn.build_ptb_lm(20, 8, num_steps=3, batch_size=2, stateful=True,
                                                       dropout_between_layers=True), [ids(2, 3)]),
    }
    for rnn in ch09.RNNS:
        for masking in (False, True):
            out[f"ch09_{rnn}_masking_{masking}"] = (ch09.build_rnn_sentiment(
                5, vocab_size=8, hidden_size=4, rnn=rnn, masking=masking, peephole="diagonal" if masking else "full"),
                [np.array([[3, 4, 0, 0, 0], [0, 0, 0, 0, 0]], "int32")])
    return out


def test_every_model_the_project_builds_loads_in_a_fresh_process(tmp_path):
    """Saved compiled (the PTB model with its summed loss), each loads where only keras and dltm.rnn are
    imported, and gives the same outputs."""
    for name, (model, inputs) in project_models().items():
        loss = (ch08_rnn.summed_over_steps_crossentropy if name.startswith("ch08_ptb") else "mse")
        model.compile(optimizer="adam", loss=loss)
        expected = np.asarray(model(inputs[0] if len(inputs) == 1 else inputs, training=False))
        ch08_rnn.reset_states(model)  # a stateful LSTM starts from zeros again
        model.save(tmp_path / f"{name}.keras")
        np.savez(tmp_path / f"{name}.npz", *inputs, expected=expected)
    script = (
        "import pathlib, sys\n"
        "import keras, numpy as np\n"
        "import dltm.rnn\n"
        "names = []\n"
        "for path in sorted(pathlib.Path(sys.argv[1]).glob('*.keras')):\n"
        "    model = keras.saving.load_model(path)\n"
        "    data = np.load(path.with_suffix('.npz'))\n"
        "    inputs = [data[f'arr_{i}'] for i in range(len(data.files) - 1)]\n"
        "    inputs = inputs[0] if len(inputs) == 1 else inputs\n"
        "    np.testing.assert_allclose(np.asarray(model(inputs, training=False)), data['expected'], rtol=1e-5,\n"
        "                               atol=1e-6, err_msg=path.name)\n"
        "    assert model.loss is not None, path.name\n"
        "    names.append(path.stem)\n"
        "ours = sorted(m for m in sys.modules if m.split('.')[0] in ('dltm', 'pipelines', 'stages'))\n"
        "print(len(names), ours)\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"{len(project_models())} ['dltm', 'dltm.rnn']"


def test_every_custom_keras_class_is_registered_and_no_lambda_layer_is_used():
    """A custom Layer, Loss, Constraint, Regularizer, Initializer or Metric of dltm/ or pipelines/ that is not
    registered under ``dltm`` cannot be loaded (``Could not locate class``); a Lambda layer needs its code."""
    bases = (keras.layers.Layer, keras.losses.Loss, keras.constraints.Constraint, keras.regularizers.Regularizer,
             keras.initializers.Initializer, keras.metrics.Metric)
    found = []
    for package in ("dltm", "pipelines"):
        for info in pkgutil.iter_modules([str(REPO / package)]):
            module = importlib.import_module(f"{package}.{info.name}")
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, bases) and obj.__module__ == module.__name__:
                    found.append(obj)
                    assert keras.saving.get_registered_name(obj) == f"dltm>{obj.__name__}", obj
            source = (REPO / package / f"{info.name}.py").read_text(encoding="utf-8")
            if info.name == "appendices":  # appendix A.5.8 is about Lambda: its example's shape, never saved
                assert "model.save" not in source and ".save(" not in source.replace("save_png(", "")
                continue
            assert not re.search(r"layers\.Lambda\(|import .*\bLambda\b", source), info.name
    assert {c.__name__ for c in found} >= {"MinimalRNNCell", "PeepholeLSTMCell", "MeanOverTime"}


def test_predict_runs_the_books_cells_in_a_fresh_process(tmp_path):
    """``python -m stages.predict ch09_custom_cell "a witty film"`` failed: Could not locate class
    'MinimalRNNCell' (the same for PeepholeLSTMCell)."""
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(TEXTS)
    files = {"tokenizer.json": tokenizer.get_config(),
             "data_info.json": {"class_names": ["neg", "pos"], "doc_length": 5, "clean": "kim", "padding": "post"}}
    for task, rnn in (("ch09_custom_cell", "minimal"), ("ch09_peephole_sentiment", "peephole"),
                      ("ch09_lstm_sentiment", "lstm")):
        save_model_folder(tmp_path / task, ch09.build_rnn_sentiment(5, vocab_size=12, hidden_size=4, rnn=rnn,
                                                                    masking=rnn == "lstm"), files)
    script = ("import sys\nfrom dltm import cli\nfrom stages import predict\n"
              "sys.exit(max(cli.run(predict.main, [task, 'a witty film', '--models', sys.argv[1]])\n"
              "             for task in ('ch09_custom_cell', 'ch09_peephole_sentiment', 'ch09_lstm_sentiment')))\n")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line.split("\t") for line in r.stdout.splitlines()]
    assert len(lines) == 3 and all(label in ("neg", "pos") and 0.5 <= float(p) <= 1 and text == "a witty film"
                                   for label, p, text in lines)


# ---- NaN and infinity: never in a metrics file -----------------------------------------------------------------


def test_write_json_refuses_nan_and_infinity(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"loss": 0.5})
    for bad, key in (({"loss": float("nan")}, "loss = nan"), ({"a": {"b": [1.0, float("inf")]}}, "a.b[1] = inf"),
                     ({"x": -math.inf}, "x = -inf"), ([float("nan")], "[0] = nan")):
        with pytest.raises(NonFiniteValueError, match=rf"metrics.json: not written: {re.escape(key)} "):
            write_json(path, bad)
        assert json.loads(path.read_text()) == {"loss": 0.5}  # the file before stays whole
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_evaluate_refuses_to_write_nan_metrics(tmp_path, monkeypatch, capsys):
    """A model that outputs NaN (here: NaN weights) gets a one-line error and no metrics file."""
    run_task_train_only(tmp_path, monkeypatch, "ch07_simple_classifier", {"ch07_simple_classifier.epochs": 2})
    path = tmp_path / "models" / "ch07_simple_classifier" / "model.keras"
    model = keras.saving.load_model(path)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    model.save(path)
    line = one_line_error(evaluate.main, ["ch07_simple_classifier"], capsys)
    assert line.startswith("error: metrics/ch07_simple_classifier.json: not written: train_loss = nan")
    assert not (tmp_path / "metrics" / "ch07_simple_classifier.json").exists()


def test_a_diverging_char_rnn_stops_with_an_error(tmp_path, monkeypatch):
    """The book's char-RNN at a learning rate that diverges: the stage stops at the first NaN and saves nothing."""
    (tmp_path / "data" / "raw" / "charlm").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "charlm" / "input.txt").write_text("the cat sat on the mat. " * 40)
    over = {"ch08_char_rnn.hidden_size": 16, "ch08_char_rnn.seq_length": 8, "ch08_char_rnn.stride": 4,
            "ch08_char_rnn.epochs": 3, "ch08_char_rnn.batch_size": 32, "ch08_char_rnn.learning_rate": 1e30,
            "ch08_char_rnn.sample_every": 0}
    with pytest.raises(NonFiniteLossError, match=r"^ch08_char_rnn: the training loss became (nan|inf) in epoch 1 "
                                                 r"of 3 \(batch \d+\), so training stopped and saved nothing"):
        run_task(tmp_path, monkeypatch, "ch08_char_rnn", over)
    assert list((tmp_path / "models").iterdir()) == [] and not (tmp_path / "plots" / "ch08_char_rnn").exists()


# ---- a stage's outputs: whole or not at all; evaluation takes one training run's models --------------------------


def run_task_train_only(workdir, monkeypatch, task: str, overrides: dict, variant: str | None = None) -> dict:
    write_params(workdir, overrides)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    assert train.main([task] + (["--variant", variant] if variant else [])) == 0
    return json.loads((workdir / "models" / (f"{task}-{variant}" if variant else task) / "run.json").read_text())


KIM = {"ch07_kim2014.filter_nums": 4, "ch07_kim2014.epochs": 2, "ch07_kim2014.batch_size": 16,
       "ch07_kim2014.embed_size": 8}
RAND = ["ch07_kim2014", "--variant", "rand"]


@pytest.fixture
def kim(tmp_path):
    synthetic_mr(tmp_path / "data" / "raw" / "mr", n_per_class=60)
    prepare_mr(tmp_path / "data" / "raw" / "mr", tmp_path / "data" / "prepared" / "mr",
               {"encoding": "cp1252", "split_seed": 10, "dev_size": 60, "cv_folds": 3, "cv_seed": 10})
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")  # the hints name the real stages
    return tmp_path


def folder_bytes(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_killed_training_run_leaves_the_previous_models_whole(kim, monkeypatch, capsys):
    """kill -9 during fold 1 of a run with another seed: models/ch07_kim2014-rand/ is still the first run's, all of
    it (no fold of the second), and the next training run removes what the killed one left."""
    run_task(kim, monkeypatch, "ch07_kim2014", KIM, variant="rand")
    folder = kim / "models" / "ch07_kim2014-rand"
    before, plots = folder_bytes(folder), folder_bytes(kim / "plots" / "ch07_kim2014-rand" / "train")
    write_params(kim, {**KIM, "run.seed": 2, "ch07_kim2014.epochs": 80})
    proc = subprocess.Popen([sys.executable, "-m", "stages.train", *RAND], cwd=kim, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 240
        while not list((kim / "models").glob(".ch07_kim2014-rand.stage-*/models/ch07_kim2014-rand/fold_0/"
                                             "model.keras")):
            assert proc.poll() is None and time.monotonic() < deadline, "fold 0 was never saved"
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no clean-up runs
        proc.wait()
    assert folder_bytes(folder) == before
    assert folder_bytes(kim / "plots" / "ch07_kim2014-rand" / "train") == plots
    left = sorted(p.name for p in (kim / "models").iterdir())
    assert len(left) == 2 and left[0].startswith(".ch07_kim2014-rand.stage-") and left[1] == "ch07_kim2014-rand"
    capsys.readouterr()
    assert cli.run(evaluate.main, RAND) == 0
    run = run_task_train_only(kim, monkeypatch, "ch07_kim2014", {**KIM, "run.seed": 2}, variant="rand")
    assert sorted(p.name for p in (kim / "models").iterdir()) == ["ch07_kim2014-rand"]
    assert run["training_run_id"] != json.loads(before["run.json"])["training_run_id"]
    for k in range(3):
        info = json.loads((folder / f"fold_{k}" / "data_info.json").read_text())
        assert info["training_run_id"] == run["training_run_id"]


def test_evaluate_refuses_a_model_folder_that_mixes_two_training_runs(kim, monkeypatch, capsys):
    import mlflow

    run_task_train_only(kim, monkeypatch, "ch07_kim2014", KIM, variant="rand")
    folder = kim / "models" / "ch07_kim2014-rand"
    shutil.copytree(folder, kim / "first")
    second = run_task_train_only(kim, monkeypatch, "ch07_kim2014", {**KIM, "run.seed": 2}, variant="rand")
    shutil.rmtree(folder / "fold_1")
    shutil.copytree(kim / "first" / "fold_1", folder / "fold_1")
    first_id = json.loads((kim / "first" / "run.json").read_text())["training_run_id"]
    line = one_line_error(evaluate.main, RAND, capsys)
    assert line == (f"error: models/ch07_kim2014-rand/fold_1: from another training run (training_run_id {first_id}) "
                    f"than models/ch07_kim2014-rand/run.json ({second['training_run_id']}): the folder mixes the "
                    f"models of two runs; run `dvc repro train_kim2014@rand` first")
    assert not (kim / "metrics").exists()
    assert "test_accuracy_mean" not in mlflow.MlflowClient().get_run(second["mlflow_run_id"]).data.metrics
    (folder / "fold_1" / "data_info.json").unlink()
    assert "fold_1: from another training run (training_run_id None)" in one_line_error(evaluate.main, RAND, capsys)
    run_file = folder / "run.json"
    run_file.write_text(json.dumps({k: v for k, v in json.loads(run_file.read_text()).items()
                                    if k != "training_run_id"}))
    assert "run.json: no training_run_id" in one_line_error(evaluate.main, RAND, capsys)


def test_a_killed_writer_leaves_nothing_for_good(tmp_path):
    """What a killed writer left beside an output (``.<name>.tmp-<pid>-...``, ``.<name>.stage-<pid>-...``) is
    removed by the next write of that output; a live writer's is kept."""
    models = tmp_path / "models"
    dead, live = dead_pid(), os.getppid()
    leftovers = [models / f".ch07_cnn1d.tmp-{dead}-abc.tmp", models / f".ch07_cnn1d.stage-{dead}-abc"]
    kept = [models / f".ch07_cnn1d.tmp-{live}-abc.tmp", models / f".ch07_cnn1d1.tmp-{dead}-abc.tmp"]
    for p in leftovers + kept:
        (p / "fold_0").mkdir(parents=True)
    with atomic_path(models / "ch07_cnn1d") as tmp:
        tmp.mkdir()
    assert not leftovers[0].exists() and leftovers[1].exists()
    with staged(tmp_path, ["models/ch07_cnn1d"]) as area:
        (area / "models" / "ch07_cnn1d").mkdir(parents=True)
    assert sorted(p.name for p in models.iterdir()) == sorted(["ch07_cnn1d", *(p.name for p in kept)])


def test_staged_replaces_each_output_whole_or_not_at_all(tmp_path):
    for name, text in (("plots/t/train/a.csv", "old"), ("models/t/fold_0/m", "old"), ("models/t/fold_1/m", "old")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    outputs = ["plots/t/train", "models/t"]
    with pytest.raises(RuntimeError), staged(tmp_path, outputs) as area:
        (area / "models" / "t" / "fold_0").mkdir(parents=True)
        (area / "models" / "t" / "fold_0" / "m").write_text("new")
        raise RuntimeError("killed in fold 1")
    assert (tmp_path / "models/t/fold_0/m").read_text() == "old" and (tmp_path / "models/t/fold_1/m").exists()
    with staged(tmp_path, outputs) as area:
        (area / "models" / "t" / "fold_0").mkdir(parents=True)
        (area / "models" / "t" / "fold_0" / "m").write_text("new")
    assert (tmp_path / "models/t/fold_0/m").read_text() == "new"
    assert not (tmp_path / "models/t/fold_1").exists()  # nothing of the earlier run beside the new one
    assert not (tmp_path / "plots/t/train").exists()  # an output the run did not write is not left stale
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["t"]
    with pytest.raises(ValueError, match="relative paths"):
        with staged(tmp_path, ["../x"]):
            pass
